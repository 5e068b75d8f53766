//! The HTML front door (askama): a list of studies at `/` and a page per study at
//! `/e/{experiment}`, which the browser app (static JS) takes over. Entry URL parameters stay in
//! the page's address for the app to read; the server does not log them.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/e/{experiment}", get(experiment))
}

pub struct ExperimentLink {
    pub slug: String,
    pub title: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "front_door/index.html")]
pub struct IndexPage {
    pub experiments: Vec<ExperimentLink>,
}

#[derive(Template, WebTemplate)]
#[template(path = "front_door/experiment.html")]
pub struct ExperimentPage {
    pub slug: String,
    pub title: String,
    /// Rendered from the researcher's own Markdown.
    pub description_html: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "front_door/not_found.html")]
pub struct NotFoundPage {
    pub slug: String,
}

async fn index(State(state): State<AppState>) -> IndexPage {
    let experiments = state
        .experiments
        .iter()
        .map(|experiment| ExperimentLink {
            slug: experiment.slug.to_string(),
            title: experiment.title.clone(),
        })
        .collect();
    IndexPage { experiments }
}

async fn experiment(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    match state.experiments.get(&slug) {
        Some(experiment) => ExperimentPage {
            slug: experiment.slug.to_string(),
            title: experiment.title.clone(),
            description_html: experiment
                .description
                .as_ref()
                .map(|text| text.html.clone()),
        }
        .into_response(),
        None => (StatusCode::NOT_FOUND, NotFoundPage { slug }).into_response(),
    }
}
