//! What the metrics endpoint reads from the store: sessions per experiment and state, and how
//! busy the connection pool is.

use async_trait::async_trait;

use crate::store::StoreResult;

/// The connection pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open.
    pub open: u32,
    /// Of those, the ones waiting for work.
    pub idle: u32,
}

/// Monitoring reads; every [`crate::store::Store`] has them.
#[async_trait]
pub trait Monitoring {
    /// (experiment, status, sessions), for every experiment and status that has sessions.
    async fn session_counts(&self) -> StoreResult<Vec<(String, String, i64)>>;

    fn pool_use(&self) -> PoolUse;
}
