//! proglab's analysis crate: candidate programs, program priors, likelihoods and model fitting.
//! Pure functions over plain data; it never sees database rows or HTTP.

pub mod data;
pub mod enumerate;
pub mod error;
pub mod key;

pub use error::AnalysisError;
pub use key::StatKey;
