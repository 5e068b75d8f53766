//! The library model's score of one program, straight from its definition (docs/modelling.md
//! §4.5, "The library model"), for checking the grouped likelihood and for reading off what the
//! model prefers. It walks the program's leaf bodies and computes P(b | i, t) from the shares;
//! nothing of the grouping or the inclusion-exclusion is used.

use dsl::Program;

use crate::enumerate::normal_bytes;
use crate::key::StatKey;
use crate::models::gi::{GiParams, N_PRIMITIVES, log_prior};
use crate::models::{Param, Theta};

use super::LibraryData;
use super::cache::Population;
use super::groups::leaf_slices;

/// Scores programs for the participants of one fit (the population library holds the programs
/// of the observations `fitted` accepts).
#[derive(Debug, Clone)]
pub struct DirectScorer<'a> {
    data: &'a LibraryData,
    population: Population,
}

impl LibraryData {
    /// A direct scorer whose population library is the programs of the observations
    /// `fitted(participant, task)` accepts.
    pub fn direct_scorer(&self, fitted: &dyn Fn(u32, usize) -> bool) -> DirectScorer<'_> {
        let mut population = Population::default();
        for program in self
            .observed
            .iter()
            .filter(|o| fitted(o.participant, o.task))
        {
            population.add(program.participant, &program.bodies);
        }
        DirectScorer {
            data: self,
            population,
        }
    }
}

impl DirectScorer<'_> {
    /// s = β_GI log P_lib(program) − β_step S for `participant` choosing on task `task`, with
    /// `key` the program's statistics (S included) and p_end given; the participant's cache is
    /// what they wrote before they saw `task`.
    pub fn score(
        &self,
        theta: &Theta,
        participant: u32,
        task: usize,
        program: &Program,
        key: &StatKey,
        p_end: f64,
    ) -> f64 {
        let params = GiParams {
            alpha: theta.get(Param::Alpha),
            discount: 0.0,
            p_call: theta.get(Param::PCall),
            p_end,
        };
        let (w_own, w_pop) = (theta.get(Param::LibOwn), theta.get(Param::LibPop));
        let history = self.data.histories.get(&participant);
        let position = history.and_then(|h| h.position_of(task)).unwrap_or(task);
        let cache = history
            .map(|h| h.cache_before(position, &|_| true))
            .unwrap_or_default();
        let w_own = if cache.is_empty() { 0.0 } else { w_own };
        let bytes = normal_bytes(program).unwrap_or_default();
        let mut library = 0.0;
        for body in leaf_slices(&bytes) {
            let length = body.len() as f64;
            let tokens = length * ((1.0 - params.p_call) / N_PRIMITIVES).ln()
                + (length - 1.0) * (1.0 - p_end).ln()
                + p_end.ln();
            let p_tok = tokens.exp();
            let (own, pop) = match self.data.index.get(body) {
                Some(id) => (
                    cache.share(id),
                    self.population.share_excluding(participant, id),
                ),
                None => (0.0, 0.0),
            };
            let p = w_own * own + (1.0 - w_own) * (w_pop * pop + (1.0 - w_pop) * p_tok);
            library += p.ln() - tokens;
        }
        theta.get(Param::BetaGi) * (log_prior(key, &params) + library)
            - theta.get(Param::BetaStep) * f64::from(key.s)
    }
}
