//! The researcher's pages: home, the audit log, an experiment's dashboard (with its live
//! participant table and withdrawal form).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::participants::{TableView, dashboard_notice, table_view};
use super::{SignedIn, experiment_of};
use crate::clock;
use crate::experiment::Experiment;
use crate::researcher::dashboard::{self, ExperimentCard, ExperimentDashboard};
use crate::researcher::export::Format;
use crate::researcher::participants::ParticipantQuery;
use crate::researcher::{ResearcherError, withdraw};
use crate::state::AppState;
use crate::store::research::AuditEntry;

#[derive(Template, WebTemplate)]
#[template(path = "researcher/home.html")]
pub struct HomePage {
    pub username: String,
    pub csrf: String,
    pub experiments: Vec<ExperimentCard>,
}

pub(super) async fn home(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
) -> Result<HomePage, ResearcherError> {
    let experiments =
        dashboard::experiment_cards(state.store.as_ref(), state.experiments.iter()).await?;
    Ok(HomePage {
        username: who.username,
        csrf: who.csrf_token,
        experiments,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/audit.html")]
pub struct AuditPage {
    pub username: String,
    pub csrf: String,
    pub entries: Vec<AuditRow>,
}

pub struct AuditRow {
    pub at: String,
    pub entry: AuditEntry,
}

pub(super) async fn audit_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
) -> Result<AuditPage, ResearcherError> {
    let entries = state.research.audit_log(500).await?;
    Ok(AuditPage {
        username: who.username,
        csrf: who.csrf_token,
        entries: entries
            .into_iter()
            .map(|entry| AuditRow {
                at: clock::rfc3339(entry.at),
                entry,
            })
            .collect(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/experiment.html")]
pub struct ExperimentPage {
    pub username: String,
    pub csrf: String,
    pub slug: String,
    pub title: String,
    pub dashboard: ExperimentDashboard,
    pub table: TableView,
    pub formats: Vec<&'static str>,
    pub bar: u32,
    pub notice: Option<String>,
}

/// The dashboard's query: the table's filters, sort and page, and the notice of a redirect.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    #[serde(flatten)]
    pub table: ParticipantQuery,
    #[serde(default)]
    pub done: Option<String>,
}

pub(super) async fn experiment_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let notice = dashboard_notice(query.done.as_deref());
    render_experiment(
        &state,
        who,
        &experiment,
        &query.table,
        notice,
        StatusCode::OK,
    )
    .await
}

/// The experiment page with the default table view and a notice (an inline message, for
/// outcomes of the page's own forms).
pub(super) async fn render_with_notice(
    state: &AppState,
    who: SignedIn,
    experiment: &Arc<Experiment>,
    notice: String,
    status: StatusCode,
) -> Result<Response, ResearcherError> {
    render_experiment(
        state,
        who,
        experiment,
        &ParticipantQuery::default(),
        Some(notice),
        status,
    )
    .await
}

async fn render_experiment(
    state: &AppState,
    who: SignedIn,
    experiment: &Arc<Experiment>,
    query: &ParticipantQuery,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, ResearcherError> {
    let dashboard =
        dashboard::experiment_dashboard(state.store.as_ref(), state.research.as_ref(), experiment)
            .await?;
    let table = table_view(state, experiment, query).await?;
    let page = ExperimentPage {
        username: who.username,
        csrf: who.csrf_token,
        slug: experiment.slug.to_string(),
        title: experiment.title.clone(),
        dashboard,
        table,
        // Psych-DS is a folder, written by the command line only.
        formats: Format::ALL
            .iter()
            .filter(|f| **f != Format::PsychDs)
            .map(|f| f.name())
            .collect(),
        bar: dashboard::BAR as u32,
        notice,
    };
    Ok((status, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    pub participant: String,
}

/// Withdraws a participant and shows the dashboard again with what was deleted, or with why
/// nothing was.
pub(super) async fn withdraw_participant(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(form): Form<WithdrawForm>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let result = withdraw::withdraw(
        state.store.clone(),
        state.research.clone(),
        experiment.clone(),
        &form.participant,
        &who.username,
        clock::now(),
    )
    .await;
    let (notice, status) = match result {
        Ok(done) => (
            format!(
                "Withdrawn: {} ({} session(s), {} rows deleted).",
                done.pseudonyms.join(", "),
                done.sessions,
                done.rows
            ),
            StatusCode::OK,
        ),
        Err(ResearcherError::NotFound(message) | ResearcherError::Invalid(message)) => {
            (message, StatusCode::NOT_FOUND)
        }
        Err(e) => return Err(e),
    };
    render_with_notice(&state, who, &experiment, notice, status).await
}
