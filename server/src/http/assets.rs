//! The browser code and CSS of `static/`, built into the binary so that `proglab serve` works from
//! any directory and a copied binary needs no files beside it. `--static-dir` serves a folder
//! instead, for working on the browser code without rebuilding.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "../static/"]
struct StaticFiles;

/// `GET /static/{*path}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(asset))
}

/// `GET /favicon.ico`: browsers ask for it on every page; the answer is the SVG icon that the
/// pages also name in `<link rel="icon">`.
pub fn favicon_router() -> Router<AppState> {
    Router::new().route(
        "/favicon.ico",
        get(|| asset(Path("favicon.svg".to_owned()))),
    )
}

async fn asset(Path(path): Path<String>) -> Response {
    let Some(file) = StaticFiles::get(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = file.metadata.mimetype();
    let content_type =
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // The files change only with a new binary; the ETag lets browsers revalidate cheaply.
    let etag = HeaderValue::from_str(&format!("\"{}\"", hex::encode(file.metadata.sha256_hash())))
        .unwrap_or(HeaderValue::from_static("\"\""));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        file.data,
    )
        .into_response()
}
