//! Exports as downloads, streamed to the browser while they are written.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{SignedIn, experiment_of, exporter, pages};
use crate::clock;
use crate::researcher::export::{ExportOptions, Format, Sink};
use crate::researcher::{ResearcherError, audit};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ExportForm {
    pub format: String,
    /// A checkbox: present (any value) when ticked.
    #[serde(default)]
    pub raw_ids: Option<String>,
    /// A checkbox: include researchers' preview sessions.
    #[serde(default)]
    pub include_preview: Option<String>,
    /// A checkbox: include excluded participants.
    #[serde(default)]
    pub include_excluded: Option<String>,
}

/// Streams an export as a download.
pub(super) async fn export(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(form): Form<ExportForm>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    // A form that cannot be exported is answered on the dashboard, next to the form.
    let refuse = |message: String| async {
        pages::render_with_notice(
            &state,
            who.clone(),
            &experiment,
            message,
            StatusCode::BAD_REQUEST,
        )
        .await
    };
    let format = match Format::parse(&form.format) {
        Ok(Format::PsychDs) => {
            return refuse(
                "psych-ds is a folder: write it with `proglab export --format psych-ds --out FOLDER`"
                    .into(),
            )
            .await;
        }
        Ok(format) => format,
        Err(e) => return refuse(e.to_string()).await,
    };
    let raw_ids = form.raw_ids.is_some();
    if format == Format::BonusCsv && !raw_ids {
        return refuse(
            "bonus-csv pays recruiter IDs: tick \"include recruiter IDs\" and download again"
                .into(),
        )
        .await;
    }
    let include_preview = form.include_preview.is_some();
    let options = ExportOptions {
        raw_ids,
        include_preview,
        include_excluded: form.include_excluded.is_some(),
    };
    let exporter = exporter(&state, &experiment, options).await?;
    if let Some(reason) = exporter.empty_export(format).await? {
        return refuse(format!("Nothing to download: {reason}. No file was made.")).await;
    }
    let detail = format!(
        "{} download{}{}",
        format.name(),
        if raw_ids { " with raw IDs" } else { "" },
        if include_preview {
            " with previews"
        } else {
            ""
        },
    ) + if options.include_excluded {
        " with excluded participants"
    } else {
        ""
    };
    audit(
        state.research.as_ref(),
        &who.username,
        "export",
        Some(&slug),
        detail,
        clock::now(),
    )
    .await?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut sink = Sink::Channel(sender.clone());
        if let Err(e) = exporter.write(format, &mut sink).await {
            // The status line is already sent: all that is left is to break the download.
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
    Ok(response)
}
