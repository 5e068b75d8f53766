//! The SQLite backend: the embedded default, one database file.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;

use crate::store::StoreResult;
use crate::store::sql::impl_store;
use crate::store::write_tx::{WriteGate, WriteTx};

/// A SQLite database file, in WAL mode with `synchronous = FULL`, so every committed transaction
/// is on disk before the response that acknowledges it.
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Writers queue here, first come first served, instead of polling SQLite's write lock
    /// (`store::write_tx`).
    write_gate: Arc<Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and runs the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .context("invalid SQLite database URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // When SQLite rolls a transaction back by itself (it does on a full disk or an I/O
            // error), the ROLLBACK that sqlx sends afterwards fails, and sqlx goes on counting the
            // transaction as open: that connection would refuse every later `BEGIN` ("non-zero
            // transaction depth") for as long as it lives, long after the disk has room again.
            // Such a connection is closed instead of being handed out, and a fresh one replaces it.
            .before_acquire(|connection, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(connection)) })
            })
            .connect_with(options)
            .await
            .context("cannot open the SQLite database")?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&pool)
            .await
            .context("cannot apply the SQLite migrations")?;
        Ok(SqliteStore {
            pool,
            write_gate: Arc::new(Mutex::new(())),
        })
    }

    /// Waits for this process's turn to write.
    pub(crate) async fn write_gate(&self) -> WriteGate {
        Some(self.write_gate.clone().lock_owned().await)
    }

    /// SQLite allows one writer. After the gate, `BEGIN IMMEDIATE` takes the write lock up
    /// front, so a transaction that reads before it writes cannot fail to upgrade its lock
    /// halfway (and another process on the same file is still waited for).
    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx<Sqlite>> {
        let gate = self.write_gate().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx::new(tx, gate))
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, "sqlite", "");
