//! proglab's analysis crate: candidate programs, program priors, likelihoods and model fitting.
//! Pure functions over plain data; it never sees database rows or HTTP.

pub mod check;
pub mod choice;
pub mod compare;
pub mod cv;
pub mod cv_tasks;
pub mod data;
pub mod enumerate;
pub mod error;
pub mod fit;
pub mod key;
pub mod library;
pub mod models;
#[cfg(feature = "neural")]
pub mod neural;
pub mod pipeline;
pub mod plots;

pub use error::AnalysisError;
pub use key::StatKey;
