//! What a researcher can do about one participant, and what the dashboard needs beyond the
//! sessions themselves: exclusion, resets, unlocking a recruiter ID, notes, the records left by
//! withdrawals, and a cheap stamp that changes whenever anything the dashboard shows does.
//!
//! Nothing here deletes data: an exclusion is a flag, a reset moves the time limit's start, an
//! unlock removes only the row that refuses a second entry (the earlier session stays), and notes
//! are only ever added. Each action is written to the audit log by its caller
//! (`crate::researcher::actions`).

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::store::{PostgresStore, SqliteStore, StoreError, StoreResult};

/// A researcher's note on a participant.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: i64,
    pub session_id: String,
    pub author: String,
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What is left of a withdrawn session.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Withdrawal {
    pub session_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub withdrawn_at: OffsetDateTime,
}

/// The researcher's actions on participants; both stores have them.
#[async_trait]
pub trait ParticipantActions: Send + Sync {
    /// Sets or clears the excluded flag. NotFound if there is no such session.
    async fn set_excluded(&self, session_id: &str, excluded: bool) -> StoreResult<()>;

    /// Restarts the session's time limit at `at`. NotFound if there is no such session.
    async fn reset_session(&self, session_id: &str, at: OffsetDateTime) -> StoreResult<()>;

    /// Lets `recruiter_id` enter the experiment again: removes the row that refuses a repeat.
    /// Returns the session that held it, if any; the session itself is kept.
    async fn unlock_recruiter_id(
        &self,
        experiment: &str,
        recruiter_id: &str,
    ) -> StoreResult<Option<String>>;

    /// Adds a note. NotFound if there is no such session.
    async fn add_note(
        &self,
        session_id: &str,
        author: &str,
        note: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// The notes on a session, oldest first.
    async fn notes(&self, session_id: &str) -> StoreResult<Vec<Note>>;

    /// How many notes each session of an experiment has.
    async fn note_counts(&self, experiment: &str) -> StoreResult<Vec<(String, i64)>>;

    /// The experiment's withdrawals, newest first.
    async fn withdrawals(&self, experiment: &str) -> StoreResult<Vec<Withdrawal>>;

    /// A value that changes whenever a session of the experiment starts, moves, ends, records a
    /// run or an event, is acted on, or an arrival is refused: what the dashboard's live updates
    /// poll. Read from the database, so it sees sessions served by every instance.
    async fn change_stamp(&self, experiment: &str) -> StoreResult<String>;
}

macro_rules! impl_actions {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl ParticipantActions for $store {
            async fn set_excluded(&self, session_id: &str, excluded: bool) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("UPDATE sessions SET excluded = $2 WHERE id = $1")
                    .bind(session_id)
                    .bind(excluded)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn reset_session(&self, session_id: &str, at: OffsetDateTime) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("UPDATE sessions SET reset_at = $2 WHERE id = $1")
                    .bind(session_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn unlock_recruiter_id(
                &self,
                experiment: &str,
                recruiter_id: &str,
            ) -> StoreResult<Option<String>> {
                let mut tx = self.begin_write().await?;
                let held: Option<(String,)> = sqlx::query_as(
                    "SELECT session_id FROM participations WHERE experiment = $1 AND recruiter_id = $2",
                )
                .bind(experiment)
                .bind(recruiter_id)
                .fetch_optional(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM participations WHERE experiment = $1 AND recruiter_id = $2")
                    .bind(experiment)
                    .bind(recruiter_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(held.map(|(id,)| id))
            }

            async fn add_note(
                &self,
                session_id: &str,
                author: &str,
                note: &str,
                at: OffsetDateTime,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM sessions WHERE id = $1")
                    .bind(session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                sqlx::query(
                    "INSERT INTO participant_notes (session_id, author, note, at) VALUES ($1, $2, $3, $4)",
                )
                .bind(session_id)
                .bind(author)
                .bind(note)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn notes(&self, session_id: &str) -> StoreResult<Vec<Note>> {
                Ok(sqlx::query_as(
                    "SELECT id, session_id, author, note, at FROM participant_notes \
                     WHERE session_id = $1 ORDER BY id",
                )
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn note_counts(&self, experiment: &str) -> StoreResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT n.session_id, COUNT(*) FROM participant_notes n \
                     JOIN sessions s ON s.id = n.session_id WHERE s.experiment = $1 \
                     GROUP BY n.session_id",
                )
                .bind(experiment)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn withdrawals(&self, experiment: &str) -> StoreResult<Vec<Withdrawal>> {
                let sql = format!(
                    "SELECT session_id, started_at, withdrawn_at FROM withdrawals \
                     WHERE experiment = $1 ORDER BY {} DESC",
                    crate::store::rows::by_time::<$db>("withdrawn_at")
                );
                Ok(sqlx::query_as(&sql)
                    .bind(experiment)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn change_stamp(&self, experiment: &str) -> StoreResult<String> {
                // Counts and the latest change of step or status; each query is an index range
                // or a join on the session's key.
                let (sessions, latest, excluded, resets): (i64, Option<OffsetDateTime>, i64, i64) =
                    sqlx::query_as(
                        "SELECT COUNT(*), MAX(updated_at), \
                         COALESCE(SUM(CASE WHEN excluded THEN 1 ELSE 0 END), 0), \
                         COUNT(reset_at) FROM sessions WHERE experiment = $1",
                    )
                    .bind(experiment)
                    .fetch_one(&self.pool)
                    .await?;
                let mut stamp = format!(
                    "{sessions}/{}/{excluded}/{resets}",
                    latest.map_or(0, |t| t.unix_timestamp_nanos())
                );
                for table in ["runs", "events", "participant_notes"] {
                    let (count,): (i64,) = sqlx::query_as(&format!(
                        "SELECT COUNT(*) FROM {table} x JOIN sessions s ON s.id = x.session_id \
                         WHERE s.experiment = $1"
                    ))
                    .bind(experiment)
                    .fetch_one(&self.pool)
                    .await?;
                    stamp.push_str(&format!("/{count}"));
                }
                for table in ["refused_arrivals", "withdrawals"] {
                    let (count,): (i64,) = sqlx::query_as(&format!(
                        "SELECT COUNT(*) FROM {table} WHERE experiment = $1"
                    ))
                    .bind(experiment)
                    .fetch_one(&self.pool)
                    .await?;
                    stamp.push_str(&format!("/{count}"));
                }
                Ok(stamp)
            }
        }
    };
}

impl_actions!(SqliteStore, sqlx::Sqlite);
impl_actions!(PostgresStore, sqlx::Postgres);
