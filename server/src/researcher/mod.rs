//! The researcher side: accounts and sign-in ([`auth`]), per-experiment pseudonyms
//! ([`pseudonym`]), dataset exports ([`export`]), imports of published data ([`import`]),
//! withdrawals ([`withdraw`]) and the view models of the dashboard ([`dashboard`]) and the replay
//! ([`replay`]).
//!
//! Everything here works on [`crate::store::research::ResearchStore`] and
//! [`crate::store::Store`]; the HTTP handlers (`http/researcher/`) and the command line
//! (`cli/{researcher,export,import,withdraw}.rs`) are thin shells around it.

pub mod actions;
pub mod auth;
pub mod dashboard;
pub mod export;
pub mod import;
pub mod participants;
pub mod pseudonym;
pub mod replay;
pub mod withdraw;

use time::OffsetDateTime;

use crate::store::StoreError;
use crate::store::research::{NewAudit, ResearchStore};

/// What can go wrong on the researcher side; each message is meant for the researcher.
#[derive(Debug, thiserror::Error)]
pub enum ResearcherError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// No researcher is signed in.
    #[error("sign in first")]
    SignInRequired,
    /// Signed in (or signing in), but the request may not do this: a missing or wrong CSRF token.
    #[error("{0}")]
    Forbidden(String),
    /// A form too large to check for its CSRF token.
    #[error("the form is too large")]
    FormTooLarge,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the export: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Writes one audit log entry.
pub async fn audit(
    research: &dyn ResearchStore,
    actor: &str,
    action: &str,
    experiment: Option<&str>,
    detail: impl Into<String>,
    at: OffsetDateTime,
) -> Result<(), ResearcherError> {
    research
        .record_audit(&NewAudit {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            experiment: experiment.map(str::to_owned),
            detail: detail.into(),
        })
        .await?;
    Ok(())
}

/// The actor name of the command line: `cli:` and the operating-system user, if known.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
