//! The SQL both backends share.
//!
//! The queries are identical for SQLite and Postgres (sqlx binds `$1` placeholders on both), so
//! they are written once, in [`impl_store!`], and instantiated for each backend with its database
//! type and the two things that differ: how a write transaction starts (`begin_write`, defined by
//! each backend) and the row-lock suffix of the counterbalancing query (`FOR UPDATE` on Postgres;
//! SQLite's `BEGIN IMMEDIATE` already holds the only write lock; the assignment itself is in
//! `assign_sql`). The rows the queries read are in [`crate::store::rows`].

/// Implements [`crate::store::Store`] for `$store`, whose `pool` field is a `Pool<$db>` and which
/// has `async fn begin_write(&self) -> StoreResult<WriteTx<$db>>` and
/// `async fn write_gate(&self) -> WriteGate` (`store::write_tx`): every write goes through one
/// of the two.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal, $lock_suffix:literal) => {
        // An anonymous constant gives the expansion a scope of its own, so the queries can
        // import what they use instead of spelling out `$crate::store::` at every name.
        const _: () = {
            use $crate::domain::TokenHash;
            use $crate::store::rows::{
                self, AnswerRow, EVENT_COLUMNS, EventRow, RUN_COLUMNS, RunRow, SESSION_COLUMNS,
                SessionRow, TRIAL_COLUMNS, TrialRow,
            };
            use $crate::store::{
                Answer, Assignment, EventBatch, EventsStored, FinishTrial, NewEvent, NewSession, NewTrial,
                RefusedEvent, Run, RunRecorded, Session, SessionRecord, Store, StoreError, StoreResult, TableCounts,
                Trial,
            };

            $crate::store::rows::impl_fetch!($store, $db);

            $crate::store::event_sql::impl_event_writes!($store, $db);

            $crate::store::arrival_sql::impl_arrivals!($store, $db);

            $crate::store::assign_sql::impl_assign!($store, $db, $lock_suffix);

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    $backend
                }

                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(experiment = %new.experiment))]
                async fn create_session(&self, new: NewSession) -> StoreResult<Session> {
                    let mut tx = self.begin_write().await?;
                    let assigned = Self::assign(&mut tx, &new).await?;
                    let task_order =
                        serde_json::to_string(&assigned.task_order).map_err(anyhow::Error::from)?;
                    sqlx::query(
                        "INSERT INTO sessions (id, experiment, experiment_version, token_hash, recruiter_id, condition, seed, \
                         task_order, status, step, created_at, updated_at, preview, device, arm) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', 0, $9, $9, $10, $11, $12)",
                    )
                    .bind(&new.id)
                    .bind(&new.experiment)
                    .bind(&new.experiment_version)
                    .bind(&new.token_hash.0)
                    .bind(&new.recruiter_id)
                    .bind(assigned.condition)
                    .bind(assigned.seed)
                    .bind(&task_order)
                    .bind(new.at)
                    .bind(new.preview)
                    .bind(new.device.as_ref().map(sqlx::types::Json))
                    .bind(&assigned.arm)
                    .execute(&mut *tx)
                    .await?;
                    for (name, value) in &new.params {
                        sqlx::query("INSERT INTO session_params (session_id, name, value) VALUES ($1, $2, $3)")
                            .bind(&new.id)
                            .bind(name)
                            .bind(value)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if let (true, Some(recruiter_id)) = (new.unique_recruiter, &new.recruiter_id) {
                        let inserted = sqlx::query(
                            "INSERT INTO participations (experiment, recruiter_id, session_id) VALUES ($1, $2, $3)",
                        )
                        .bind(&new.experiment)
                        .bind(recruiter_id)
                        .bind(&new.id)
                        .execute(&mut *tx)
                        .await;
                        match inserted {
                            Ok(_) => {}
                            Err(e) if rows::is_unique_violation(&e) => {
                                return Err(StoreError::Conflict(
                                    "this recruiter ID already took part".into(),
                                ));
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    let session = Self::fetch_session(&mut *tx, &new.id).await?;
                    tx.commit().await?;
                    Ok(session)
                }

                async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Session> {
                    let sql = format!(
                        "SELECT {} FROM sessions WHERE token_hash = $1",
                        SESSION_COLUMNS
                    );
                    let row: Option<SessionRow> = sqlx::query_as(&sql)
                        .bind(&token_hash.0)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.ok_or(StoreError::NotFound)?.try_into()
                }

                async fn session(&self, session_id: &str) -> StoreResult<Session> {
                    Self::fetch_session(&self.pool, session_id).await
                }

                async fn params(
                    &self,
                    session_id: &str,
                ) -> StoreResult<std::collections::BTreeMap<String, String>> {
                    let params: Vec<(String, String)> =
                        sqlx::query_as("SELECT name, value FROM session_params WHERE session_id = $1 ORDER BY name")
                            .bind(session_id)
                            .fetch_all(&self.pool)
                            .await?;
                    Ok(rows::params_map(params))
                }

                async fn run(&self, session_id: &str, seq: i64) -> StoreResult<Option<Run>> {
                    Self::fetch_run(&self.pool, session_id, seq).await
                }

                #[tracing::instrument(skip_all, fields(session = %session_id))]
                async fn record_consent(
                    &self,
                    session_id: &str,
                    agree: bool,
                    at: time::OffsetDateTime,
                ) -> StoreResult<Session> {
                    let (step, status) = if agree {
                        (1i64, "active")
                    } else {
                        (0i64, "declined")
                    };
                    let gate = self.write_gate().await;
                    let updated = sqlx::query(
                        "UPDATE sessions SET consent = $2, consent_at = $3, step = $4, status = $5, updated_at = $3 \
                         WHERE id = $1 AND step = 0 AND status = 'active' AND consent IS NULL",
                    )
                    .bind(session_id)
                    .bind(agree)
                    .bind(at)
                    .bind(step)
                    .bind(status)
                    .execute(&self.pool)
                    .await?;
                    drop(gate);
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::Conflict("consent was already answered".into()));
                    }
                    Self::fetch_session(&self.pool, session_id).await
                }

                #[tracing::instrument(skip_all, fields(session = %session_id, step = from_step))]
                async fn advance(
                    &self,
                    session_id: &str,
                    from_step: i64,
                    at: time::OffsetDateTime,
                ) -> StoreResult<Session> {
                    let gate = self.write_gate().await;
                    let updated = sqlx::query(
                        "UPDATE sessions SET step = step + 1, updated_at = $3 WHERE id = $1 AND step = $2 AND status = 'active'",
                    )
                    .bind(session_id)
                    .bind(from_step)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                    drop(gate);
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "the session is not at step {from_step}"
                        )));
                    }
                    Self::fetch_session(&self.pool, session_id).await
                }

                async fn serve_trial(&self, new: NewTrial) -> StoreResult<Trial> {
                    let gate = self.write_gate().await;
                    sqlx::query(
                        "INSERT INTO trials (session_id, step, phase, position, task_index, label, started_at, started_ms, runs) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) ON CONFLICT (session_id, step) DO NOTHING",
                    )
                    .bind(&new.session_id)
                    .bind(new.step)
                    .bind(new.phase.as_str())
                    .bind(new.position)
                    .bind(new.task_index)
                    .bind(&new.label)
                    .bind(new.at)
                    .bind(new.ms)
                    .execute(&self.pool)
                    .await?;
                    drop(gate);
                    Self::fetch_trial(&self.pool, &new.session_id, new.step).await
                }

                async fn trial(&self, session_id: &str, step: i64) -> StoreResult<Trial> {
                    Self::fetch_trial(&self.pool, session_id, step).await
                }

                #[tracing::instrument(skip_all, fields(session = %run.session_id, seq = run.seq))]
                async fn record_run(&self, run: Run) -> StoreResult<RunRecorded> {
                    let same =
                        |stored: &Run| stored.program == run.program && stored.step == run.step;
                    let mut tx = self.begin_write().await?;
                    if let Some(stored) =
                        Self::fetch_run(&mut *tx, &run.session_id, run.seq).await?
                    {
                        return if same(&stored) {
                            Ok(RunRecorded::Existing(stored))
                        } else {
                            Err(StoreError::Conflict(format!(
                                "run {} was recorded with another program or step",
                                run.seq
                            )))
                        };
                    }
                    let inserted = sqlx::query(
                        "INSERT INTO runs (session_id, seq, step, program, mode, solved, steps, created_at, session_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&run.session_id)
                    .bind(run.seq)
                    .bind(run.step)
                    .bind(&run.program)
                    .bind(&run.mode)
                    .bind(run.solved)
                    .bind(run.steps)
                    .bind(run.created_at)
                    .bind(run.session_ms)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if rows::is_unique_violation(&e) => {
                            // A concurrent retry stored it first (Postgres); report the stored run.
                            drop(tx);
                            let stored = Self::fetch_run(&self.pool, &run.session_id, run.seq)
                                .await?
                                .ok_or(StoreError::NotFound)?;
                            return if same(&stored) {
                                Ok(RunRecorded::Existing(stored))
                            } else {
                                Err(StoreError::Conflict(format!(
                                    "run {} was recorded with another program or step",
                                    run.seq
                                )))
                            };
                        }
                        Err(e) => return Err(e.into()),
                    }
                    sqlx::query(
                        "UPDATE trials SET runs = runs + 1 WHERE session_id = $1 AND step = $2",
                    )
                    .bind(&run.session_id)
                    .bind(run.step)
                    .execute(&mut *tx)
                    .await?;
                    let stored = Self::fetch_run(&mut *tx, &run.session_id, run.seq)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    tx.commit().await?;
                    Ok(RunRecorded::New(stored))
                }

                #[tracing::instrument(skip_all, fields(session = %finish.session_id, step = finish.step))]
                async fn finish_trial(&self, finish: FinishTrial) -> StoreResult<Session> {
                    use StoreError;
                    let mut tx = self.begin_write().await?;
                    let ended = sqlx::query(
                        "UPDATE trials SET outcome = $3, program = $4, ended_at = $5, ended_ms = $6 \
                         WHERE session_id = $1 AND step = $2 AND outcome IS NULL",
                    )
                    .bind(&finish.session_id)
                    .bind(finish.step)
                    .bind(finish.outcome.as_str())
                    .bind(&finish.program)
                    .bind(finish.at)
                    .bind(finish.ms)
                    .execute(&mut *tx)
                    .await?;
                    if ended.rows_affected() == 0 {
                        return Err(StoreError::Conflict(
                            "the trial has already ended or was never served".into(),
                        ));
                    }
                    let advanced = sqlx::query(
                        "UPDATE sessions SET step = step + 1, updated_at = $3 WHERE id = $1 AND step = $2 AND status = 'active'",
                    )
                    .bind(&finish.session_id)
                    .bind(finish.step)
                    .bind(finish.at)
                    .execute(&mut *tx)
                    .await?;
                    if advanced.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "the session is not at step {}",
                            finish.step
                        )));
                    }
                    let session = Self::fetch_session(&mut *tx, &finish.session_id).await?;
                    tx.commit().await?;
                    Ok(session)
                }

                #[tracing::instrument(skip_all, fields(session = %session_id, n = events.len()))]
                async fn store_events(
                    &self,
                    session_id: &str,
                    events: &[NewEvent],
                    at: time::OffsetDateTime,
                    session_ms: i64,
                ) -> StoreResult<EventsStored> {
                    let mut tx = self.begin_write().await?;
                    let stored =
                        Self::insert_events(&mut tx, session_id, events, at, session_ms).await?;
                    tx.commit().await?;
                    Ok(stored)
                }

                #[tracing::instrument(skip_all, fields(batches = batches.len()))]
                async fn store_event_batches(
                    &self,
                    batches: &[EventBatch],
                ) -> StoreResult<Vec<StoreResult<EventsStored>>> {
                    // Usually every insert succeeds, and the whole group goes in as a few
                    // multi-row statements: one round trip to the database for many requests.
                    // If one fails, that transaction is rolled back and the group is stored
                    // again batch by batch, each in a savepoint, so only the failing batch fails.
                    match self.insert_group(batches).await {
                        Ok(answers) => return Ok(answers.into_iter().map(Ok).collect()),
                        Err(error) => tracing::info!(%error, "a group's insert failed; storing its batches one by one"),
                    }
                    self.store_batches_one_by_one(batches).await
                }

                #[tracing::instrument(skip_all, fields(session = %session_id, n = refused.len()))]
                async fn refuse_events(
                    &self,
                    session_id: &str,
                    refused: &[RefusedEvent],
                    at: time::OffsetDateTime,
                ) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    for event in refused {
                        sqlx::query(
                            "INSERT INTO refused_events (session_id, seq, reason, received_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (session_id, seq) DO NOTHING",
                        )
                        .bind(session_id)
                        .bind(event.seq)
                        .bind(&event.reason)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn max_seqs(&self, session_id: &str) -> StoreResult<(i64, i64)> {
                    let (event, refused, run): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
                        "SELECT (SELECT MAX(seq) FROM events WHERE session_id = $1), \
                         (SELECT MAX(seq) FROM refused_events WHERE session_id = $1), \
                         (SELECT MAX(seq) FROM runs WHERE session_id = $1)",
                    )
                    .bind(session_id)
                    .fetch_one(&self.pool)
                    .await?;
                    let event = event.unwrap_or(0).max(refused.unwrap_or(0));
                    Ok((event, run.unwrap_or(0)))
                }

                async fn missing_events(
                    &self,
                    session_id: &str,
                    through: i64,
                ) -> StoreResult<Vec<i64>> {
                    let stored: Vec<(i64,)> =
                        sqlx::query_as(
                            "SELECT seq FROM events WHERE session_id = $1 AND seq >= 1 AND seq <= $2 \
                             UNION SELECT seq FROM refused_events WHERE session_id = $1 AND seq >= 1 AND seq <= $2",
                        )
                            .bind(session_id)
                            .bind(through)
                            .fetch_all(&self.pool)
                            .await?;
                    let stored: std::collections::HashSet<i64> =
                        stored.into_iter().map(|(seq,)| seq).collect();
                    Ok((1..=through)
                        .filter(|seq| !stored.contains(seq))
                        .take(100)
                        .collect())
                }

                #[tracing::instrument(skip_all, fields(session = %session_id, step))]
                async fn save_answers(
                    &self,
                    session_id: &str,
                    step: i64,
                    answers: &[(String, String)],
                    at: time::OffsetDateTime,
                ) -> StoreResult<Session> {
                    use StoreError;
                    let mut tx = self.begin_write().await?;
                    let advanced = sqlx::query(
                        "UPDATE sessions SET step = step + 1, updated_at = $3 WHERE id = $1 AND step = $2 AND status = 'active'",
                    )
                    .bind(session_id)
                    .bind(step)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    if advanced.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "the session is not at step {step}"
                        )));
                    }
                    for (item, answer) in answers {
                        let inserted = sqlx::query("INSERT INTO answers (session_id, item, answer, answered_at) VALUES ($1, $2, $3, $4)")
                            .bind(session_id)
                            .bind(item)
                            .bind(answer)
                            .bind(at)
                            .execute(&mut *tx)
                            .await;
                        match inserted {
                            Ok(_) => {}
                            Err(e) if rows::is_unique_violation(&e) => {
                                return Err(StoreError::Conflict(format!(
                                    "`{item}` was already answered"
                                )));
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    let session = Self::fetch_session(&mut *tx, session_id).await?;
                    tx.commit().await?;
                    Ok(session)
                }

                async fn answers(&self, session_id: &str) -> StoreResult<Vec<Answer>> {
                    let rows: Vec<AnswerRow> =
                        sqlx::query_as("SELECT item, answer, answered_at FROM answers WHERE session_id = $1 ORDER BY item")
                            .bind(session_id)
                            .fetch_all(&self.pool)
                            .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                #[tracing::instrument(skip_all, fields(session = %session_id, step))]
                async fn complete_session(
                    &self,
                    session_id: &str,
                    step: i64,
                    code: &str,
                    at: time::OffsetDateTime,
                ) -> StoreResult<Session> {
                    let gate = self.write_gate().await;
                    let updated = sqlx::query(
                        "UPDATE sessions SET status = 'completed', completed_at = $3, completion_code = $4, updated_at = $3 \
                         WHERE id = $1 AND step = $2 AND status = 'active'",
                    )
                    .bind(session_id)
                    .bind(step)
                    .bind(at)
                    .bind(code)
                    .execute(&self.pool)
                    .await?;
                    drop(gate);
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::Conflict(
                            "the session cannot be completed now".into(),
                        ));
                    }
                    Self::fetch_session(&self.pool, session_id).await
                }

                async fn session_record(&self, session_id: &str) -> StoreResult<SessionRecord> {
                    let session = Self::fetch_session(&self.pool, session_id).await?;
                    let params = self.params(session_id).await?;
                    let trials = Self::fetch_trials(&self.pool, session_id).await?;
                    let sql = format!(
                        "SELECT {} FROM runs WHERE session_id = $1 ORDER BY seq",
                        RUN_COLUMNS
                    );
                    let runs: Vec<RunRow> = sqlx::query_as(&sql)
                        .bind(session_id)
                        .fetch_all(&self.pool)
                        .await?;
                    let sql = format!(
                        "SELECT {} FROM events WHERE session_id = $1 ORDER BY seq",
                        EVENT_COLUMNS
                    );
                    let events: Vec<EventRow> = sqlx::query_as(&sql)
                        .bind(session_id)
                        .fetch_all(&self.pool)
                        .await?;
                    let answers = self.answers(session_id).await?;
                    Ok(SessionRecord {
                        session,
                        params,
                        trials,
                        runs: runs.into_iter().map(Into::into).collect(),
                        events: events.into_iter().map(Into::into).collect(),
                        answers,
                    })
                }

                async fn sessions_of(&self, experiment: &str) -> StoreResult<Vec<Session>> {
                    let sql = format!(
                        "SELECT {} FROM sessions WHERE experiment = $1 ORDER BY {}, id",
                        SESSION_COLUMNS,
                        rows::by_time::<$db>("created_at")
                    );
                    let rows: Vec<SessionRow> = sqlx::query_as(&sql)
                        .bind(experiment)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }

                async fn table_counts(&self) -> StoreResult<TableCounts> {
                    let mut counts = TableCounts::default();
                    for (table, slot) in [
                        ("sessions", &mut counts.sessions),
                        ("session_params", &mut counts.session_params),
                        ("participations", &mut counts.participations),
                        ("assignment_counters", &mut counts.assignment_counters),
                        ("trials", &mut counts.trials),
                        ("runs", &mut counts.runs),
                        ("events", &mut counts.events),
                        ("answers", &mut counts.answers),
                    ] {
                        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                            .fetch_one(&self.pool)
                            .await?;
                        *slot = n;
                    }
                    Ok(counts)
                }

                async fn close(&self) {
                    self.pool.close().await;
                }
            }
        };
    };
}

pub(crate) use impl_store;
