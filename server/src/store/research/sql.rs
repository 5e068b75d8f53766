//! The researcher side's SQL, written once and instantiated for both backends.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::*;
use crate::store::{Answer, PostgresStore, SqliteStore, StoreError, StoreResult, Trial};

#[derive(sqlx::FromRow)]
struct ResearcherSessionRow {
    token_hash: String,
    username: String,
    csrf_token: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: OffsetDateTime,
    actor: String,
    action: String,
    experiment: Option<String>,
    detail: String,
}

#[derive(sqlx::FromRow)]
struct ResearchAnswerRow {
    session_id: String,
    item: String,
    answer: String,
    answered_at: OffsetDateTime,
}

/// The trial columns, qualified with the table alias `t`.
fn trial_columns_t() -> String {
    crate::store::rows::TRIAL_COLUMNS
        .split(',')
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_research {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl ResearchStore for $store {
            async fn add_researcher(
                &self,
                username: &str,
                password_hash: &str,
                at: OffsetDateTime,
            ) -> StoreResult<()> {
                let inserted = sqlx::query("INSERT INTO researchers (username, password_hash, created_at) VALUES ($1, $2, $3)")
                    .bind(username)
                    .bind(password_hash)
                    .bind(at)
                    .execute(&self.pool)
                    .await;
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if crate::store::rows::is_unique_violation(&e) => {
                        Err(StoreError::Conflict(format!(
                            "a researcher named `{username}` already exists"
                        )))
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn remove_researcher(&self, username: &str) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM researcher_sessions WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                let removed = sqlx::query("DELETE FROM researchers WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(removed.rows_affected() > 0)
            }

            async fn researchers(&self) -> StoreResult<Vec<ResearcherAccount>> {
                let rows: Vec<(String, OffsetDateTime)> = sqlx::query_as(
                    "SELECT username, created_at FROM researchers ORDER BY username",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(username, created_at)| ResearcherAccount {
                        username,
                        created_at,
                    })
                    .collect())
            }

            async fn password_hash(&self, username: &str) -> StoreResult<Option<String>> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT password_hash FROM researchers WHERE username = $1")
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(hash,)| hash))
            }

            async fn record_sign_in_failure(
                &self,
                username: &str,
                at: OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query("INSERT INTO sign_in_failures (username, failed_at) VALUES ($1, $2)")
                    .bind(username)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn sign_in_failures_since(
                &self,
                username: &str,
                since: OffsetDateTime,
            ) -> StoreResult<usize> {
                let rows: Vec<(OffsetDateTime,)> =
                    sqlx::query_as("SELECT failed_at FROM sign_in_failures WHERE username = $1")
                        .bind(username)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().filter(|(at,)| *at >= since).count())
            }

            async fn clear_sign_in_failures(&self, username: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM sign_in_failures WHERE username = $1")
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_researcher_session(
                &self,
                session: &ResearcherSession,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO researcher_sessions (token_hash, username, csrf_token, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&session.token_hash)
                .bind(&session.username)
                .bind(&session.csrf_token)
                .bind(session.created_at)
                .bind(session.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn researcher_session(
                &self,
                token_hash: &str,
            ) -> StoreResult<Option<ResearcherSession>> {
                let row: Option<ResearcherSessionRow> = sqlx::query_as(
                    "SELECT token_hash, username, csrf_token, created_at, expires_at FROM researcher_sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|r| ResearcherSession {
                    token_hash: r.token_hash,
                    username: r.username,
                    csrf_token: r.csrf_token,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                }))
            }

            async fn delete_researcher_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM researcher_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn record_audit(&self, entry: &NewAudit) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_log (at, actor, action, experiment, detail) VALUES ($1, $2, $3, $4, $5)")
                    .bind(entry.at)
                    .bind(&entry.actor)
                    .bind(&entry.action)
                    .bind(&entry.experiment)
                    .bind(&entry.detail)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
                let rows: Vec<AuditRow> = sqlx::query_as(
                    "SELECT id, at, actor, action, experiment, detail FROM audit_log ORDER BY id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| AuditEntry {
                        id: r.id,
                        at: r.at,
                        actor: r.actor,
                        action: r.action,
                        experiment: r.experiment,
                        detail: r.detail,
                    })
                    .collect())
            }

            async fn pseudonym_key(
                &self,
                experiment: &str,
                fresh: &str,
                at: OffsetDateTime,
            ) -> StoreResult<String> {
                sqlx::query(
                    "INSERT INTO experiment_keys (experiment, pseudonym_key, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (experiment) DO NOTHING",
                )
                .bind(experiment)
                .bind(fresh)
                .bind(at)
                .execute(&self.pool)
                .await?;
                let (key,): (String,) = sqlx::query_as(
                    "SELECT pseudonym_key FROM experiment_keys WHERE experiment = $1",
                )
                .bind(experiment)
                .fetch_one(&self.pool)
                .await?;
                Ok(key)
            }

            async fn session_trials(&self, session_id: &str) -> StoreResult<Vec<Trial>> {
                Self::fetch_trials(&self.pool, session_id).await
            }

            async fn experiment_trials(&self, experiment: &str) -> StoreResult<Vec<Trial>> {
                let sql = format!(
                    "SELECT {} FROM trials t JOIN sessions s ON s.id = t.session_id WHERE s.experiment = $1 \
                     ORDER BY {}, s.id, t.step",
                    trial_columns_t(),
                    crate::store::rows::by_time::<$db>("s.created_at")
                );
                let rows: Vec<crate::store::rows::TrialRow> = sqlx::query_as(&sql)
                    .bind(experiment)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn experiment_answers(
                &self,
                experiment: &str,
            ) -> StoreResult<Vec<(String, Answer)>> {
                let sql = format!(
                    "SELECT a.session_id, a.item, a.answer, a.answered_at FROM answers a JOIN sessions s ON s.id = a.session_id \
                     WHERE s.experiment = $1 ORDER BY {}, s.id, a.item",
                    crate::store::rows::by_time::<$db>("s.created_at")
                );
                let rows: Vec<ResearchAnswerRow> = sqlx::query_as(&sql)
                .bind(experiment)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        (
                            r.session_id,
                            Answer {
                                item: r.item,
                                answer: r.answer,
                                answered_at: r.answered_at,
                            },
                        )
                    })
                    .collect())
            }

            async fn activity(&self, experiment: &str) -> StoreResult<Vec<Activity>> {
                let mut latest: BTreeMap<String, i64> = BTreeMap::new();
                for table in ["runs", "events"] {
                    let sql = format!(
                        "SELECT x.session_id, MAX(x.session_ms) FROM {table} x JOIN sessions s ON s.id = x.session_id \
                         WHERE s.experiment = $1 GROUP BY x.session_id"
                    );
                    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(&sql)
                        .bind(experiment)
                        .fetch_all(&self.pool)
                        .await?;
                    for (session_id, ms) in rows {
                        let slot = latest.entry(session_id).or_insert(0);
                        *slot = (*slot).max(ms.unwrap_or(0));
                    }
                }
                Ok(latest
                    .into_iter()
                    .map(|(session_id, last_ms)| Activity {
                        session_id,
                        last_ms,
                    })
                    .collect())
            }

            async fn imported(&self, experiment: &str) -> StoreResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT i.session_id, i.participant_idx FROM imported_sessions i JOIN sessions s ON s.id = i.session_id \
                     WHERE s.experiment = $1 ORDER BY i.participant_idx",
                )
                .bind(experiment)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn import_sessions(&self, sessions: &[ImportedSession]) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                for imported in sessions {
                    let task_order =
                        serde_json::to_string(&imported.task_order).map_err(anyhow::Error::from)?;
                    sqlx::query(
                        "INSERT INTO sessions (id, experiment, experiment_version, token_hash, recruiter_id, condition, seed, \
                         task_order, status, step, consent, consent_at, created_at, updated_at, completed_at, completion_code) \
                         VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, 'completed', $7, TRUE, $8, $8, $9, $9, NULL)",
                    )
                    .bind(&imported.session_id)
                    .bind(&imported.experiment)
                    .bind(&imported.experiment_version)
                    .bind(&imported.token_hash)
                    .bind(imported.seed)
                    .bind(&task_order)
                    .bind(imported.step)
                    .bind(imported.created_at)
                    .bind(imported.completed_at)
                    .execute(&mut *tx)
                    .await?;
                    for (name, value) in &imported.params {
                        sqlx::query("INSERT INTO session_params (session_id, name, value) VALUES ($1, $2, $3)")
                            .bind(&imported.session_id)
                            .bind(name)
                            .bind(value)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for trial in &imported.trials {
                        sqlx::query(
                            "INSERT INTO trials (session_id, step, phase, position, task_index, label, started_at, started_ms, \
                             ended_at, ended_ms, outcome, program, runs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        )
                        .bind(&imported.session_id)
                        .bind(trial.step)
                        .bind(trial.phase.as_str())
                        .bind(trial.position)
                        .bind(trial.task_index)
                        .bind(&trial.label)
                        .bind(trial.started_at)
                        .bind(trial.started_ms)
                        .bind(trial.ended_at)
                        .bind(trial.ended_ms)
                        .bind(trial.outcome.map(|o| o.as_str()))
                        .bind(&trial.program)
                        .bind(trial.runs)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for (item, answer) in &imported.answers {
                        sqlx::query("INSERT INTO answers (session_id, item, answer, answered_at) VALUES ($1, $2, $3, $4)")
                            .bind(&imported.session_id)
                            .bind(item)
                            .bind(answer)
                            .bind(imported.completed_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query("INSERT INTO imported_sessions (session_id, source, participant_idx) VALUES ($1, $2, $3)")
                        .bind(&imported.session_id)
                        .bind(&imported.source)
                        .bind(imported.participant_idx)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn sessions_by_recruiter_id(
                &self,
                experiment: &str,
                recruiter_id: &str,
            ) -> StoreResult<Vec<String>> {
                let sql = format!(
                    "SELECT id FROM sessions WHERE experiment = $1 AND recruiter_id = $2 ORDER BY {}, id",
                    crate::store::rows::by_time::<$db>("created_at")
                );
                let rows: Vec<(String,)> = sqlx::query_as(&sql)
                .bind(experiment)
                .bind(recruiter_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            async fn withdraw_session(&self, session_id: &str) -> StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                // What is kept: that the session existed, when it started, when it was withdrawn.
                sqlx::query(
                    "INSERT INTO withdrawals (session_id, experiment, started_at, withdrawn_at) \
                     SELECT id, experiment, created_at, $2 FROM sessions WHERE id = $1",
                )
                .bind(session_id)
                .bind(crate::clock::now())
                .execute(&mut *tx)
                .await?;
                let mut deleted = 0;
                // Children first: runs refer to trials, everything refers to the session.
                for table in [
                    "participant_notes",
                    "answers",
                    "events",
                    "refused_events",
                    "superseded_tokens",
                    "runs",
                    "trials",
                    "session_params",
                    "participations",
                    "imported_sessions",
                ] {
                    let done = sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                        .bind(session_id)
                        .execute(&mut *tx)
                        .await?;
                    deleted += done.rows_affected();
                }
                let done = sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(session_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                deleted += done.rows_affected();
                tx.commit().await?;
                Ok(deleted)
            }
        }
    };
}

impl_research!(SqliteStore, sqlx::Sqlite);
impl_research!(PostgresStore, sqlx::Postgres);
