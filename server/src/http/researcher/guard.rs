//! The guard in front of every researcher route: a live session, and the session's CSRF token on
//! anything that changes state.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::{CSRF_HEADER, redirect};
use crate::clock;
use crate::domain::SessionToken;
use crate::http::cookie;
use crate::researcher::{ResearcherError, auth};
use crate::state::AppState;

/// The largest form body the guard reads to find its `csrf` field.
const FORM_LIMIT: usize = 64 * 1024;

/// The signed-in researcher, put in the request's extensions by [`require_researcher`].
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub username: String,
    pub csrf_token: String,
    pub token_hash: String,
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
) -> Result<Response, ResearcherError> {
    let token = cookie::read(request.headers(), cookie::RESEARCHER_SESSION)
        .and_then(|t| SessionToken::parse(&t));
    let session = match token {
        Some(token) => auth::session_for(state.research.as_ref(), &token, clock::now())
            .await
            // The session lookup failing is the server's fault, whatever the cause.
            .map_err(|e| ResearcherError::Other(e.into()))?,
        None => None,
    };
    let Some(session) = session else {
        return if request.method() == Method::GET {
            Ok(redirect("/researcher/sign-in"))
        } else {
            Err(ResearcherError::SignInRequired)
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
                let bytes = axum::body::to_bytes(body, FORM_LIMIT)
                    .await
                    .map_err(|_| ResearcherError::FormTooLarge)?;
                let sent = form_field(&bytes, "csrf");
                request = Request::from_parts(parts, Body::from(bytes));
                sent
            }
        };
        if !sent.is_some_and(|sent| auth::same_secret(&sent, &session.csrf_token)) {
            return Err(ResearcherError::Forbidden(
                "the form's CSRF token is missing or wrong: reload the page and try again".into(),
            ));
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
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_found() {
        assert_eq!(
            form_field(b"format=x&csrf=abc123", "csrf").as_deref(),
            Some("abc123")
        );
        assert_eq!(form_field(b"format=x", "csrf"), None);
    }
}
