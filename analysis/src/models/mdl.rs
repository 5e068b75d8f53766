//! The minimum-description-length model: shorter programs are preferred, `s = -beta_mdl * T`
//! with T the number of tokens over all routines (docs/modelling.md §4.5).

use crate::key::StatKey;

/// The MDL score of a program.
pub fn score(key: &StatKey, beta_mdl: f64) -> f64 {
    -beta_mdl * f64::from(key.t())
}
