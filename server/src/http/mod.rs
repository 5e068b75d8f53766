//! HTTP: the router, with every layer applied in one visible place.
//!
//! Layers, from the outside in: request tracing (method and route only: never the query string,
//! which may carry recruiter IDs, and never the client address), compression, the security
//! headers, the metrics (counts and latency per route), how the request arrived (a trusted
//! proxy's `X-Forwarded-Proto`, HSTS; `transport.rs`), the error finisher
//! (logs 5xx causes once and gives bare error responses the API's JSON format), the request
//! timeout, and the request body limit (413).

pub mod assets;
pub mod cookie;
pub mod error;
pub mod extract;
pub mod front_door;
pub mod participant_api;
pub mod researcher;
pub mod study_pages;
pub mod transport;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::{self, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::http::error::{AppError, InternalCause};
use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let timeout = state.config.request_timeout;
    let static_files = match &state.config.static_dir {
        Some(dir) => Router::new().nest_service("/static", ServeDir::new(dir)),
        None => assets::router(),
    };
    Router::new()
        .merge(participant_api::router())
        .merge(front_door::router())
        .merge(study_pages::router())
        .merge(researcher::router(state.clone()))
        .merge(static_files)
        .merge(assets::favicon_router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn(finish_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            transport::transport,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::record,
        ))
        // Headers every response carries (docs/security.md): no MIME sniffing, no framing by
        // another site (clickjacking a participant's or a researcher's page), no referrer sent
        // onwards (page addresses may carry recruiter parameters).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(CompressionLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Body>| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!("request", method = %request.method(), route = %route)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

async fn not_found(request: Request) -> AppError {
    AppError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Logs the cause of a 5xx once, and turns API error responses that layers or axum produced
/// without a JSON body (413 from the body limit, 408 from the timeout, 405, path rejections) into the
/// API's error format.
async fn finish_errors(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(error = ?cause, "request failed");
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.to_str().is_ok_and(|v| v.starts_with("application/json")));
    if !is_api || !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|text| !text.trim().is_empty());
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = match (status, text) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => AppError::PayloadTooLarge.to_string(),
        (s, _) if s.is_server_error() => "internal error".to_owned(),
        (_, Some(text)) => text.trim().to_owned(),
        (s, None) => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = crate::api::ErrorBody {
        error: crate::api::ErrorDetail {
            code: code.to_owned(),
            message,
            line: None,
            column: None,
        },
    };
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
