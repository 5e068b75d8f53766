//! What can go wrong in a use case, said in the use case's terms. The HTTP layer maps each kind
//! to a status code in one place (`http::error`), so nothing here knows about HTTP.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The request is malformed or breaks one of the documented limits.
    #[error("{0}")]
    Invalid(String),
    /// A program that does not parse.
    #[error("{0}")]
    InvalidProgram(#[from] dsl::ParseError),
    /// The session has no such step.
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the session's state (wrong step, already answered, too early);
    /// `code` is the stable machine-readable name the API documents.
    #[error("{message}")]
    WrongState { code: &'static str, message: String },
    /// Well-formed, but refused on its merits (an unsolved program submitted).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// An arrival the experiment does not admit (no recruiter ID, a device below the
    /// requirements); it gets no session.
    #[error("{message}")]
    NotAdmitted { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored session and the experiment disagree: a bug, never the client's doing.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl StudyError {
    pub fn invalid(message: impl Into<String>) -> StudyError {
        StudyError::Invalid(message.into())
    }

    pub fn not_admitted(code: &'static str, message: impl Into<String>) -> StudyError {
        StudyError::NotAdmitted {
            code,
            message: message.into(),
        }
    }

    /// The stable code of a refusal, if it has one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            StudyError::WrongState { code, .. }
            | StudyError::Refused { code, .. }
            | StudyError::NotAdmitted { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn wrong_state(code: &'static str, message: impl Into<String>) -> StudyError {
        StudyError::WrongState {
            code,
            message: message.into(),
        }
    }
}
