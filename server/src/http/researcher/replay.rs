//! A participant's page: the replay of every trial, the events outside the trials and the
//! questionnaire answers; and running any program on any task of the experiment from it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;

use super::{SignedIn, experiment_of, exporter};
use crate::researcher::ResearcherError;
use crate::researcher::export::ExportOptions;
use crate::researcher::replay::{self as replay_model, ResearcherRun};
use crate::state::AppState;
use crate::store::StoreError;
use crate::study::views;

/// A program to run from the replay page (nothing is recorded).
#[derive(Debug, Deserialize)]
pub struct ReplayRunRequest {
    /// `tutorial`, `practice` or `tasks`.
    #[serde(default = "tasks_phase")]
    pub phase: String,
    pub task: usize,
    pub program: String,
}

fn tasks_phase() -> String {
    "tasks".into()
}

/// Runs any program on any task of the experiment (nothing is recorded).
pub(super) async fn run_program(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(request): Json<ReplayRunRequest>,
) -> Result<Json<ResearcherRun>, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let run =
        replay_model::run_program(&experiment, &request.phase, request.task, &request.program)?;
    Ok(Json(run))
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/replay.html")]
pub struct ReplayPage {
    pub username: String,
    pub csrf: String,
    pub slug: String,
    pub title: String,
    pub pseudonym: String,
    pub session_id: String,
    pub status: String,
    pub trials: Vec<replay_model::ReplayTrial>,
    pub outside: Vec<replay_model::SessionEvent>,
    pub answers: Vec<replay_model::AnswerView>,
    /// Whether the experiment has a questionnaire.
    pub has_questionnaire: bool,
    /// The replay data as JSON for the script; askama escapes it for the attribute.
    pub data_json: String,
    pub tasks: Vec<(usize, String)>,
}

pub(super) async fn replay_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path((slug, session_id)): Path<(String, String)>,
) -> Result<ReplayPage, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let no_such_participant =
        || ResearcherError::NotFound("no such participant in this experiment".into());
    let session = match state.store.session(&session_id).await {
        Ok(session) if session.experiment == slug => session,
        Ok(_) | Err(StoreError::NotFound) => return Err(no_such_participant()),
        Err(e) => return Err(ResearcherError::Other(e.into())),
    };
    let exporter = exporter(&state, &experiment, ExportOptions::default()).await?;
    let replay = replay_model::replay(state.store.as_ref(), &experiment, &session_id).await?;
    // Every main task's level, so "Run any program" can show the chosen task at its start.
    let task_maps: Vec<_> = experiment
        .tasks
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            serde_json::json!({
                "index": index,
                "label": entry.label,
                "map": views::map(&entry.task),
            })
        })
        .collect();
    let data = serde_json::json!({
        "experiment": slug,
        "run_url": format!("/researcher/experiments/{slug}/run"),
        "csrf": who.csrf_token,
        "subroutines": experiment.limits.subroutines,
        // How the level is drawn (`isometric` or `flat`), as participants saw it.
        "board": experiment.board,
        "trials": replay.trials,
        "tasks": task_maps,
    });
    Ok(ReplayPage {
        username: who.username,
        csrf: who.csrf_token.clone(),
        title: experiment.title.clone(),
        pseudonym: exporter.pseudonyms().of_session(&session),
        session_id: session.id.clone(),
        status: session.status.as_str().to_owned(),
        trials: replay.trials,
        outside: replay.outside,
        answers: replay.answers,
        has_questionnaire: !experiment.questionnaire.is_empty(),
        data_json: data.to_string(),
        tasks: experiment
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.label.clone()))
            .collect(),
        slug,
    })
}
