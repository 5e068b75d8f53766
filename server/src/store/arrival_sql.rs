//! The SQL of [`crate::store::Arrivals`] and [`crate::store::Monitoring`], shared by both
//! backends. Expanded inside
//! [`crate::store::sql::impl_store!`]'s scope, which imports the names used here.

/// Implements [`crate::store::Arrivals`] and [`crate::store::Monitoring`] for `$store` (see the
/// module's documentation).
macro_rules! impl_arrivals {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Monitoring for $store {
            async fn session_counts(&self) -> StoreResult<Vec<(String, String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT experiment, status, COUNT(*) FROM sessions GROUP BY experiment, status \
                     ORDER BY experiment, status",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            fn pool_use(&self) -> $crate::store::PoolUse {
                $crate::store::PoolUse {
                    open: self.pool.size(),
                    idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Arrivals for $store {
            async fn latest_session_of(
                &self,
                experiment: &str,
                recruiter_id: &str,
            ) -> StoreResult<Option<Session>> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE experiment = $1 AND recruiter_id = $2 \
                     ORDER BY {} DESC, id DESC LIMIT 1",
                    SESSION_COLUMNS,
                    rows::by_time::<$db>("created_at")
                );
                let row: Option<SessionRow> = sqlx::query_as(&sql)
                    .bind(experiment)
                    .bind(recruiter_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Session::try_from).transpose()
            }

            async fn replace_token(
                &self,
                session_id: &str,
                new: &TokenHash,
                at: time::OffsetDateTime,
            ) -> StoreResult<Session> {
                let mut tx = self.begin_write().await?;
                let old: Option<(String,)> =
                    sqlx::query_as("SELECT token_hash FROM sessions WHERE id = $1")
                        .bind(session_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let (old,) = old.ok_or(StoreError::NotFound)?;
                sqlx::query(
                    "INSERT INTO superseded_tokens (token_hash, session_id, superseded_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO NOTHING",
                )
                .bind(&old)
                .bind(session_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE sessions SET token_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(&new.0)
                    .bind(at)
                    .bind(session_id)
                    .execute(&mut *tx)
                    .await?;
                let session = Self::fetch_session(&mut *tx, session_id).await?;
                tx.commit().await?;
                Ok(session)
            }

            async fn is_superseded(&self, token_hash: &TokenHash) -> StoreResult<bool> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT session_id FROM superseded_tokens WHERE token_hash = $1")
                        .bind(&token_hash.0)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.is_some())
            }

            async fn refuse_arrival(&self, arrival: $crate::store::RefusedArrival) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO refused_arrivals (experiment, reason, recruiter_id, params, device, at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&arrival.experiment)
                .bind(&arrival.reason)
                .bind(&arrival.recruiter_id)
                .bind(sqlx::types::Json(&arrival.params))
                .bind(arrival.device.as_ref().map(sqlx::types::Json))
                .bind(arrival.at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn refused_arrivals(
                &self,
                experiment: &str,
            ) -> StoreResult<Vec<$crate::store::RefusedArrival>> {
                #[allow(clippy::type_complexity)]
                let rows: Vec<(
                    String,
                    String,
                    Option<String>,
                    sqlx::types::Json<std::collections::BTreeMap<String, String>>,
                    Option<sqlx::types::Json<serde_json::Value>>,
                    time::OffsetDateTime,
                )> = sqlx::query_as(&format!(
                    "SELECT experiment, reason, recruiter_id, params, device, at FROM refused_arrivals \
                     WHERE experiment = $1 ORDER BY {}, id",
                    rows::by_time::<$db>("at")
                ))
                .bind(experiment)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(experiment, reason, recruiter_id, params, device, at)| {
                        $crate::store::RefusedArrival {
                            experiment,
                            reason,
                            recruiter_id,
                            params: params.0,
                            device: device.map(|d| d.0),
                            at,
                        }
                    })
                    .collect())
            }
        }
    };
}

pub(crate) use impl_arrivals;
