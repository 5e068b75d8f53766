//! Preview: a signed-in researcher tries the study as a participant would. The session is flagged
//! as a preview (no recruiter ID needed, no device check, shown as such on the dashboard, left out
//! of every export unless asked for), and the browser gets its participant cookie.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::SET_COOKIE;
use axum::response::Response;

use super::{SignedIn, experiment_of, redirect};
use crate::http::cookie;
use crate::http::transport::Transport;
use crate::researcher::{ResearcherError, audit};
use crate::state::AppState;
use crate::study;

pub(super) async fn start_preview(
    State(state): State<AppState>,
    Extension(transport): Extension<Transport>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let arrival = study::Arrival {
        preview: true,
        ..Default::default()
    };
    let entered = study::enter(state.store.as_ref(), &experiment, arrival, None)
        .await
        .map_err(|e| ResearcherError::Other(anyhow::anyhow!("the preview could not start: {e}")))?;
    let token = entered
        .token
        .ok_or_else(|| ResearcherError::Other(anyhow::anyhow!("a new preview has no token")))?;
    audit(
        state.research.as_ref(),
        &who.username,
        "preview",
        Some(&slug),
        format!("session {}", entered.session.id),
        crate::clock::now(),
    )
    .await?;
    let cookie = HeaderValue::from_str(&cookie::participant_session(
        &token,
        transport.secure_cookies(&state.config),
        state.config.session_lifetime,
    ))
    .map_err(|e| ResearcherError::Other(e.into()))?;
    let mut response = redirect(&format!("/e/{slug}/study"));
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}
