//! The step-cost model: programs that reach the goal in fewer executed primitives are preferred,
//! `s = -beta_step * S` with S the step cost of docs/semantics.md §1.8 (docs/modelling.md §4.5).

use crate::key::StatKey;

/// The step-cost score of a program.
pub fn score(key: &StatKey, beta_step: f64) -> f64 {
    -beta_step * f64::from(key.s)
}
