//! The participant API (`/api/v1/...`): thin handlers over [`crate::study`].

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};

use crate::api::{
    CompleteRequest, CompleteResponse, ConsentRequest, EntryRequest, EntryResponse, EventsRequest,
    EventsResponse, ExperimentView, QuestionnaireRequest, RunRequest, RunResponse, SessionView,
    SubmitRequest, SubmitResponse,
};
use crate::http::cookie;
use crate::http::error::AppError;
use crate::http::extract::{AppJson, MaybeParticipant, OptionalJson, Participant};
use crate::http::transport::Transport;
use crate::state::AppState;
use crate::study::{self, views};

/// Declares the API routes once: the router and the [`ROUTES`] list the OpenAPI test checks.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every API route as (method, path), in the axum path syntax.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        pub fn router() -> Router<AppState> {
            Router::new()$(.route($path, $method($handler)))*
        }
    };
}

api_routes! {
    get "/api/v1/health" => health;
    get "/api/v1/live" => live;
    get "/api/v1/openapi.json" => openapi;
    get "/api/v1/experiments/{slug}" => experiment;
    post "/api/v1/experiments/{slug}/sessions" => enter;
    get "/api/v1/session" => session;
    post "/api/v1/session/consent" => consent;
    post "/api/v1/session/steps/{step}/continue" => continue_step;
    post "/api/v1/session/steps/{step}/runs" => run;
    post "/api/v1/session/steps/{step}/submit" => submit;
    post "/api/v1/session/steps/{step}/skip" => skip;
    post "/api/v1/session/events" => events;
    post "/api/v1/session/questionnaire" => questionnaire;
    post "/api/v1/session/complete" => complete;
}

/// The OpenAPI document, kept by hand next to this file; a test checks it lists every route.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Liveness: the process answers. It does not touch the database, so a supervisor restarts a
/// hung process but not one whose database is briefly away (that is what `/health` reports).
async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "alive" }))
}

async fn health(State(state): State<AppState>) -> Result<Response, AppError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "draining", "database": state.store.backend() })),
        )
            .into_response());
    }
    state.store.ping().await?;
    Ok(
        Json(serde_json::json!({ "status": "ok", "database": state.store.backend() }))
            .into_response(),
    )
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
}

async fn experiment(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<ExperimentView>, AppError> {
    let experiment = state
        .experiments
        .get(&slug)
        .ok_or_else(|| AppError::NotFound(format!("no experiment `{slug}` on this server")))?;
    Ok(Json(ExperimentView {
        slug: experiment.slug.to_string(),
        title: experiment.title.clone(),
        description: experiment.description.as_ref().map(views::text),
        version: experiment.version.clone(),
        light: views::light_name(experiment.light).to_owned(),
        skip_delay_seconds: experiment.skip_delay.as_secs(),
        limits: views::limits(experiment),
        tutorial_steps: experiment.tutorial.len(),
        practice_tasks: experiment.practice.len(),
        tasks: experiment.tasks.len(),
        order: experiment.order.mode_name().to_owned(),
        questionnaire_items: experiment.questionnaire.len(),
    }))
}

#[tracing::instrument(skip_all, fields(experiment = %slug))]
async fn enter(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Extension(transport): Extension<Transport>,
    MaybeParticipant {
        session: existing, ..
    }: MaybeParticipant,
    AppJson(request): AppJson<EntryRequest>,
) -> Result<Response, AppError> {
    let experiment = state
        .experiments
        .get(&slug)
        .ok_or_else(|| AppError::NotFound(format!("no experiment `{slug}` on this server")))?;
    let arrival = study::Arrival {
        params: request.params,
        device: request.device,
        preview: false,
    };
    let entered = study::enter(state.store.as_ref(), experiment, arrival, existing).await?;
    let session = study::view(state.store.as_ref(), experiment, &entered.session).await?;
    let Some(token) = entered.token else {
        return Ok((
            StatusCode::OK,
            Json(EntryResponse {
                token: None,
                resumed: true,
                session,
            }),
        )
            .into_response());
    };
    let cookie = HeaderValue::from_str(&cookie::participant_session(
        &token,
        transport.secure_cookies(&state.config),
        state.config.session_lifetime,
    ))
    .map_err(|e| AppError::Internal(e.into()))?;
    let body = EntryResponse {
        token: Some(token.expose().to_owned()),
        resumed: entered.resumed,
        session,
    };
    // A resume by recruiter ID hands out a new token for an existing session: 200, not 201.
    let status = if entered.resumed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, [(SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn session(
    State(state): State<AppState>,
    participant: Participant,
) -> Result<Json<SessionView>, AppError> {
    Ok(Json(
        study::view(
            state.store.as_ref(),
            &participant.experiment,
            &participant.session,
        )
        .await?,
    ))
}

async fn consent(
    State(state): State<AppState>,
    participant: Participant,
    AppJson(request): AppJson<ConsentRequest>,
) -> Result<Json<SessionView>, AppError> {
    Ok(Json(
        study::consent(
            state.store.as_ref(),
            &participant.experiment,
            participant.session,
            request.agree,
        )
        .await?,
    ))
}

async fn continue_step(
    State(state): State<AppState>,
    participant: Participant,
    Path(step): Path<i64>,
) -> Result<Json<SessionView>, AppError> {
    Ok(Json(
        study::continue_step(
            state.store.as_ref(),
            &participant.experiment,
            participant.session,
            step,
        )
        .await?,
    ))
}

async fn run(
    State(state): State<AppState>,
    participant: Participant,
    Path(step): Path<i64>,
    AppJson(request): AppJson<RunRequest>,
) -> Result<Json<RunResponse>, AppError> {
    let answer = study::run(
        state.store.as_ref(),
        &participant.experiment,
        participant.session,
        step,
        request,
    )
    .await?;
    if !answer.duplicate {
        state.metrics.run_executed();
    }
    Ok(Json(answer))
}

async fn submit(
    State(state): State<AppState>,
    participant: Participant,
    Path(step): Path<i64>,
    AppJson(request): AppJson<SubmitRequest>,
) -> Result<Json<SubmitResponse>, AppError> {
    Ok(Json(
        study::submit(
            state.store.as_ref(),
            &participant.experiment,
            participant.session,
            step,
            &request.program,
        )
        .await?,
    ))
}

async fn skip(
    State(state): State<AppState>,
    participant: Participant,
    Path(step): Path<i64>,
) -> Result<Json<SessionView>, AppError> {
    Ok(Json(
        study::skip(
            state.store.as_ref(),
            &participant.experiment,
            participant.session,
            step,
        )
        .await?,
    ))
}

async fn events(
    State(state): State<AppState>,
    participant: Participant,
    AppJson(request): AppJson<EventsRequest>,
) -> Result<Json<EventsResponse>, AppError> {
    let answer = study::events(
        state.store.as_ref(),
        &state.events,
        &participant.session,
        request.events,
    )
    .await?;
    // A batch holds up to 1000 events: a set, not a scan of the duplicates per event.
    let duplicates: std::collections::HashSet<i64> = answer.duplicates.iter().copied().collect();
    let new = answer
        .stored
        .iter()
        .filter(|seq| !duplicates.contains(seq))
        .count();
    state.metrics.event_stored(new);
    Ok(Json(answer))
}

async fn questionnaire(
    State(state): State<AppState>,
    participant: Participant,
    AppJson(request): AppJson<QuestionnaireRequest>,
) -> Result<Json<SessionView>, AppError> {
    Ok(Json(
        study::questionnaire(
            state.store.as_ref(),
            &participant.experiment,
            participant.session,
            request.answers,
        )
        .await?,
    ))
}

async fn complete(
    State(state): State<AppState>,
    participant: Participant,
    OptionalJson(request): OptionalJson<CompleteRequest>,
) -> Result<Json<CompleteResponse>, AppError> {
    Ok(Json(
        study::complete(
            state.store.as_ref(),
            &participant.experiment,
            participant.session,
            request.events_through,
        )
        .await?,
    ))
}
