//! The storage side of arrivals (docs/api.md, "Entry"): finding the session a returning
//! participant may continue, handing it a new token while remembering the old one, and keeping
//! refused arrivals with their reason.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::TokenHash;
use crate::store::{Session, StoreResult};

/// An arrival that got no session.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedArrival {
    pub experiment: String,
    /// The API error code the arrival was answered with (`recruiter_id_missing`, ...).
    pub reason: String,
    pub recruiter_id: Option<String>,
    /// Every entry URL parameter, verbatim.
    pub params: BTreeMap<String, String>,
    /// What the device check measured, if the client reported it.
    pub device: Option<serde_json::Value>,
    pub at: OffsetDateTime,
}

/// Arrival operations; every [`crate::store::Store`] has them.
#[async_trait]
pub trait Arrivals {
    /// The newest session of `recruiter_id` in `experiment`, whatever its state; None if there is
    /// none.
    async fn latest_session_of(
        &self,
        experiment: &str,
        recruiter_id: &str,
    ) -> StoreResult<Option<Session>>;

    /// Gives the session a new token: the old token's hash is kept as superseded and the new one
    /// replaces it, in one transaction. NotFound if the session is gone.
    async fn replace_token(
        &self,
        session_id: &str,
        new: &TokenHash,
        at: OffsetDateTime,
    ) -> StoreResult<Session>;

    /// Whether `token_hash` belonged to a session whose participant continued elsewhere.
    async fn is_superseded(&self, token_hash: &TokenHash) -> StoreResult<bool>;

    async fn refuse_arrival(&self, arrival: RefusedArrival) -> StoreResult<()>;

    /// The refused arrivals of an experiment, oldest first.
    async fn refused_arrivals(&self, experiment: &str) -> StoreResult<Vec<RefusedArrival>>;
}
