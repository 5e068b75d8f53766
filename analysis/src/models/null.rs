//! The random-choice (null) model: every program in the choice set scores 0, so the likelihood
//! of a choice is one over the size of its choice set (docs/modelling.md §4.5).

use crate::key::StatKey;

/// The null score of any program.
pub fn score(_key: &StatKey) -> f64 {
    0.0
}
