//! Storage for the researcher side: accounts, sign-in sessions and throttling, the
//! audit log, per-experiment pseudonym keys, experiment-wide reads for the dashboard and exports,
//! imports of published data and withdrawals.
//!
//! [`ResearchStore`] is a second trait, implemented for the same [`SqliteStore`] and
//! [`PostgresStore`] values as [`crate::store::Store`], so both share one connection pool;
//! [`crate::store::connect`] opens a database and hands out both views of it. As for the
//! participant side, the SQL is written once (in `sql.rs`, `impl_research!`) and instantiated per
//! backend. Timestamps are compared in Rust, not in SQL, because SQLite stores them as text.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

mod actions;
mod sql;

pub use actions::{Note, ParticipantActions, Withdrawal};

use crate::store::{Answer, StoreResult, Trial};
#[cfg(doc)]
use crate::store::{PostgresStore, SqliteStore};

/// A researcher account (the password hash stays in the database).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResearcherAccount {
    pub username: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A signed-in researcher's session, found by the hash of its cookie token.
#[derive(Debug, Clone, PartialEq)]
pub struct ResearcherSession {
    pub token_hash: String,
    pub username: String,
    /// Echoed by every form and state-changing request of this session.
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// An audit log entry to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub at: OffsetDateTime,
    /// The researcher's name, or `cli:<user>` for the command line.
    pub actor: String,
    /// `sign_in`, `sign_in_failed`, `sign_out`, `export`, `withdraw`, `import`, `researcher_add`, ...
    pub action: String,
    pub experiment: Option<String>,
    pub detail: String,
}

/// A stored audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub experiment: Option<String>,
    pub detail: String,
}

/// A completed session built from a published `programs.csv` participant.
#[derive(Debug, Clone)]
pub struct ImportedSession {
    pub session_id: String,
    pub experiment: String,
    pub experiment_version: String,
    /// Random; nobody holds the token of an imported session.
    pub token_hash: String,
    pub seed: i64,
    pub task_order: Vec<usize>,
    pub created_at: OffsetDateTime,
    pub completed_at: OffsetDateTime,
    /// The session's final step (past its last task).
    pub step: i64,
    pub params: BTreeMap<String, String>,
    pub trials: Vec<Trial>,
    pub answers: Vec<(String, String)>,
    /// The file it came from.
    pub source: String,
    pub participant_idx: i64,
}

/// How recently a session did something: the latest server-measured time (milliseconds since the
/// session's start) of any stored run or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub session_id: String,
    pub last_ms: i64,
}

/// Researcher-side storage operations, one per use case.
#[async_trait]
pub trait ResearchStore: ParticipantActions + Send + Sync + 'static {
    /// Conflict if the name is taken.
    async fn add_researcher(
        &self,
        username: &str,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Removes the account and its sessions; false if there was none.
    async fn remove_researcher(&self, username: &str) -> StoreResult<bool>;

    async fn researchers(&self) -> StoreResult<Vec<ResearcherAccount>>;

    /// The argon2 PHC string of an account, if it exists.
    async fn password_hash(&self, username: &str) -> StoreResult<Option<String>>;

    async fn record_sign_in_failure(&self, username: &str, at: OffsetDateTime) -> StoreResult<()>;

    /// Failed sign-ins for this name at or after `since`.
    async fn sign_in_failures_since(
        &self,
        username: &str,
        since: OffsetDateTime,
    ) -> StoreResult<usize>;

    async fn clear_sign_in_failures(&self, username: &str) -> StoreResult<()>;

    async fn create_researcher_session(&self, session: &ResearcherSession) -> StoreResult<()>;

    /// The session with this token hash, whether or not it has expired.
    async fn researcher_session(&self, token_hash: &str) -> StoreResult<Option<ResearcherSession>>;

    async fn delete_researcher_session(&self, token_hash: &str) -> StoreResult<()>;

    async fn record_audit(&self, entry: &NewAudit) -> StoreResult<()>;

    /// The newest `limit` entries, newest first.
    async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditEntry>>;

    /// The experiment's pseudonym key, stored as `fresh` if it has none yet.
    async fn pseudonym_key(
        &self,
        experiment: &str,
        fresh: &str,
        at: OffsetDateTime,
    ) -> StoreResult<String>;

    /// The trials of one session, by step.
    async fn session_trials(&self, session_id: &str) -> StoreResult<Vec<Trial>>;

    /// Every trial of an experiment, by session (oldest first) and step.
    async fn experiment_trials(&self, experiment: &str) -> StoreResult<Vec<Trial>>;

    /// Every questionnaire answer of an experiment, with its session.
    async fn experiment_answers(&self, experiment: &str) -> StoreResult<Vec<(String, Answer)>>;

    /// The latest run or event time of each session of an experiment that has any.
    async fn activity(&self, experiment: &str) -> StoreResult<Vec<Activity>>;

    /// `(session_id, participant_idx)` of the sessions imported into an experiment.
    async fn imported(&self, experiment: &str) -> StoreResult<Vec<(String, i64)>>;

    /// Stores imported sessions with their trials and answers, in one transaction.
    async fn import_sessions(&self, sessions: &[ImportedSession]) -> StoreResult<()>;

    /// The sessions of an experiment with this recruiter ID.
    async fn sessions_by_recruiter_id(
        &self,
        experiment: &str,
        recruiter_id: &str,
    ) -> StoreResult<Vec<String>>;

    /// Deletes everything stored about a session, in one transaction; returns the rows deleted.
    async fn withdraw_session(&self, session_id: &str) -> StoreResult<u64>;
}
