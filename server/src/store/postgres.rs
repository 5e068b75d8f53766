//! The Postgres backend, for production and for several server instances sharing one database.

use std::time::Duration;

use anyhow::Context;
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::store::StoreResult;
use crate::store::sql::impl_store;
use crate::store::write_tx::{WriteGate, WriteTx};

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` and runs the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("cannot connect to Postgres")?;
        sqlx::migrate!("../migrations/postgres")
            .run(&pool)
            .await
            .context("cannot apply the Postgres migrations")?;
        Ok(PostgresStore { pool })
    }

    /// Postgres transactions run at READ COMMITTED; the statements that need more take row locks
    /// (`FOR UPDATE`) or guard themselves with conditional updates.
    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx<Postgres>> {
        Ok(WriteTx::new(self.pool.begin().await?, None))
    }

    /// Postgres needs no gate: writers wait only on the rows they touch.
    pub(crate) async fn write_gate(&self) -> WriteGate {
        None
    }
}

impl_store!(PostgresStore, sqlx::Postgres, "postgres", " FOR UPDATE");
