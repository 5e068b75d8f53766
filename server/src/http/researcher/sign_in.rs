//! Signing in (a form with a double-submit CSRF cookie) and signing out.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{SignedIn, redirect};
use crate::clock;
use crate::http::cookie;
use crate::http::transport::Transport;
use crate::researcher::auth::{self, SignInError};
use crate::researcher::{ResearcherError, audit};
use crate::state::AppState;

/// How long the sign-in form's CSRF cookie lives, in seconds.
const SIGN_IN_FORM_MAX_AGE: i64 = 3600;

/// A researcher cookie's `Set-Cookie` header: scoped to `/researcher`.
fn researcher_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let text = cookie::build(name, value, "/researcher", max_age, secure);
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/sign_in.html")]
pub struct SignInPage {
    pub csrf: String,
    pub error: Option<String>,
    pub username: String,
}

pub(super) async fn sign_in_page(
    State(state): State<AppState>,
    Extension(transport): Extension<Transport>,
) -> Response {
    let csrf = auth::csrf_token();
    let page = SignInPage {
        csrf: csrf.clone(),
        error: None,
        username: String::new(),
    };
    let mut response = page.into_response();
    response.headers_mut().append(
        SET_COOKIE,
        researcher_cookie(
            cookie::SIGN_IN_CSRF,
            &csrf,
            SIGN_IN_FORM_MAX_AGE,
            transport.secure_cookies(&state.config),
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

/// Signs in; a wrong password or a throttled name shows the form again with the reason.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    Extension(transport): Extension<Transport>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ResearcherError> {
    let expected = cookie::read(&headers, cookie::SIGN_IN_CSRF).unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(&expected, &form.csrf) {
        return Err(ResearcherError::Forbidden(
            "the sign-in form's CSRF token is missing or wrong: reload the page and try again"
                .into(),
        ));
    }
    let secure = transport.secure_cookies(&state.config);
    let signed_in = auth::sign_in(
        state.research.as_ref(),
        &form.username,
        &form.password,
        clock::now(),
    )
    .await;
    match signed_in {
        Ok((token, session)) => {
            let mut response = redirect("/researcher");
            let max_age = (session.expires_at - session.created_at).whole_seconds();
            let headers = response.headers_mut();
            headers.append(
                SET_COOKIE,
                researcher_cookie(cookie::RESEARCHER_SESSION, token.expose(), max_age, secure),
            );
            headers.append(
                SET_COOKIE,
                researcher_cookie(cookie::SIGN_IN_CSRF, "", 0, secure),
            );
            Ok(response)
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
            Ok((status, page).into_response())
        }
    }
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    Extension(transport): Extension<Transport>,
    Extension(who): Extension<SignedIn>,
) -> Result<Response, ResearcherError> {
    let now = clock::now();
    state
        .research
        .delete_researcher_session(&who.token_hash)
        .await?;
    audit(
        state.research.as_ref(),
        &who.username,
        "sign_out",
        None,
        "",
        now,
    )
    .await?;
    let mut response = redirect("/researcher/sign-in");
    response.headers_mut().append(
        SET_COOKIE,
        researcher_cookie(
            cookie::RESEARCHER_SESSION,
            "",
            0,
            transport.secure_cookies(&state.config),
        ),
    );
    Ok(response)
}
