//! The researcher's pages and endpoints under `/researcher` (askama templates under
//! `templates/researcher/`, scripts under `static/js/researcher/`).
//!
//! Every route but sign-in comes from one table, [`route_table`]; the router puts all of them
//! behind [`guard::require_researcher`], which refuses a request without a live session (a
//! redirect to sign-in for a page, 401 otherwise) and a state-changing request without the
//! session's CSRF token (the `csrf` form field or the `X-CSRF-Token` header). Handlers therefore
//! cannot forget either check. Sign-in itself is protected by a double-submit CSRF cookie.
//!
//! Handlers return `Result<_, ResearcherError>`; `http::error` turns an error into its response.

mod downloads;
pub mod error_pages;
pub mod guard;
mod levels;
mod pages;
mod participants;
mod preview;
mod replay;
mod sign_in;

use std::sync::Arc;

use axum::Router;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::experiment::Experiment;
use crate::researcher::ResearcherError;
use crate::researcher::export::{ExportOptions, Exporter};
use crate::state::AppState;

pub use guard::SignedIn;

/// Header carrying the CSRF token of script requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// One entry of the researcher route table.
pub struct RouteEntry {
    pub method: Method,
    /// Axum path syntax, `{param}` placeholders included.
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn entry(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> RouteEntry {
    RouteEntry {
        method,
        path,
        handler,
    }
}

/// Every researcher route that needs a session: the one table the router is built from.
pub fn route_table() -> Vec<RouteEntry> {
    vec![
        entry(Method::GET, "/researcher", get(pages::home)),
        entry(
            Method::POST,
            "/researcher/sign-out",
            post(sign_in::sign_out),
        ),
        entry(Method::GET, "/researcher/audit", get(pages::audit_page)),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}",
            get(pages::experiment_page),
        ),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}/participants.json",
            get(participants::participants_json),
        ),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}/live",
            get(participants::live),
        ),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}/participants/{session}",
            get(participants::participant_page),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/participants/{session}/exclude",
            post(participants::exclude),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/participants/{session}/reset",
            post(participants::reset),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/participants/{session}/note",
            post(participants::note),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/unlock",
            post(participants::unlock),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/export",
            post(downloads::export),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/withdraw",
            post(pages::withdraw_participant),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/preview",
            post(preview::start_preview),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/run",
            post(replay::run_program),
        ),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}/sessions/{session}",
            get(replay::replay_page),
        ),
        entry(
            Method::GET,
            "/researcher/levels/editor",
            get(levels::editor_page),
        ),
        entry(
            Method::POST,
            "/researcher/levels/check",
            post(levels::check_level),
        ),
        entry(
            Method::POST,
            "/researcher/levels/save",
            post(levels::save_level),
        ),
        entry(
            Method::GET,
            "/researcher/levels/files/{name}",
            get(levels::level_file),
        ),
    ]
}

/// The researcher router: sign-in, and the route table behind [`guard::require_researcher`].
pub fn router(state: AppState) -> Router<AppState> {
    let mut protected = Router::new();
    for route in route_table() {
        protected = protected.route(route.path, route.handler);
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(
        state,
        guard::require_researcher,
    ));
    Router::new()
        .route(
            "/researcher/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .merge(protected)
        .layer(middleware::from_fn(error_pages::error_pages))
}

/// A `303 See Other` to `to`.
fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The experiment a path names, among those this server runs.
fn experiment_of(state: &AppState, slug: &str) -> Result<Arc<Experiment>, ResearcherError> {
    state
        .experiments
        .get(slug)
        .cloned()
        .ok_or_else(|| ResearcherError::NotFound(format!("no experiment `{slug}`")))
}

/// The experiment's exporter, which also holds its pseudonyms (the dashboard and the replay name
/// participants by them).
async fn exporter(
    state: &AppState,
    experiment: &Arc<Experiment>,
    options: ExportOptions,
) -> Result<Exporter, ResearcherError> {
    Exporter::new(
        state.store.clone(),
        state.research.clone(),
        experiment.clone(),
        options,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_entry_is_under_researcher() {
        for route in route_table() {
            assert!(route.path.starts_with("/researcher"), "{}", route.path);
        }
    }
}
