//! Prometheus metrics (docs/deploy.md): request counts and latency per route, events stored,
//! runs executed, sessions per experiment and state, and the database pool's use.
//!
//! Served at `/metrics` on a listener of its own (`--metrics-listen`), never on the public
//! address: the counts say how many people are in a study right now, which is nobody else's
//! business. Counters live in memory and start at zero with each process; sessions and the pool
//! are read from the store at each scrape.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::Store;

/// The session states every experiment reports, zero when it has none in that state.
const STATES: [&str; 3] = ["active", "completed", "declined"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    experiment: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    events_stored: Counter,
    runs_executed: Counter,
    sessions: Family<SessionLabels, Gauge>,
    pool: Family<PoolLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("proglab");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        // 1 ms to about 16 s.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method and route",
            latency.clone(),
        );
        let events_stored = Counter::default();
        registry.register(
            "events_stored",
            "Client events stored (not counting duplicates of stored ones)",
            events_stored.clone(),
        );
        let runs_executed = Counter::default();
        registry.register(
            "runs_executed",
            "Programs run for participants (not counting retried run numbers)",
            runs_executed.clone(),
        );
        let sessions = Family::<SessionLabels, Gauge>::default();
        registry.register(
            "sessions",
            "Sessions in the database, by experiment and state",
            sessions.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "database_connections",
            "Database pool connections, by state (busy or idle)",
            pool.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            events_stored,
            runs_executed,
            sessions,
            pool,
        }
    }
}

impl Metrics {
    pub fn event_stored(&self, count: usize) {
        self.events_stored.inc_by(count as u64);
    }

    pub fn run_executed(&self) {
        self.runs_executed.inc();
    }

    fn request(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The text exposition, with the store's figures read now.
    pub async fn render(&self, store: &dyn Store) -> anyhow::Result<String> {
        let counts = store.session_counts().await?;
        let experiments: std::collections::BTreeSet<&str> =
            counts.iter().map(|(e, _, _)| e.as_str()).collect();
        for experiment in experiments {
            for state in STATES {
                let n = counts
                    .iter()
                    .find(|(e, s, _)| e == experiment && s == state)
                    .map_or(0, |(_, _, n)| *n);
                self.sessions
                    .get_or_create(&SessionLabels {
                        experiment: experiment.to_owned(),
                        state: state.to_owned(),
                    })
                    .set(n);
            }
        }
        let pool = store.pool_use();
        for (state, n) in [
            ("busy", pool.open.saturating_sub(pool.idle)),
            ("idle", pool.idle),
        ] {
            self.pool
                .get_or_create(&PoolLabels {
                    state: state.to_owned(),
                })
                .set(i64::from(n));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Middleware on the public router: counts and times every request by its route pattern (never
/// the path itself, which may hold IDs).
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.request(
        &method,
        &route,
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The metrics listener's router: `/metrics` only.
pub fn router(metrics: Arc<Metrics>, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, store))
}

async fn scrape(State((metrics, store)): State<(Arc<Metrics>, Arc<dyn Store>)>) -> Response {
    match metrics.render(store.as_ref()).await {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database did not answer\n",
            )
                .into_response()
        }
    }
}
