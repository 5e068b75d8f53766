//! Choices simulated from the library model over the full choice sets, for parameter recovery
//! (docs/modelling.md §4.5, "The library model").
//!
//! The design is held fixed: who chose on which task, each participant's cache (their observed
//! earlier programs) and the population library (everyone's observed programs). Only the chosen
//! programs are drawn: one p_end for the whole data set, as the likelihood averages p_end over
//! the data, then for each observation one candidate of its task's set with probability
//! exp s_c / Z_i, through the (key, L, T) groups so that every candidate is counted.

use std::collections::HashMap;

use rand::Rng;

use crate::choice::ChoiceSets;
use crate::error::AnalysisError;
use crate::key::StatKey;
use crate::models::{P_END_GRID, Theta};

use super::features::{ObservationBody, ObservationModel, TaskModel};
use super::groups::body_of;
use super::likelihood::Globals;
use super::{LibraryData, LibraryFeatures, View};

/// A simulated choice: the statistic of the drawn candidate.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Draw {
    pub(super) key: StatKey,
    pub(super) leaves: u8,
    /// Its leaf bodies in S (ids), one per occurrence.
    pub(super) bodies: Vec<u32>,
}

impl LibraryData {
    /// The in-sample features of `choice_sets` with every chosen program replaced by a draw from
    /// the model at `theta`, p_end being the grid value drawn for the whole data set (returned
    /// as its grid index). Caches and the population library are those of the observed
    /// programs.
    pub fn simulate(
        &self,
        choice_sets: &ChoiceSets,
        theta: &Theta,
        rng: &mut impl Rng,
    ) -> Result<(LibraryFeatures, usize), AnalysisError> {
        let observed = self.in_sample(choice_sets)?;
        let globals = Globals::new(&observed, theta);
        let grid = rng.random_range(0..P_END_GRID.len());
        let mut draws = HashMap::new();
        for (t, task) in observed.tasks.iter().enumerate() {
            let keys = key_terms(task, &globals, grid);
            for obs in &task.observations {
                let drawn = draw(task, &keys, obs, &globals, grid, rng);
                draws.insert((t, obs.participant), drawn);
            }
        }
        let all = |_: u32, _: usize| true;
        let view = View {
            scored: &all,
            population: &all,
            cache: &all,
        };
        let simulated = self.view_with_draws(choice_sets, &view, &draws)?;
        Ok((simulated, grid))
    }
}

/// Per key of `task` at grid index `e`: β (log P_GI with its routine lengths) − β_step S, the
/// part of a score that no observation changes.
fn key_terms(task: &TaskModel, g: &Globals, e: usize) -> Vec<f64> {
    let (ln_continue, ln_end) = g.grid_logs[e];
    task.keys
        .iter()
        .map(|key| {
            let (continues, ends) = task.lengths[key.length];
            g.beta * (g.gi(key) + continues * ln_continue + ends * ln_end) - g.beta_step * key.s
        })
        .collect()
}

/// Draws one candidate of `task`'s set for observation `obs` at grid index `e`: a group with
/// probability proportional to its count times exp s of its candidates (`key_term` from
/// [`key_terms`]).
fn draw(
    task: &TaskModel,
    key_term: &[f64],
    obs: &ObservationModel,
    g: &Globals,
    e: usize,
    rng: &mut impl Rng,
) -> Draw {
    let v = obs.variant % 2;
    let beta = g.beta;
    // Per body: β ln(1 + share_i(b) / P_tok(b)), the body's part of β log P_lib beyond P_tok.
    let shares: HashMap<u32, &ObservationBody> = obs.bodies.iter().map(|b| (b.body, b)).collect();
    let body_term = |body: u32| -> f64 {
        let fresh = ObservationBody {
            body,
            own_share: 0.0,
            own_library: 0.0,
        };
        let share = g.share_term(shares.get(&body).copied().unwrap_or(&fresh), obs.variant);
        beta * (share * g.inv_p[body as usize][e]).ln_1p()
    };
    let set_term: Vec<f64> = task
        .sets
        .iter()
        .map(|set| set.iter().map(|&el| body_term(body_of(el))).sum())
        .collect();
    let logits: Vec<f64> = task
        .entries
        .iter()
        .map(|&(k, c, count)| {
            let cell = &task.cells[c];
            count.ln() + key_term[k] + beta * cell.leaves as f64 * g.ln_r[v] + set_term[cell.set]
        })
        .collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut cumulative = Vec::with_capacity(logits.len());
    let mut total = 0.0;
    for l in &logits {
        total += (l - max).exp();
        cumulative.push(total);
    }
    let u: f64 = rng.random::<f64>() * total;
    let index = cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len() - 1);
    let (k, c, _) = task.entries[index];
    let cell = &task.cells[c];
    Draw {
        key: task.stat_keys[k],
        leaves: cell.leaves as u8,
        bodies: task.sets[cell.set].iter().map(|&el| body_of(el)).collect(),
    }
}
