//! The participant's pages, from consent to the completion code (askama templates under
//! `templates/study/`, enhanced by the browser app in `static/js/`).
//!
//! A participant has one address, `/e/{experiment}/study`: it shows whatever the session's
//! current step asks for (consent, a tutorial or instruction screen, a task, the questionnaire,
//! the completion code), so a reload always lands on the right page and the server stays the only
//! judge of where the participant is. The front door (`/e/{experiment}`, [`crate::http::front_door`])
//! enters the study through the API and then comes here.
//!
//! Each page carries the session view and a few facts the browser needs to resume (the server's
//! clock, the highest event and run numbers already stored) as JSON in a `data-state` attribute;
//! the browser never simulates a task: it animates the traces the run endpoint returns.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::api::{Current, ItemView, SessionView};
use crate::experiment::Experiment;
use crate::http::error::{AppError, InternalCause};
use crate::http::extract::MaybeParticipant;
use crate::http::front_door::NotFoundPage;
use crate::state::AppState;
use crate::study;

pub fn router() -> Router<AppState> {
    Router::new().route("/e/{experiment}/study", get(study_page))
}

/// What every page of the app shows around its own content.
pub struct Frame {
    /// Names the page for the browser app and the stylesheet (`consent`, `task`, ...).
    pub page: &'static str,
    pub title: String,
    pub experiment_title: String,
    /// Steps done and in all, for the progress bar.
    pub step: i64,
    pub steps: i64,
    /// The progress bar's visible label: "Step 5 of 35", or "Finished".
    pub progress_label: String,
    /// [`PageState`] as JSON; askama escapes it for the attribute.
    pub state_json: String,
}

/// What the browser app needs to take a page over.
#[derive(Debug, Serialize)]
pub struct PageState<'a> {
    pub api: &'static str,
    pub study_url: String,
    pub session: &'a SessionView,
    /// The server's clock when the page was made (RFC 3339, UTC), so the skip countdown does not
    /// depend on the participant's clock.
    pub server_now: String,
    /// Milliseconds from the session's start to `server_now`: the base of the events' `t`.
    pub session_ms: i64,
    /// Highest event number stored for this session (0 if none): the browser numbers new events
    /// above it even if its own storage was cleared.
    pub last_event_seq: i64,
    /// Highest run number stored for this session (0 if none).
    pub last_run: i64,
    /// How the level is drawn (`isometric` or `flat`).
    pub board: crate::experiment::BoardKind,
}

#[derive(Template, WebTemplate)]
#[template(path = "study/consent.html")]
pub struct ConsentPage {
    pub frame: Frame,
    pub text_html: String,
    pub agree_label: String,
    pub decline_label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "study/declined.html")]
pub struct DeclinedPage {
    pub frame: Frame,
    pub message: String,
}

/// A tutorial or instruction screen, with its level and demonstration when it has them.
#[derive(Template, WebTemplate)]
#[template(path = "study/screen.html")]
pub struct ScreenPage {
    pub frame: Frame,
    pub heading: &'static str,
    pub text_html: String,
    pub has_level: bool,
    pub has_demo: bool,
    /// The instructions taught so far are shown beside the level.
    pub has_palette: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "study/task.html")]
pub struct TaskPage {
    pub frame: Frame,
    /// "Tutorial", "Practice problem", "Problem 3 of 10".
    pub heading: String,
    pub text_html: Option<String>,
    pub can_skip: bool,
    pub skip_delay_text: String,
    pub show_count: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "study/questionnaire.html")]
pub struct QuestionnairePage {
    pub frame: Frame,
    pub items: Vec<ItemView>,
}

/// The end: the completion code once the session is completed, or a short wait while the
/// browser completes it (it first makes sure every event is stored).
#[derive(Template, WebTemplate)]
#[template(path = "study/done.html")]
pub struct DonePage {
    pub frame: Frame,
    pub code: Option<String>,
    pub redirect_url: Option<String>,
    pub text_html: Option<String>,
}

/// No session (no cookie, or the cookie of another study).
#[derive(Template, WebTemplate)]
#[template(path = "study/no_session.html")]
pub struct NoSessionPage {
    pub title: String,
    /// The participant continued in another browser, which replaced this one's token.
    pub moved: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "study/error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
}

async fn study_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MaybeParticipant { session, moved }: MaybeParticipant,
) -> Response {
    let Some(experiment) = state.experiments.get(&slug) else {
        return (StatusCode::NOT_FOUND, NotFoundPage { slug }).into_response();
    };
    let session = match session {
        Some(session) if session.experiment == experiment.slug.as_str() => session,
        _ => {
            let page = NoSessionPage {
                title: experiment.title.clone(),
                moved,
            };
            return no_store((StatusCode::OK, page).into_response());
        }
    };
    match render(&state, experiment, &session).await {
        Ok(response) => no_store(response),
        Err(error) => error_page(experiment, error),
    }
}

/// Pages show the session's state at one moment: a cached copy would show a step already passed.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

fn error_page(experiment: &Experiment, error: AppError) -> Response {
    let status = error.status_code();
    let message = match &error {
        AppError::Internal(_) => {
            "Something went wrong on our side. Please wait a moment and reload this page; \
             your work so far is saved."
                .to_owned()
        }
        other => format!("{other}."),
    };
    let page = ErrorPage {
        title: experiment.title.clone(),
        message,
    };
    let mut response = no_store((status, page).into_response());
    if let AppError::Internal(cause) = error {
        // The logging middleware reports the cause once, as for the API.
        response
            .extensions_mut()
            .insert(InternalCause(std::sync::Arc::new(cause)));
    }
    response
}

async fn render(
    state: &AppState,
    experiment: &Experiment,
    session: &crate::store::Session,
) -> Result<Response, AppError> {
    let view = study::view(state.store.as_ref(), experiment, session).await?;
    // Numbers already used, so that a browser that lost its storage never reuses one (the server
    // would take a reused number for a retry and drop the new event).
    let (last_event_seq, last_run) = state.store.max_seqs(&session.id).await?;
    let now = crate::clock::now();
    let page_state = PageState {
        api: "/api/v1",
        study_url: format!("/e/{}/study", experiment.slug),
        session: &view,
        server_now: crate::clock::rfc3339(now),
        session_ms: session.ms_since_start(now),
        last_event_seq,
        last_run,
        board: experiment.board,
    };
    let state_json =
        serde_json::to_string(&page_state).map_err(|e| AppError::Internal(e.into()))?;
    let frame = |page: &'static str, title: String| Frame {
        page,
        title: format!("{title} · {}", experiment.title),
        experiment_title: experiment.title.clone(),
        // The completion page shows the bar full.
        step: if page == "done" {
            view.progress.steps
        } else {
            view.progress.step
        },
        steps: view.progress.steps,
        progress_label: if page == "done" {
            "Finished".to_owned()
        } else {
            format!("Step {} of {}", view.progress.step + 1, view.progress.steps)
        },
        state_json: state_json.clone(),
    };
    let response = match &view.current {
        Current::Consent {
            text,
            agree_label,
            decline_label,
        } => ConsentPage {
            frame: frame("consent", "Consent".into()),
            text_html: text.html.clone(),
            agree_label: agree_label.clone(),
            decline_label: decline_label.clone(),
        }
        .into_response(),
        Current::Declined { message } => DeclinedPage {
            frame: frame("declined", "Thank you".into()),
            message: message.clone(),
        }
        .into_response(),
        Current::Screen {
            phase,
            text,
            level,
            demo,
            palette,
        } => {
            let heading = if phase == "tutorial" {
                "Tutorial"
            } else {
                "Instructions"
            };
            ScreenPage {
                frame: frame("screen", heading.into()),
                heading,
                text_html: text.html.clone(),
                has_level: level.is_some(),
                has_demo: demo.is_some(),
                has_palette: palette.is_some(),
            }
            .into_response()
        }
        Current::Task { phase, trial } => {
            let heading = match phase.as_str() {
                "tutorial" => "Tutorial".to_owned(),
                "practice" => "Practice problem".to_owned(),
                _ => format!(
                    "Problem {} of {}",
                    trial.position + 1,
                    view.progress.phase_steps
                ),
            };
            let delay = trial.skip.as_ref().map_or(0, |skip| skip.delay_seconds);
            TaskPage {
                frame: frame("task", heading.clone()),
                heading,
                text_html: trial.text.as_ref().map(|text| text.html.clone()),
                can_skip: trial.skip.is_some(),
                skip_delay_text: duration_text(delay),
                show_count: phase == "tasks",
            }
            .into_response()
        }
        Current::Questionnaire { items } => QuestionnairePage {
            frame: frame("questionnaire", "Questions".into()),
            items: items.clone(),
        }
        .into_response(),
        Current::Complete { text } => DonePage {
            frame: frame("done", "Finishing".into()),
            code: None,
            redirect_url: None,
            text_html: text.as_ref().map(|text| text.html.clone()),
        }
        .into_response(),
        Current::Done {
            code,
            redirect_url,
            text,
        } => DonePage {
            frame: frame("done", "Thank you".into()),
            code: Some(code.clone()),
            redirect_url: redirect_url.clone(),
            text_html: text.as_ref().map(|text| text.html.clone()),
        }
        .into_response(),
    };
    Ok(response)
}

/// "3 minutes 30 seconds", as the reference study words the skip delay.
fn duration_text(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match (seconds / 60, seconds % 60) {
        (0, s) => plural(s, "second"),
        (m, 0) => plural(m, "minute"),
        (m, s) => format!("{} {}", plural(m, "minute"), plural(s, "second")),
    }
}

#[cfg(test)]
mod tests {
    use super::duration_text;

    #[test]
    fn skip_delay_is_worded_like_the_reference_study() {
        assert_eq!(duration_text(210), "3 minutes 30 seconds");
        assert_eq!(duration_text(60), "1 minute");
        assert_eq!(duration_text(1), "1 second");
        assert_eq!(duration_text(121), "2 minutes 1 second");
    }
}
