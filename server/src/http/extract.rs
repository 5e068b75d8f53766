//! Extractors: the participant session (from the bearer token or the session cookie) and JSON
//! bodies whose rejections use the API's error format.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::domain::SessionToken;
use crate::experiment::Experiment;
use crate::http::cookie;
use crate::http::error::AppError;
use crate::state::AppState;
use crate::store::{Session, StoreError};

/// The token sent with a request: `Authorization: Bearer <token>` first, then the cookie.
/// `Err` if one was sent but cannot be a token.
fn token_from(headers: &HeaderMap) -> Result<Option<SessionToken>, AppError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AppError::Unauthorized)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AppError::Unauthorized)?;
        return SessionToken::parse(token.trim())
            .map(Some)
            .ok_or(AppError::Unauthorized);
    }
    if let Some(token) = cookie::read(headers, cookie::PARTICIPANT_SESSION) {
        return SessionToken::parse(&token)
            .map(Some)
            .ok_or(AppError::Unauthorized);
    }
    Ok(None)
}

/// The session of a token; an unknown token or an expired session is 401.
async fn session_for(state: &AppState, token: &SessionToken) -> Result<Session, AppError> {
    match state.store.session_by_token(&token.hash()).await {
        Ok(session) if crate::clock::now() - session.created_at > state.config.session_lifetime => {
            Err(AppError::Unauthorized)
        }
        Ok(session) => Ok(session),
        // A token replaced by a resume elsewhere is told so; the lookup runs only on a miss.
        Err(StoreError::NotFound) if state.store.is_superseded(&token.hash()).await? => {
            Err(AppError::Superseded)
        }
        Err(StoreError::NotFound) => Err(AppError::Unauthorized),
        Err(e) => Err(e.into()),
    }
}

/// A request from a participant with a valid session, and the experiment it belongs to as the
/// session runs it (its between-subject condition's, [`Experiment::for_arm`]).
/// Missing or unknown tokens are refused with 401 before anything else happens.
pub struct Participant {
    pub session: Session,
    pub experiment: Arc<Experiment>,
}

impl FromRequestParts<AppState> for Participant {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Participant, AppError> {
        let token = token_from(&parts.headers)?.ok_or(AppError::Unauthorized)?;
        let session = session_for(state, &token).await?;
        let experiment = state.experiments.get(&session.experiment).cloned().ok_or_else(|| {
            AppError::conflict(
                "experiment_unavailable",
                format!("this session belongs to experiment `{}`, which this server does not run now", session.experiment),
            )
        })?;
        crate::study::lifecycle::require_not_abandoned(
            &session,
            &experiment.timing,
            crate::clock::now(),
        )?;
        // Every use case sees the settings of the session's between-subject condition.
        let experiment = experiment.for_arm_shared(session.arm.as_deref());
        Ok(Participant {
            session,
            experiment,
        })
    }
}

/// The session a request carries, if it carries a valid one; a missing, malformed or unknown
/// token is simply no session (used by entry, which then starts a new one). `moved` says that the
/// token was replaced by a resume in another browser.
pub struct MaybeParticipant {
    pub session: Option<Session>,
    pub moved: bool,
}

impl FromRequestParts<AppState> for MaybeParticipant {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<MaybeParticipant, AppError> {
        let none = |moved| MaybeParticipant {
            session: None,
            moved,
        };
        let Ok(Some(token)) = token_from(&parts.headers) else {
            return Ok(none(false));
        };
        match session_for(state, &token).await {
            Ok(session) => Ok(MaybeParticipant {
                session: Some(session),
                moved: false,
            }),
            Err(AppError::Unauthorized) => Ok(none(false)),
            Err(AppError::Superseded) => Ok(none(true)),
            Err(e) => Err(e),
        }
    }
}

async fn body_bytes(request: Request, state: &AppState) -> Result<Bytes, AppError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::bad_request(format!("cannot read the request body: {rejection}"))
            }
        })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::bad_request(format!("invalid JSON body: {e}")))
}

/// A JSON body. Any content type is read as JSON (curl's `-d` sends a form type by default), and
/// errors use the API's format.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<AppJson<T>, AppError> {
        let bytes = body_bytes(request, state).await?;
        Ok(AppJson(parse_json(&bytes)?))
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<OptionalJson<T>, AppError> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        Ok(OptionalJson(parse_json(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::time::Duration;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_token_is_preferred_to_the_cookie() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        let map = headers(&[
            ("authorization", &format!("Bearer {}", a.expose())),
            (
                "cookie",
                &format!("other=1; {}={}", cookie::PARTICIPANT_SESSION, b.expose()),
            ),
        ]);
        assert_eq!(token_from(&map).unwrap(), Some(a));
    }

    #[test]
    fn cookie_token_is_found_among_other_cookies() {
        let token = SessionToken::generate();
        let map = headers(&[(
            "cookie",
            &format!(
                "a=b; {}={}; c=d",
                cookie::PARTICIPANT_SESSION,
                token.expose()
            ),
        )]);
        assert_eq!(token_from(&map).unwrap(), Some(token));
    }

    #[test]
    fn malformed_tokens_are_unauthorized_and_absent_ones_are_none() {
        assert!(token_from(&headers(&[("authorization", "Bearer nope")])).is_err());
        assert!(token_from(&headers(&[("authorization", "Basic abc")])).is_err());
        assert!(matches!(token_from(&headers(&[])), Ok(None)));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site() {
        let cookie =
            cookie::participant_session(&SessionToken::generate(), false, Duration::from_secs(60));
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && !cookie.contains("Secure")
        );
        assert!(
            cookie::participant_session(&SessionToken::generate(), true, Duration::from_secs(60))
                .ends_with("; Secure")
        );
    }
}
