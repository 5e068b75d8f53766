//! The rows the shared SQL reads, their column lists, and the small helpers the queries use.

use std::collections::BTreeMap;

use sqlx::types::Json;
use time::OffsetDateTime;

use crate::domain::{Phase, SessionStatus, TrialOutcome};
use crate::store::{Answer, Run, Session, StoreError, StoredEvent, Trial};

pub(crate) const SESSION_COLUMNS: &str = "id, experiment, experiment_version, recruiter_id, condition, seed, \
     task_order, status, step, consent, consent_at, created_at, updated_at, completed_at, completion_code, preview, \
     excluded, reset_at, arm";

/// An `ORDER BY` key for a timestamp column. SQLite keeps timestamps as RFC 3339 text whose
/// fraction has only the digits it needs (`...:01.1Z` for 100 ms, `...:01.105Z` for 105 ms,
/// `...:01Z` on the second), so the text does not sort as the times do; `julianday()` reads it as
/// a number (to well under a millisecond). Postgres stores real timestamps.
pub(crate) fn by_time<DB: sqlx::Database>(column: &str) -> String {
    if DB::NAME == "SQLite" {
        format!("julianday({column})")
    } else {
        column.to_owned()
    }
}

pub(crate) const TRIAL_COLUMNS: &str = "session_id, step, phase, position, task_index, label, started_at, \
     started_ms, ended_at, ended_ms, outcome, program, runs";

pub(crate) const RUN_COLUMNS: &str =
    "session_id, seq, step, program, mode, solved, steps, created_at, session_ms";

pub(crate) const EVENT_COLUMNS: &str = "seq, kind, step, client_ms, data, received_at, session_ms";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    experiment: String,
    experiment_version: String,
    recruiter_id: Option<String>,
    condition: Option<i64>,
    seed: i64,
    task_order: String,
    status: String,
    step: i64,
    consent: Option<bool>,
    consent_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    completion_code: Option<String>,
    preview: bool,
    excluded: bool,
    reset_at: Option<OffsetDateTime>,
    arm: Option<String>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Session, StoreError> {
        let task_order: Vec<usize> = serde_json::from_str(&row.task_order).map_err(|e| {
            anyhow::anyhow!(
                "session {}: bad task_order {:?}: {e}",
                row.id,
                row.task_order
            )
        })?;
        let status = SessionStatus::parse(&row.status).ok_or_else(|| {
            anyhow::anyhow!("session {}: unknown status {:?}", row.id, row.status)
        })?;
        Ok(Session {
            id: row.id,
            experiment: row.experiment,
            experiment_version: row.experiment_version,
            recruiter_id: row.recruiter_id,
            condition: row.condition,
            seed: row.seed,
            task_order,
            status,
            step: row.step,
            consent: row.consent,
            consent_at: row.consent_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            completed_at: row.completed_at,
            completion_code: row.completion_code,
            preview: row.preview,
            excluded: row.excluded,
            reset_at: row.reset_at,
            arm: row.arm,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TrialRow {
    session_id: String,
    step: i64,
    phase: String,
    position: i64,
    task_index: i64,
    label: String,
    started_at: OffsetDateTime,
    started_ms: i64,
    ended_at: Option<OffsetDateTime>,
    ended_ms: Option<i64>,
    outcome: Option<String>,
    program: Option<String>,
    runs: i64,
}

impl TryFrom<TrialRow> for Trial {
    type Error = StoreError;

    fn try_from(row: TrialRow) -> Result<Trial, StoreError> {
        let outcome = match &row.outcome {
            None => None,
            Some(text) => Some(TrialOutcome::parse(text).ok_or_else(|| {
                anyhow::anyhow!(
                    "trial {}/{}: unknown outcome {text:?}",
                    row.session_id,
                    row.step
                )
            })?),
        };
        let phase = Phase::parse(&row.phase).ok_or_else(|| {
            anyhow::anyhow!(
                "trial {}/{}: unknown phase {:?}",
                row.session_id,
                row.step,
                row.phase
            )
        })?;
        Ok(Trial {
            session_id: row.session_id,
            step: row.step,
            phase,
            position: row.position,
            task_index: row.task_index,
            label: row.label,
            started_at: row.started_at,
            started_ms: row.started_ms,
            ended_at: row.ended_at,
            ended_ms: row.ended_ms,
            outcome,
            program: row.program,
            runs: row.runs,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    session_id: String,
    seq: i64,
    step: i64,
    program: String,
    mode: String,
    solved: bool,
    steps: i64,
    created_at: OffsetDateTime,
    session_ms: i64,
}

impl From<RunRow> for Run {
    fn from(row: RunRow) -> Run {
        Run {
            session_id: row.session_id,
            seq: row.seq,
            step: row.step,
            program: row.program,
            mode: row.mode,
            solved: row.solved,
            steps: row.steps,
            created_at: row.created_at,
            session_ms: row.session_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    kind: String,
    step: Option<i64>,
    client_ms: Option<i64>,
    data: Json<serde_json::Value>,
    received_at: OffsetDateTime,
    session_ms: i64,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> StoredEvent {
        StoredEvent {
            seq: row.seq,
            kind: row.kind,
            step: row.step,
            client_ms: row.client_ms,
            data: row.data.0,
            received_at: row.received_at,
            session_ms: row.session_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AnswerRow {
    item: String,
    answer: String,
    answered_at: OffsetDateTime,
}

impl From<AnswerRow> for Answer {
    fn from(row: AnswerRow) -> Answer {
        Answer {
            item: row.item,
            answer: row.answer,
            answered_at: row.answered_at,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::Other(error.into())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Other(error.into())
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

pub(crate) fn params_map(rows: Vec<(String, String)>) -> BTreeMap<String, String> {
    rows.into_iter().collect()
}

/// The least-used condition among `0..n` (lowest index on ties), given `(condition, assigned)`
/// rows.
pub(crate) fn least_used(rows: &[(i64, i64)], n: usize) -> usize {
    (0..n)
        .min_by_key(|&c| {
            let assigned = rows
                .iter()
                .find(|(condition, _)| *condition == c as i64)
                .map_or(0, |(_, a)| *a);
            (assigned, c)
        })
        .unwrap_or(0)
}

/// The reads the shared queries build on, as inherent methods of `$store` so both the participant
/// and the researcher queries can call them on any executor (pool or transaction).
/// Expanded inside [`crate::store::sql::impl_store!`]'s scope, which imports the names used here.
macro_rules! impl_fetch {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn fetch_session<'e, E>(executor: E, id: &str) -> StoreResult<Session>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!("SELECT {} FROM sessions WHERE id = $1", SESSION_COLUMNS);
                let row: Option<SessionRow> = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(executor)
                    .await?;
                row.ok_or(StoreError::NotFound)?.try_into()
            }

            async fn fetch_trial<'e, E>(
                executor: E,
                session_id: &str,
                step: i64,
            ) -> StoreResult<Trial>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!(
                    "SELECT {} FROM trials WHERE session_id = $1 AND step = $2",
                    TRIAL_COLUMNS
                );
                let row: Option<TrialRow> = sqlx::query_as(&sql)
                    .bind(session_id)
                    .bind(step)
                    .fetch_optional(executor)
                    .await?;
                row.ok_or(StoreError::NotFound)?.try_into()
            }

            async fn fetch_run<'e, E>(
                executor: E,
                session_id: &str,
                seq: i64,
            ) -> StoreResult<Option<Run>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!(
                    "SELECT {} FROM runs WHERE session_id = $1 AND seq = $2",
                    RUN_COLUMNS
                );
                let row: Option<RunRow> = sqlx::query_as(&sql)
                    .bind(session_id)
                    .bind(seq)
                    .fetch_optional(executor)
                    .await?;
                Ok(row.map(Into::into))
            }

            /// A session's trials, in step order.
            pub(in crate::store) async fn fetch_trials<'e, E>(
                executor: E,
                session_id: &str,
            ) -> StoreResult<Vec<Trial>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!(
                    "SELECT {} FROM trials WHERE session_id = $1 ORDER BY step",
                    TRIAL_COLUMNS
                );
                let rows: Vec<TrialRow> = sqlx::query_as(&sql)
                    .bind(session_id)
                    .fetch_all(executor)
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }
        }
    };
}

pub(crate) use impl_fetch;

#[cfg(test)]
mod tests {
    use super::least_used;

    #[test]
    fn least_used_condition_prefers_fewest_then_lowest_index() {
        assert_eq!(least_used(&[], 3), 0);
        assert_eq!(least_used(&[(0, 2), (1, 1), (2, 1)], 3), 1);
        assert_eq!(
            least_used(&[(0, 1), (1, 1)], 3),
            2,
            "a condition without a row has 0"
        );
        assert_eq!(
            least_used(&[(0, 0), (1, 0), (5, 0)], 2),
            0,
            "rows beyond n are ignored"
        );
    }
}
