//! The researcher's pages and endpoints under `/researcher` (askama templates under
//! `templates/researcher/`, scripts under `static/js/researcher/`).
//!
//! Every route but sign-in comes from one table, [`route_table`]; the router puts all of them
//! behind [`require_researcher`], which refuses a request without a live session (a redirect to
//! sign-in for a page, 401 otherwise) and a state-changing request without the session's CSRF
//! token (the `csrf` form field or the `X-CSRF-Token` header). Handlers therefore cannot forget
//! either check. Sign-in itself is protected by a double-submit CSRF cookie.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::SessionToken;
use crate::experiment::Experiment;
use crate::researcher::auth::{self, SignInError};
use crate::researcher::dashboard::{self, ExperimentCard, ExperimentDashboard, ParticipantRow};
use crate::researcher::export::{ExportOptions, Exporter, Format, Sink};
use crate::researcher::{ResearcherError, audit, withdraw};
use crate::store::research::AuditEntry;
use crate::study;

/// The session cookie of a signed-in researcher.
pub const SESSION_COOKIE: &str = "proglab_researcher";
/// The double-submit CSRF cookie of the sign-in form.
pub const SIGN_IN_CSRF_COOKIE: &str = "proglab_sign_in_csrf";
/// Header carrying the CSRF token of script requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
const FORM_LIMIT: usize = 64 * 1024;

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
        entry(Method::GET, "/researcher", get(home)),
        entry(Method::POST, "/researcher/sign-out", post(sign_out)),
        entry(Method::GET, "/researcher/audit", get(audit_page)),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}",
            get(experiment_page),
        ),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}/participants.json",
            get(participants_json),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/export",
            post(export),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/withdraw",
            post(withdraw_participant),
        ),
        entry(
            Method::POST,
            "/researcher/experiments/{experiment}/run",
            post(run_program),
        ),
        entry(
            Method::GET,
            "/researcher/experiments/{experiment}/sessions/{session}",
            get(replay_page),
        ),
    ]
}

/// The researcher router: sign-in, and the route table behind [`require_researcher`].
pub fn router(state: AppState) -> Router<AppState> {
    let mut protected = Router::new();
    for route in route_table() {
        protected = protected.route(route.path, route.handler);
    }
    let protected =
        protected.route_layer(middleware::from_fn_with_state(state, require_researcher));
    Router::new()
        .route("/researcher/sign-in", get(sign_in_page).post(sign_in))
        .merge(protected)
}

/// The signed-in researcher, put in the request's extensions by [`require_researcher`].
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub username: String,
    pub csrf_token: String,
    pub token_hash: String,
}

/// A cookie's value among the request's cookies.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// A field of an `application/x-www-form-urlencoded` body (only for plain tokens: no decoding
/// beyond `+`, which our tokens never contain).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// Refuses requests without a live session or, when they change something, without the
/// session's CSRF token.
pub async fn require_researcher(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let now = study::now();
    let token =
        cookie_value(request.headers(), SESSION_COOKIE).and_then(|t| SessionToken::parse(&t));
    let session = match token {
        Some(token) => match auth::session_for(state.research.as_ref(), &token, now).await {
            Ok(session) => session,
            Err(e) => return internal(e),
        },
        None => None,
    };
    let Some(session) = session else {
        return if request.method() == Method::GET {
            redirect("/researcher/sign-in")
        } else {
            (StatusCode::UNAUTHORIZED, "sign in first").into_response()
        };
    };
    let mut request = request;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let from_header = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let sent = match from_header {
            Some(sent) => Some(sent),
            None => {
                let (parts, body) = request.into_parts();
                let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
                    return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large")
                        .into_response();
                };
                let sent = form_field(&bytes, "csrf");
                request = Request::from_parts(parts, Body::from(bytes));
                sent
            }
        };
        if !sent.is_some_and(|sent| auth::same_secret(&sent, &session.csrf_token)) {
            return (
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong: reload the page and try again",
            )
                .into_response();
        }
    }
    request.extensions_mut().insert(SignedIn {
        username: session.username,
        csrf_token: session.csrf_token,
        token_hash: session.token_hash,
    });
    let mut response = next.run(request).await;
    // Researcher pages show participants' data: keep them out of shared caches.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn internal(error: impl Into<anyhow::Error>) -> Response {
    crate::http::error::AppError::Internal(error.into()).into_response()
}

fn researcher_error(error: ResearcherError) -> Response {
    match error {
        ResearcherError::Invalid(message) => (StatusCode::BAD_REQUEST, message).into_response(),
        ResearcherError::NotFound(message) => (StatusCode::NOT_FOUND, message).into_response(),
        ResearcherError::Store(crate::store::StoreError::NotFound) => {
            (StatusCode::NOT_FOUND, "not found").into_response()
        }
        other => internal(anyhow::Error::from(other)),
    }
}

fn experiment_of(state: &AppState, slug: &str) -> Result<Arc<Experiment>, Box<Response>> {
    state.experiments.get(slug).cloned().ok_or_else(|| {
        Box::new((StatusCode::NOT_FOUND, format!("no experiment `{slug}`")).into_response())
    })
}

fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path=/researcher; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

// ---- sign-in ----

#[derive(Template, WebTemplate)]
#[template(path = "researcher/sign_in.html")]
pub struct SignInPage {
    pub csrf: String,
    pub error: Option<String>,
    pub username: String,
}

async fn sign_in_page(State(state): State<AppState>) -> Response {
    let csrf = auth::csrf_token();
    let page = SignInPage {
        csrf: csrf.clone(),
        error: None,
        username: String::new(),
    };
    let mut response = page.into_response();
    response.headers_mut().append(
        SET_COOKIE,
        cookie(
            SIGN_IN_CSRF_COOKIE,
            &csrf,
            3600,
            state.config.secure_cookies,
        ),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub csrf: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie_value(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(&expected, &form.csrf) {
        return (
            StatusCode::FORBIDDEN,
            "the sign-in form's CSRF token is missing or wrong: reload the page and try again",
        )
            .into_response();
    }
    let secure = state.config.secure_cookies;
    match auth::sign_in(
        state.research.as_ref(),
        &form.username,
        &form.password,
        study::now(),
    )
    .await
    {
        Ok((token, session)) => {
            let mut response = redirect("/researcher");
            let max_age = (session.expires_at - session.created_at).whole_seconds();
            let headers = response.headers_mut();
            headers.append(
                SET_COOKIE,
                cookie(SESSION_COOKIE, token.expose(), max_age, secure),
            );
            headers.append(SET_COOKIE, cookie(SIGN_IN_CSRF_COOKIE, "", 0, secure));
            response
        }
        Err(error) => {
            let status = match &error {
                SignInError::Invalid => StatusCode::UNAUTHORIZED,
                SignInError::Throttled => StatusCode::TOO_MANY_REQUESTS,
                SignInError::Other(e) => {
                    tracing::error!(error = %e, "sign-in failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let message = match &error {
                SignInError::Other(_) => "internal error".to_owned(),
                other => other.to_string(),
            };
            let page = SignInPage {
                csrf: expected,
                error: Some(message),
                username: form.username.trim().to_owned(),
            };
            (status, page).into_response()
        }
    }
}

async fn sign_out(State(state): State<AppState>, Extension(who): Extension<SignedIn>) -> Response {
    let now = study::now();
    if let Err(e) = state
        .research
        .delete_researcher_session(&who.token_hash)
        .await
    {
        return internal(e);
    }
    if let Err(e) = audit(
        state.research.as_ref(),
        &who.username,
        "sign_out",
        None,
        "",
        now,
    )
    .await
    {
        return internal(e);
    }
    let mut response = redirect("/researcher/sign-in");
    response.headers_mut().append(
        SET_COOKIE,
        cookie(SESSION_COOKIE, "", 0, state.config.secure_cookies),
    );
    response
}

// ---- pages ----

#[derive(Template, WebTemplate)]
#[template(path = "researcher/home.html")]
pub struct HomePage {
    pub username: String,
    pub csrf: String,
    pub experiments: Vec<ExperimentCard>,
}

async fn home(State(state): State<AppState>, Extension(who): Extension<SignedIn>) -> Response {
    match dashboard::experiment_cards(state.store.as_ref(), state.experiments.iter()).await {
        Ok(experiments) => HomePage {
            username: who.username,
            csrf: who.csrf_token,
            experiments,
        }
        .into_response(),
        Err(e) => researcher_error(e),
    }
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

async fn audit_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
) -> Response {
    match state.research.audit_log(500).await {
        Ok(entries) => AuditPage {
            username: who.username,
            csrf: who.csrf_token,
            entries: entries
                .into_iter()
                .map(|entry| AuditRow {
                    at: entry
                        .at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    entry,
                })
                .collect(),
        }
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/experiment.html")]
pub struct ExperimentPage {
    pub username: String,
    pub csrf: String,
    pub slug: String,
    pub title: String,
    pub dashboard: ExperimentDashboard,
    pub formats: Vec<&'static str>,
    pub bar: u32,
    pub notice: Option<String>,
}

async fn dashboard_of(
    state: &AppState,
    experiment: &Arc<Experiment>,
) -> Result<ExperimentDashboard, ResearcherError> {
    let exporter = Exporter::new(
        state.store.clone(),
        state.research.clone(),
        experiment.clone(),
        ExportOptions::default(),
    )
    .await?;
    dashboard::experiment_dashboard(
        state.store.as_ref(),
        state.research.as_ref(),
        experiment,
        exporter.pseudonyms(),
        study::now(),
    )
    .await
}

async fn experiment_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
) -> Response {
    let experiment = match experiment_of(&state, &slug) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    render_experiment(&state, who, &experiment, None, StatusCode::OK).await
}

async fn render_experiment(
    state: &AppState,
    who: SignedIn,
    experiment: &Arc<Experiment>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    match dashboard_of(state, experiment).await {
        Ok(dashboard) => (
            status,
            ExperimentPage {
                username: who.username,
                csrf: who.csrf_token,
                slug: experiment.slug.to_string(),
                title: experiment.title.clone(),
                dashboard,
                formats: Format::ALL
                    .iter()
                    .filter(|f| **f != Format::PsychDs)
                    .map(|f| f.name())
                    .collect(),
                bar: dashboard::BAR as u32,
                notice,
            },
        )
            .into_response(),
        Err(e) => researcher_error(e),
    }
}

/// The live participant table, polled by the experiment page.
async fn participants_json(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    let experiment = match experiment_of(&state, &slug) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    match dashboard_of(&state, &experiment).await {
        Ok(dashboard) => Json::<Vec<ParticipantRow>>(dashboard.participants).into_response(),
        Err(e) => researcher_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExportForm {
    pub format: String,
    /// A checkbox: present (any value) when ticked.
    #[serde(default)]
    pub raw_ids: Option<String>,
}

/// Streams an export as a download.
async fn export(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(form): Form<ExportForm>,
) -> Response {
    let experiment = match experiment_of(&state, &slug) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let format = match Format::parse(&form.format) {
        Ok(Format::PsychDs) => {
            return (StatusCode::BAD_REQUEST, "psych-ds is a folder: write it with `proglab export --format psych-ds --out FOLDER`")
                .into_response();
        }
        Ok(format) => format,
        Err(e) => return researcher_error(e),
    };
    let raw_ids = form.raw_ids.is_some();
    if format == Format::BonusCsv && !raw_ids {
        return (
            StatusCode::BAD_REQUEST,
            "bonus-csv pays recruiter IDs: tick \"include recruiter IDs\"",
        )
            .into_response();
    }
    let exporter = match Exporter::new(
        state.store.clone(),
        state.research.clone(),
        experiment.clone(),
        ExportOptions { raw_ids },
    )
    .await
    {
        Ok(exporter) => exporter,
        Err(e) => return researcher_error(e),
    };
    let detail = format!(
        "{} download{}",
        format.name(),
        if raw_ids { " with raw IDs" } else { "" }
    );
    if let Err(e) = audit(
        state.research.as_ref(),
        &who.username,
        "export",
        Some(&slug),
        detail,
        study::now(),
    )
    .await
    {
        return researcher_error(e);
    }
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut sink = Sink::Channel(sender.clone());
        if let Err(e) = exporter.write(format, &mut sink).await {
            tracing::error!(error = %e, "export failed while streaming");
            let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        format.file_name(&slug)
    )) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    pub participant: String,
}

async fn withdraw_participant(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(form): Form<WithdrawForm>,
) -> Response {
    let experiment = match experiment_of(&state, &slug) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let result = withdraw::withdraw(
        state.store.clone(),
        state.research.clone(),
        experiment.clone(),
        &form.participant,
        &who.username,
        study::now(),
    )
    .await;
    match result {
        Ok(done) => {
            let notice = format!(
                "Withdrawn: {} ({} session(s), {} rows deleted).",
                done.pseudonyms.join(", "),
                done.sessions,
                done.rows
            );
            render_experiment(&state, who, &experiment, Some(notice), StatusCode::OK).await
        }
        Err(ResearcherError::NotFound(message)) | Err(ResearcherError::Invalid(message)) => {
            render_experiment(
                &state,
                who,
                &experiment,
                Some(message),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => researcher_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct RunRequest {
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
async fn run_program(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(request): Json<RunRequest>,
) -> Response {
    let experiment = match experiment_of(&state, &slug) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    match dashboard::run_program(&experiment, &request.phase, request.task, &request.program) {
        Ok(run) => Json(run).into_response(),
        Err(e) => researcher_error(e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/replay.html")]
pub struct ReplayPage {
    pub username: String,
    pub csrf: String,
    pub slug: String,
    pub title: String,
    pub pseudonym: String,
    pub status: String,
    pub trials: Vec<dashboard::ReplayTrial>,
    /// The replay data as JSON for the script; askama escapes it for the attribute.
    pub data_json: String,
    pub tasks: Vec<(usize, String)>,
    pub subroutines: usize,
}

async fn replay_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path((slug, session_id)): Path<(String, String)>,
) -> Response {
    let experiment = match experiment_of(&state, &slug) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let session = match state.store.session(&session_id).await {
        Ok(session) if session.experiment == slug => session,
        Ok(_) | Err(crate::store::StoreError::NotFound) => {
            return (
                StatusCode::NOT_FOUND,
                "no such participant in this experiment",
            )
                .into_response();
        }
        Err(e) => return internal(anyhow::Error::from(e)),
    };
    let exporter = match Exporter::new(
        state.store.clone(),
        state.research.clone(),
        experiment.clone(),
        ExportOptions::default(),
    )
    .await
    {
        Ok(exporter) => exporter,
        Err(e) => return researcher_error(e),
    };
    let trials = match dashboard::replay(state.store.as_ref(), &experiment, &session_id).await {
        Ok(trials) => trials,
        Err(e) => return researcher_error(e),
    };
    let data = serde_json::json!({
        "experiment": slug,
        "run_url": format!("/researcher/experiments/{slug}/run"),
        "csrf": who.csrf_token,
        "subroutines": experiment.limits.subroutines,
        "trials": trials,
    });
    ReplayPage {
        username: who.username,
        csrf: who.csrf_token.clone(),
        title: experiment.title.clone(),
        pseudonym: exporter.pseudonyms().of_session(&session),
        status: session.status.as_str().to_owned(),
        trials,
        data_json: data.to_string(),
        tasks: experiment
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.label.clone()))
            .collect(),
        subroutines: experiment.limits.subroutines,
        slug,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_and_cookies_are_found() {
        assert_eq!(
            form_field(b"format=x&csrf=abc123", "csrf").as_deref(),
            Some("abc123")
        );
        assert_eq!(form_field(b"format=x", "csrf"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; proglab_researcher=ff00; b=2"),
        );
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("ff00")
        );
    }

    #[test]
    fn every_table_entry_is_under_researcher() {
        for route in route_table() {
            assert!(route.path.starts_with("/researcher"), "{}", route.path);
        }
    }
}
