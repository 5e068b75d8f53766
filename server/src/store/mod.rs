//! Storage (docs/design.md §3): the [`Store`] trait, one method per use case, with a SQLite and a
//! Postgres implementation. Handlers and the study logic see only this trait and [`StoreError`];
//! `sqlx::Error` stops here.
//!
//! Both backends run the same SQL (written once in `sql.rs`; sqlx accepts `$1` placeholders for
//! SQLite too) and differ only in how they open connections and start write transactions.

mod arrival_sql;
mod arrivals;
mod assign_sql;
pub mod backup;
mod event_sql;
pub mod group_commit;
mod monitoring;
mod postgres;
pub mod research;
mod rows;
mod sql;
mod sqlite;
mod write_tx;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{Phase, SessionStatus, TokenHash, TrialOutcome};
use crate::store::research::ResearchStore;

pub use crate::store::arrivals::{Arrivals, RefusedArrival};
pub use crate::store::monitoring::{Monitoring, PoolUse};
pub use crate::store::postgres::PostgresStore;
pub use crate::store::sqlite::SqliteStore;

/// What can go wrong in storage. `NotFound` and `Conflict` are expected outcomes the caller maps
/// to responses; `Other` is a fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a changed precondition; the message says which.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Both views of one database, sharing one connection pool: the participant side's [`Store`]
/// and the researcher side's [`ResearchStore`].
#[derive(Clone)]
pub struct Database {
    pub store: Arc<dyn Store>,
    pub research: Arc<dyn ResearchStore>,
}

/// Opens the database named by `url` (`sqlite://...` or `postgres://...`), creating a SQLite
/// file if it does not exist, and brings its schema up to date.
pub async fn connect(url: &str) -> anyhow::Result<Database> {
    fn both<S: Store + ResearchStore + 'static>(store: S) -> Database {
        let store = Arc::new(store);
        Database {
            store: store.clone(),
            research: store,
        }
    }
    if url.starts_with("sqlite:") {
        Ok(both(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(both(PostgresStore::connect(url).await?))
    } else {
        anyhow::bail!("unsupported database URL: it must start with sqlite: or postgres://")
    }
}

/// A participant's session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub id: String,
    pub experiment: String,
    pub experiment_version: String,
    pub recruiter_id: Option<String>,
    /// Counterbalancing condition (balanced order only).
    pub condition: Option<i64>,
    pub seed: i64,
    /// Main tasks in the order this participant sees them (indices into the experiment's tasks).
    pub task_order: Vec<usize>,
    pub status: SessionStatus,
    /// Index of the current step in the session's timeline.
    pub step: i64,
    pub consent: Option<bool>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub consent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub completion_code: Option<String>,
    /// Opened by a signed-in researcher to try the study: left out of exports unless asked for.
    pub preview: bool,
    /// Excluded by a researcher: kept and paid, left out of data exports unless asked for.
    pub excluded: bool,
    /// A researcher's latest reset: the time limit counts from here.
    #[serde(with = "time::serde::rfc3339::option")]
    pub reset_at: Option<OffsetDateTime>,
    /// The between-subject condition, when the experiment defines conditions.
    pub arm: Option<String>,
}

impl Session {
    /// Milliseconds from the session's start to `at`.
    pub fn ms_since_start(&self, at: OffsetDateTime) -> i64 {
        (at - self.created_at)
            .whole_milliseconds()
            .clamp(0, i64::MAX as i128) as i64
    }
}

/// How a new session's task order (and between-subject condition) is chosen. Counted
/// assignments are chosen in the transaction that creates the session, from the
/// `assignment_counters` row-locked there, so concurrent arrivals on any number of server
/// instances stay balanced; a preview session is assigned as an arrival would be at that moment,
/// but not counted (`store::assign_sql`).
#[derive(Debug, Clone)]
pub enum Assignment {
    /// The order is already known (fixed or shuffled).
    Given { task_order: Vec<usize> },
    /// Counterbalancing: the store assigns the condition with the fewest sessions so far (lowest
    /// index on ties).
    Balanced { orders: Vec<Vec<usize>> },
    /// Between-subject conditions (`sessions.arm`): the store assigns the arm with the fewest
    /// sessions so far (ties broken by `draw`, a random number), then within it the order with the
    /// fewest (lowest index on ties). The counters count arm × order cells.
    Conditions { arms: Vec<ArmOrders>, draw: u64 },
}

/// One between-subject condition as the store assigns it.
#[derive(Debug, Clone)]
pub struct ArmOrders {
    /// The condition's name, recorded as `sessions.arm`.
    pub name: String,
    /// The orders counterbalanced within the condition, or (not `balanced`) the one order its
    /// sessions get.
    pub orders: Vec<Vec<usize>>,
    /// Whether `orders` are counterbalanced: the session then records which one as its
    /// `condition`.
    pub balanced: bool,
    /// The seed a session of this condition records (its order's fixed shuffle seed, if any).
    pub seed: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub experiment: String,
    pub experiment_version: String,
    pub token_hash: TokenHash,
    pub recruiter_id: Option<String>,
    /// Refuse the session (Conflict) if this recruiter ID already took part in this experiment.
    pub unique_recruiter: bool,
    /// Every entry URL parameter, verbatim.
    pub params: BTreeMap<String, String>,
    pub seed: i64,
    pub assignment: Assignment,
    pub at: OffsetDateTime,
    /// A researcher's preview session.
    pub preview: bool,
    /// What the front door's device check measured, if the client reported it.
    pub device: Option<serde_json::Value>,
}

/// One attempt at a task (tutorial level, practice or main task).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trial {
    pub session_id: String,
    pub step: i64,
    /// `Tutorial`, `Practice` or `Tasks`: the phases that have tasks.
    pub phase: Phase,
    /// Position within the phase: for main tasks, where this participant saw the task.
    pub position: i64,
    /// Index in the phase's task list: for main tasks the `mdp_idx`.
    pub task_index: i64,
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub started_ms: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub ended_ms: Option<i64>,
    pub outcome: Option<TrialOutcome>,
    /// The submitted program in compact form.
    pub program: Option<String>,
    /// Number of runs (program evaluations).
    pub runs: i64,
}

#[derive(Debug, Clone)]
pub struct NewTrial {
    pub session_id: String,
    pub step: i64,
    pub phase: Phase,
    pub position: i64,
    pub task_index: i64,
    pub label: String,
    pub at: OffsetDateTime,
    pub ms: i64,
}

/// One execution of a program on the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub session_id: String,
    /// The client's number for this run, unique within the session.
    pub seq: i64,
    pub step: i64,
    pub program: String,
    /// The client's label for how it was started (`run`, `quick_run`, ...).
    pub mode: String,
    pub solved: bool,
    pub steps: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub session_ms: i64,
}

/// Whether `record_run` stored a new run or found the same one from an earlier attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum RunRecorded {
    New(Run),
    Existing(Run),
}

#[derive(Debug, Clone)]
pub struct FinishTrial {
    pub session_id: String,
    pub step: i64,
    pub outcome: TrialOutcome,
    pub program: Option<String>,
    pub at: OffsetDateTime,
    pub ms: i64,
}

/// A client event to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewEvent {
    pub seq: i64,
    pub kind: String,
    pub step: Option<i64>,
    /// Client clock: milliseconds since the session started, as the client measured it.
    pub client_ms: Option<i64>,
    pub data: serde_json::Value,
}

/// A stored client event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub kind: String,
    pub step: Option<i64>,
    pub client_ms: Option<i64>,
    pub data: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub session_ms: i64,
}

/// One request's events, as the group commit queues them.
#[derive(Debug, Clone)]
pub struct EventBatch {
    pub session_id: String,
    pub events: Vec<NewEvent>,
    /// When the server received them.
    pub at: OffsetDateTime,
    /// Milliseconds since the session started, by the server's clock.
    pub session_ms: i64,
}

/// The result of storing a batch of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsStored {
    /// Every sequence number of the batch, once each; all are now stored.
    pub stored: Vec<i64>,
    /// Those that were already stored before this batch, or earlier in the same batch.
    pub duplicates: Vec<i64>,
}

/// A client event refused on its own; only its number and the reason are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedEvent {
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub item: String,
    pub answer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub answered_at: OffsetDateTime,
}

/// Everything stored about one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRecord {
    pub session: Session,
    pub params: BTreeMap<String, String>,
    pub trials: Vec<Trial>,
    pub runs: Vec<Run>,
    pub events: Vec<StoredEvent>,
    pub answers: Vec<Answer>,
}

/// Row counts of every table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    pub sessions: i64,
    pub session_params: i64,
    pub participations: i64,
    pub assignment_counters: i64,
    pub trials: i64,
    pub runs: i64,
    pub events: i64,
    pub answers: i64,
}

/// Storage operations, one per use case.
#[async_trait]
pub trait Store: Arrivals + Monitoring + Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a session with its entry parameters, its recruiter participation (unless repeats
    /// are allowed) and its task order, in one transaction. Conflict if the recruiter ID already
    /// took part.
    async fn create_session(&self, new: NewSession) -> StoreResult<Session>;

    /// The session whose token has this hash; NotFound if none.
    async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Session>;

    async fn session(&self, session_id: &str) -> StoreResult<Session>;

    /// The session's entry URL parameters.
    async fn params(&self, session_id: &str) -> StoreResult<BTreeMap<String, String>>;

    /// Records the consent answer at step 0 and moves on (to step 1 on agreement; a refusal
    /// ends the session as declined). Conflict if the session is past consent.
    async fn record_consent(
        &self,
        session_id: &str,
        agree: bool,
        at: OffsetDateTime,
    ) -> StoreResult<Session>;

    /// Moves from `from_step` to the next step; Conflict if the session is not at `from_step`.
    async fn advance(
        &self,
        session_id: &str,
        from_step: i64,
        at: OffsetDateTime,
    ) -> StoreResult<Session>;

    /// The trial of this step, created (started now) if it was not served before.
    async fn serve_trial(&self, new: NewTrial) -> StoreResult<Trial>;

    /// NotFound if the step's task was never served.
    async fn trial(&self, session_id: &str, step: i64) -> StoreResult<Trial>;

    /// Stores a run and counts it on its trial, once per `(session, seq)`: a retry returns the
    /// stored run. Conflict if that number was used for a different program or step.
    async fn record_run(&self, run: Run) -> StoreResult<RunRecorded>;

    /// The run with this number, if stored.
    async fn run(&self, session_id: &str, seq: i64) -> StoreResult<Option<Run>>;

    /// Ends the trial and advances the session past it, in one transaction. Conflict if the
    /// trial already ended or the session moved on.
    async fn finish_trial(&self, finish: FinishTrial) -> StoreResult<Session>;

    /// Stores each event once per `(session, seq)`, in one transaction.
    async fn store_events(
        &self,
        session_id: &str,
        events: &[NewEvent],
        at: OffsetDateTime,
        session_ms: i64,
    ) -> StoreResult<EventsStored>;

    /// Stores several requests' event batches in one transaction (the group commit of
    /// [`group_commit::EventWriter`]), answering each batch as if they had been stored one after
    /// another. The outer error means nothing of any batch is stored; an inner error is that
    /// batch's alone, rolled back (to a savepoint) while the others commit.
    async fn store_event_batches(
        &self,
        batches: &[EventBatch],
    ) -> StoreResult<Vec<StoreResult<EventsStored>>>;

    /// Records events refused one by one, once per `(session, seq)`, so that completion counts
    /// them as accounted for.
    async fn refuse_events(
        &self,
        session_id: &str,
        refused: &[RefusedEvent],
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// The highest event number stored or refused and the highest run number stored for the
    /// session (0 where there is none), without reading the rows themselves.
    async fn max_seqs(&self, session_id: &str) -> StoreResult<(i64, i64)>;

    /// Sequence numbers from 1 to `through` that are neither stored nor refused.
    async fn missing_events(&self, session_id: &str, through: i64) -> StoreResult<Vec<i64>>;

    /// Stores the questionnaire answers and advances past `step`, in one transaction. Conflict if
    /// the session is not at `step`.
    async fn save_answers(
        &self,
        session_id: &str,
        step: i64,
        answers: &[(String, String)],
        at: OffsetDateTime,
    ) -> StoreResult<Session>;

    async fn answers(&self, session_id: &str) -> StoreResult<Vec<Answer>>;

    /// Marks the session completed with its code. Conflict if it is not active at `step`.
    async fn complete_session(
        &self,
        session_id: &str,
        step: i64,
        code: &str,
        at: OffsetDateTime,
    ) -> StoreResult<Session>;

    /// Everything stored about a session.
    async fn session_record(&self, session_id: &str) -> StoreResult<SessionRecord>;

    /// The sessions of an experiment, oldest first.
    async fn sessions_of(&self, experiment: &str) -> StoreResult<Vec<Session>>;

    async fn table_counts(&self) -> StoreResult<TableCounts>;

    /// Waits for in-flight queries and closes the connections.
    async fn close(&self);
}
