//! Error type of the `analysis` crate.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalysisError {
    #[error("cannot read programs file: {0}")]
    Csv(String),
    #[error("invalid model specification: {0}")]
    Model(String),
    #[error("{0}")]
    Invalid(String),
}
