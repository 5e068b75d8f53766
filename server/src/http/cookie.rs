//! Cookies: the names proglab sets, reading one from a request, and building a `Set-Cookie`.
//!
//! Every cookie is HttpOnly (no script can read it) and SameSite=Strict (no other site can send
//! it); `Secure` is added when the server is told it runs behind HTTPS.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use crate::domain::SessionToken;

/// A participant's session token.
pub const PARTICIPANT_SESSION: &str = "proglab_session";
/// A signed-in researcher's session token.
pub const RESEARCHER_SESSION: &str = "proglab_researcher";
/// The double-submit CSRF cookie of the researcher sign-in form.
pub const SIGN_IN_CSRF: &str = "proglab_sign_in_csrf";

/// The value of the first cookie called `name` among the request's cookies.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn build(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that hands a participant's browser its session token, kept as long as
/// the server accepts the token (`Config::session_lifetime`).
pub fn participant_session(token: &SessionToken, secure: bool, lifetime: Duration) -> String {
    let max_age = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    build(PARTICIPANT_SESSION, token.expose(), "/", max_age, secure)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_named_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; proglab_researcher=ff00; b=2"),
        );
        assert_eq!(read(&headers, RESEARCHER_SESSION).as_deref(), Some("ff00"));
        assert_eq!(read(&headers, PARTICIPANT_SESSION), None);
    }

    const THIRTY_DAYS: Duration = Duration::from_secs(30 * 24 * 3600);

    #[test]
    fn built_cookies_are_http_only_strict_and_secure_when_asked() {
        let plain = build("n", "v", "/researcher", 60, false);
        assert_eq!(
            plain,
            "n=v; Path=/researcher; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(
            participant_session(&SessionToken::generate(), true, THIRTY_DAYS)
                .ends_with("Max-Age=2592000; Secure")
        );
    }
}
