//! The event writes both backends share: one request's events, a whole group of requests'
//! events as multi-row inserts, and the batch-by-batch fallback of the group commit
//! (`store::group_commit`). Expanded inside [`crate::store::sql::impl_store!`]'s scope, which
//! imports the names used here.

/// Adds the event-writing helpers to `$store` (see the module's documentation).
macro_rules! impl_event_writes {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inserts one request's events inside the caller's transaction, each once per
            /// `(session, seq)`.
            async fn insert_events(
                conn: &mut <$db as sqlx::Database>::Connection,
                session_id: &str,
                events: &[NewEvent],
                at: time::OffsetDateTime,
                session_ms: i64,
            ) -> StoreResult<EventsStored> {
                let (mut stored, mut duplicates) = (Vec::new(), Vec::new());
                for event in events {
                    // A number repeated within the batch is stored once, from its first
                    // copy; the later copy conflicts below and is reported as a duplicate.
                    if !stored.contains(&event.seq) {
                        stored.push(event.seq);
                    }
                    let inserted = sqlx::query(
                        "INSERT INTO events (session_id, seq, kind, step, client_ms, data, received_at, session_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (session_id, seq) DO NOTHING",
                    )
                    .bind(session_id)
                    .bind(event.seq)
                    .bind(&event.kind)
                    .bind(event.step)
                    .bind(event.client_ms)
                    .bind(sqlx::types::Json(&event.data))
                    .bind(at)
                    .bind(session_ms)
                    .execute(&mut *conn)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        duplicates.push(event.seq);
                    }
                }
                Ok(EventsStored { stored, duplicates })
            }

            /// Stores every event of a group in one transaction of multi-row inserts and
            /// answers each batch from the rows the database reports inserted.
            async fn insert_group(&self, batches: &[EventBatch]) -> StoreResult<Vec<EventsStored>> {
                // Eight parameters a row: 1,000 rows stay well inside both databases' limits
                // on parameters per statement (SQLite 32,766, Postgres 65,535).
                const ROWS_PER_STATEMENT: usize = 1000;
                let rows: Vec<(&EventBatch, &NewEvent)> = batches
                    .iter()
                    .flat_map(|batch| batch.events.iter().map(move |event| (batch, event)))
                    .collect();
                let mut tx = self.begin_write().await?;
                let mut inserted = std::collections::HashSet::new();
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO events (session_id, seq, kind, step, client_ms, data, received_at, session_ms) ",
                    );
                    query.push_values(chunk, |mut row, (batch, event)| {
                        row.push_bind(&batch.session_id)
                            .push_bind(event.seq)
                            .push_bind(&event.kind)
                            .push_bind(event.step)
                            .push_bind(event.client_ms)
                            .push_bind(sqlx::types::Json(&event.data))
                            .push_bind(batch.at)
                            .push_bind(batch.session_ms);
                    });
                    query.push(" ON CONFLICT (session_id, seq) DO NOTHING RETURNING session_id, seq");
                    let keys: Vec<(String, i64)> =
                        query.build_query_as().fetch_all(&mut *tx).await?;
                    inserted.extend(keys);
                }
                tx.commit().await?;
                Ok($crate::store::group_commit::answers_from_inserted(batches, inserted))
            }

            /// Stores a group batch by batch in one transaction, each batch inside a
            /// savepoint: one that fails is rolled back alone and its batch-mates commit.
            async fn store_batches_one_by_one(
                &self,
                batches: &[EventBatch],
            ) -> StoreResult<Vec<StoreResult<EventsStored>>> {
                let mut tx = self.begin_write().await?;
                let mut results = Vec::with_capacity(batches.len());
                for batch in batches {
                    let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
                    let result = Self::insert_events(
                        &mut savepoint,
                        &batch.session_id,
                        &batch.events,
                        batch.at,
                        batch.session_ms,
                    )
                    .await;
                    match result {
                        Ok(stored) => {
                            savepoint.commit().await?;
                            results.push(Ok(stored));
                        }
                        Err(error) => {
                            savepoint.rollback().await?;
                            results.push(Err(error));
                        }
                    }
                }
                tx.commit().await?;
                Ok(results)
            }
        }
    };
}

pub(crate) use impl_event_writes;
