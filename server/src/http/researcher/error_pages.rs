//! Researcher-side errors as pages: a person who followed a link or sent a form gets a styled
//! page that says what went wrong, with a way back, instead of a bare status and a line of text.
//!
//! Handlers keep returning `ResearcherError`; its response (`http::error`) carries the message in
//! a [`ResearcherFailure`] extension, and [`error_pages`] turns it into the page when the request
//! asked for HTML (a browser's navigation or form post does; a script's `fetch` does not, and keeps
//! the plain-text body it reads).

use askama::Template;
use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_TYPE, REFERER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

/// The researcher-facing message of a failed request, attached to its response.
#[derive(Debug, Clone)]
pub struct ResearcherFailure(pub String);

#[derive(Template)]
#[template(path = "researcher/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    back: String,
    status: u16,
}

/// Replaces a failed researcher response by its page when the request wants HTML.
pub async fn error_pages(request: Request, next: Next) -> Response {
    let wants_html = accepts_html(request.headers());
    let back = back_link(request.headers());
    let mut response = next.run(request).await;
    if !wants_html {
        return response;
    }
    let Some(ResearcherFailure(message)) = response.extensions_mut().remove::<ResearcherFailure>()
    else {
        return response;
    };
    let status = response.status();
    let page = ErrorPage {
        title: title(status),
        message: &message,
        back,
        status: status.as_u16(),
    };
    match page.render() {
        Ok(html) => {
            let mut page = (status, Html(html)).into_response();
            page.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            page
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render the error page");
            response
        }
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Where "Back" goes: the researcher page the request came from, else the experiment list. Only
/// a path on this site under `/researcher` is used, never another origin.
fn back_link(headers: &HeaderMap) -> String {
    headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|referer| {
            let path = match referer.find("://") {
                Some(scheme_end) => {
                    let rest = &referer[scheme_end + 3..];
                    &rest[rest.find('/')?..]
                }
                None => referer,
            };
            (path.starts_with("/researcher") && !path.starts_with("//")).then(|| path.to_owned())
        })
        .unwrap_or_else(|| "/researcher".to_owned())
}

fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "That did not work",
        401 => "Please sign in",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Not possible now",
        413 => "Too large",
        _ => "Something went wrong on the server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REFERER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn back_goes_to_the_researcher_page_it_came_from_and_nowhere_else() {
        assert_eq!(
            back_link(&referer(
                "http://localhost:8080/researcher/experiments/x?page=2"
            )),
            "/researcher/experiments/x?page=2"
        );
        assert_eq!(
            back_link(&referer("https://evil.example/phish")),
            "/researcher"
        );
        assert_eq!(back_link(&referer("https://evil.example")), "/researcher");
        assert_eq!(back_link(&HeaderMap::new()), "/researcher");
    }
}
