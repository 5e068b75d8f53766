//! The one error type of the HTTP layer, its status table and its JSON body.
//!
//! 4xx errors carry a message for the client. A 5xx error returns a generic body; its cause is put
//! in a response extension and logged once by the `log_errors` middleware, so `into_response`
//! has no side effects.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::{ErrorBody, ErrorDetail};
use crate::http::researcher::error_pages::ResearcherFailure;
use crate::researcher::ResearcherError;
use crate::store::StoreError;
use crate::study::StudyError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request that is malformed or breaks a rule of the API.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// A program that does not parse.
    #[error("{0}")]
    InvalidProgram(dsl::ParseError),
    /// No valid session token.
    #[error("a valid session token is required")]
    Unauthorized,
    /// A token that a resume in another browser replaced.
    #[error(
        "you continued this study in another window or browser; please go on there (you can close this one)"
    )]
    Superseded,
    /// An arrival the experiment does not admit.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the session's state (wrong step, already answered, too early).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Well-formed, but refused on its merits (an unsolved program submitted).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The cause of a 5xx response, for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub Arc<anyhow::Error>);

impl AppError {
    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::BadRequest {
            code: "invalid_request",
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } | AppError::InvalidProgram(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::Superseded => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Unprocessable { code, .. } => code,
            AppError::InvalidProgram(_) => "invalid_program",
            AppError::Unauthorized => "unauthorized",
            AppError::Superseded => "session_continued_elsewhere",
            AppError::NotFound(_) => "not_found",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (line, column) = match self {
            AppError::InvalidProgram(e) => (Some(e.line), Some(e.column)),
            _ => (None, None),
        };
        let message = match self {
            AppError::InvalidProgram(e) => format!("the program does not parse: {e}"),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                line,
                column,
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status_code(), Json(self.body())).into_response();
        if let AppError::Internal(cause) = self {
            response
                .extensions_mut()
                .insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        match error {
            StoreError::NotFound => AppError::NotFound("not found".into()),
            StoreError::Conflict(message) => AppError::Conflict {
                code: "conflict",
                message,
            },
            StoreError::Other(cause) => AppError::Internal(cause),
        }
    }
}

impl From<StudyError> for AppError {
    fn from(error: StudyError) -> AppError {
        match error {
            StudyError::Invalid(message) => AppError::bad_request(message),
            StudyError::InvalidProgram(e) => AppError::InvalidProgram(e),
            StudyError::NotFound(message) => AppError::NotFound(message),
            StudyError::WrongState { code, message } => AppError::Conflict { code, message },
            StudyError::Refused { code, message } => AppError::Unprocessable { code, message },
            StudyError::NotAdmitted { code, message } => AppError::Forbidden { code, message },
            StudyError::Store(e) => e.into(),
            StudyError::Internal(cause) => AppError::Internal(cause),
        }
    }
}

/// The researcher side answers people in a browser: a plain-text reason with the status, and
/// for a server fault the same generic body (and logged cause) as the API. The message also rides
/// along as a [`ResearcherFailure`], from which `error_pages` makes a page for a browser.
impl IntoResponse for ResearcherError {
    fn into_response(self) -> Response {
        let message = match &self {
            ResearcherError::Store(StoreError::NotFound) => "not found".to_owned(),
            ResearcherError::Store(_)
            | ResearcherError::Io(_)
            | ResearcherError::Csv(_)
            | ResearcherError::Other(_) => {
                "the server could not do this; the cause is in its log. Please try again, and \
                 tell the lab's administrator if it keeps failing"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut response = self.bare_response();
        response.extensions_mut().insert(ResearcherFailure(message));
        response
    }
}

impl ResearcherError {
    fn bare_response(self) -> Response {
        let status = match &self {
            ResearcherError::Invalid(_) => StatusCode::BAD_REQUEST,
            ResearcherError::NotFound(_) | ResearcherError::Store(StoreError::NotFound) => {
                StatusCode::NOT_FOUND
            }
            ResearcherError::SignInRequired => StatusCode::UNAUTHORIZED,
            ResearcherError::Forbidden(_) => StatusCode::FORBIDDEN,
            ResearcherError::FormTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ResearcherError::Store(_)
            | ResearcherError::Io(_)
            | ResearcherError::Csv(_)
            | ResearcherError::Other(_) => {
                return AppError::Internal(anyhow::Error::from(self)).into_response();
            }
        };
        (status, self.to_string()).into_response()
    }
}

impl From<dsl::ParseError> for AppError {
    fn from(error: dsl::ParseError) -> AppError {
        AppError::InvalidProgram(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_its_status_and_code() {
        let cases = [
            (AppError::bad_request("x"), 400, "invalid_request"),
            (
                AppError::InvalidProgram(dsl::ParseError::new(1, 3, "bad")),
                400,
                "invalid_program",
            ),
            (AppError::Unauthorized, 401, "unauthorized"),
            (AppError::NotFound("x".into()), 404, "not_found"),
            (AppError::conflict("wrong_step", "x"), 409, "wrong_step"),
            (
                AppError::Unprocessable {
                    code: "not_solved",
                    message: "x".into(),
                },
                422,
                "not_solved",
            ),
            (AppError::PayloadTooLarge, 413, "payload_too_large"),
            (
                AppError::Internal(anyhow::anyhow!("secret detail")),
                500,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status_code().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let body = AppError::Internal(anyhow::anyhow!("password=hunter2")).body();
        assert!(!body.error.message.contains("hunter2"));
    }

    #[test]
    fn parse_errors_carry_line_and_column() {
        let body = AppError::InvalidProgram(dsl::ParseError::new(2, 7, "unexpected `x`")).body();
        assert_eq!((body.error.line, body.error.column), (Some(2), Some(7)));
        assert!(body.error.message.contains("2:7"));
    }
}
