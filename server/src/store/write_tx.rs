//! A write transaction together with the backend's write gate.
//!
//! SQLite allows one writer at a time. Left to itself, a connection that finds the write lock
//! taken sleeps and polls (its busy handler), in growing steps, while a busy writer, such as the
//! event writer of the group commit, takes the lock again and again: under load an entry or a
//! submit could wait seconds behind it. The SQLite store therefore queues its writers on one
//! fair (first come, first served) async lock before they touch the database, so each waits
//! only for the writes ahead of it. Postgres locks rows, not the database, and has no gate.

use std::ops::{Deref, DerefMut};

use sqlx::{Database, Transaction};
use tokio::sync::OwnedMutexGuard;

/// The gate held while writing: `Some` on SQLite, `None` on Postgres.
pub(crate) type WriteGate = Option<OwnedMutexGuard<()>>;

/// A transaction that holds the write gate until it commits or is dropped (rolled back).
/// It dereferences to the connection, as a [`Transaction`] does.
pub(crate) struct WriteTx<DB: Database> {
    // Declared first, so that on drop the rollback is issued before the gate opens.
    tx: Transaction<'static, DB>,
    _gate: WriteGate,
}

impl<DB: Database> WriteTx<DB> {
    pub(crate) fn new(tx: Transaction<'static, DB>, gate: WriteGate) -> WriteTx<DB> {
        WriteTx { tx, _gate: gate }
    }

    /// Commits, then opens the gate.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}
