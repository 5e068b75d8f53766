//! Maximum-likelihood fitting (docs/modelling.md §4.6) and profile-likelihood intervals.
//!
//! Each fit runs L-BFGS (argmin, with analytic gradients) from one default start plus seeded
//! random starts and keeps the best. The optimiser works on unconstrained coordinates: ln(x - 1e-4)
//! for positive parameters and the logit of the position within the bounds for probabilities, so
//! every step stays inside the box bounds of docs/modelling.md §4.6 (the bounds themselves are
//! approached, not reached). Restarts run in parallel with rayon.
//!
//! The parts: `objective` is −LL in unconstrained coordinates, `optimiser` maximises it (L-BFGS
//! with a Nelder-Mead rescue and restarts off false boundary optima), `profile` walks each
//! parameter's profile likelihood out to its 95% interval, and `curve` computes one parameter's
//! profile on a grid of values.

mod curve;
mod objective;
mod optimiser;
mod profile;

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::AnalysisError;
use crate::fit::objective::Objective;
use crate::fit::optimiser::maximise;
use crate::models::likelihood::{Evaluation, Features, Weights, evaluate};
use crate::models::{Model, Param, ParamKind};

pub use crate::fit::curve::{ProfilePoint, profile_curve};
pub use crate::fit::profile::{Interval, PROFILE_DROP, profile_intervals};

/// Settings of a fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Random starts in addition to the default start (the reference analysis used 50,
    /// docs/modelling.md §4.6).
    pub random_starts: usize,
    /// Seed of the random starts.
    pub seed: u64,
    /// Restarts whose log-likelihood is within this of the best count as reaching it.
    pub tolerance: f64,
    /// Iteration cap of each L-BFGS run.
    pub max_iters: u64,
}

impl Default for FitOptions {
    fn default() -> FitOptions {
        FitOptions {
            random_starts: 50,
            seed: 0,
            tolerance: 1e-2,
            max_iters: 300,
        }
    }
}

/// The outcome of fitting one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFit {
    #[serde(skip)]
    pub model: Model,
    /// Fitted values, in `model.params` order.
    pub params: Vec<f64>,
    pub log_likelihood: f64,
    /// Starts run (default plus random).
    pub restarts: usize,
    /// Starts that ended within the tolerance of the best log-likelihood.
    pub restarts_at_best: usize,
    /// Wall-clock seconds of the fit.
    pub seconds: f64,
}

/// The default start followed by `options.random_starts` random ones: positive parameters from
/// Exponential(scale 2), probabilities from Uniform(0, 1), clipped to the bounds
/// (docs/modelling.md §4.6).
pub fn starts(model: &Model, options: &FitOptions) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut starts = vec![model.default_start()];
    for _ in 0..options.random_starts {
        let start = model
            .params
            .iter()
            .map(|param| {
                let uniform: f64 = rng.random();
                let value = match param.kind() {
                    ParamKind::Positive => -2.0 * (1.0 - uniform).ln(),
                    ParamKind::Bounded { .. } => uniform,
                };
                param.clip(value)
            })
            .collect();
        starts.push(start);
    }
    starts
}

/// Library weights (w_o, w_p) tried at the nested model's optimum: each pair is one extra start
/// of a library model's fit ([`nested_starts`]), besides the nested model itself.
pub const NESTED_START_WEIGHTS: [f64; 3] = [0.2, 0.5, 0.8];

/// How many starts [`fit`] runs for `model`: the default and the random starts, and for a model
/// with library weights one at the nested model's optimum and one per pair of
/// [`NESTED_START_WEIGHTS`].
pub fn n_starts(model: &Model, options: &FitOptions) -> usize {
    if model.k() == 0 {
        return 1;
    }
    let nested = if model.without_library().is_some() {
        nested_weights().count()
    } else {
        0
    };
    options.random_starts + 1 + nested
}

/// The (w_o, w_p) of the nested starts: (0, 0), then the grid of [`NESTED_START_WEIGHTS`].
fn nested_weights() -> impl Iterator<Item = (f64, f64)> {
    let grid = NESTED_START_WEIGHTS
        .iter()
        .flat_map(|&w_own| NESTED_START_WEIGHTS.map(|w_pop| (w_own, w_pop)));
    std::iter::once((0.0, 0.0)).chain(grid)
}

/// Starts of a library model at the optimum of the model it extends (`gi+step` for `lib+step`),
/// fitted first with the same options: one with the library weights at 0 (the nested model
/// itself, so the fit ends at least as high as the nested model's), and one per pair of the
/// grid [`NESTED_START_WEIGHTS`] × [`NESTED_START_WEIGHTS`]. None for other models.
///
/// Why (docs/modelling.md §4.6): the library likelihood has separate modes in (w_o, w_p), and
/// starts far from the shared parameters' optimum often end in a degenerate one (α and p_call at
/// their bounds) or begin where the likelihood is not computable. Started where the shared
/// parameters already fit, each weight pair climbs to the mode of its region.
pub fn nested_starts(
    features: &Features,
    weights: &Weights,
    model: &Model,
    options: &FitOptions,
) -> Result<Vec<Vec<f64>>, AnalysisError> {
    let Some(base) = model.without_library() else {
        return Ok(Vec::new());
    };
    let base_fit = fit(features, weights, &base, options, &|| {})?;
    let mut theta = base.theta(&base_fit.params);
    Ok(nested_weights()
        .map(|(w_own, w_pop)| {
            theta.values[Param::LibOwn.index()] = w_own;
            theta.values[Param::LibPop.index()] = w_pop;
            model.params.iter().map(|p| p.clip(theta.get(*p))).collect()
        })
        .collect())
}

/// Fits `model` to the choices `weights` by maximum likelihood; `progress` is called once per
/// finished start ([`n_starts`] in all).
pub fn fit(
    features: &Features,
    weights: &Weights,
    model: &Model,
    options: &FitOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<ModelFit, AnalysisError> {
    let began = Instant::now();
    if weights.total() == 0.0 {
        return Err(AnalysisError::NoObservations);
    }
    if model.k() == 0 {
        let log_likelihood = log_likelihood(features, weights, model, &[]);
        progress();
        return Ok(ModelFit {
            model: *model,
            params: Vec::new(),
            log_likelihood,
            restarts: 1,
            restarts_at_best: 1,
            seconds: began.elapsed().as_secs_f64(),
        });
    }
    let objective = Objective::new(features, weights, model, None);
    let mut all_starts = starts(model, options);
    all_starts.extend(nested_starts(features, weights, model, options)?);
    let results: Vec<(Vec<f64>, f64)> = all_starts
        .into_par_iter()
        .map(|start| {
            let u: Vec<f64> = model
                .params
                .iter()
                .zip(&start)
                .map(|(p, &x)| p.to_unbounded(x))
                .collect();
            let result = maximise(&objective, u, options.max_iters);
            progress();
            result
        })
        .collect();
    let (best_u, best_ll) = results
        .iter()
        .filter(|(_, ll)| ll.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .ok_or(AnalysisError::NoFiniteStart { model: model.name })?;
    let restarts_at_best = results
        .iter()
        .filter(|(_, ll)| *ll >= best_ll - options.tolerance)
        .count();
    Ok(ModelFit {
        model: *model,
        params: objective.values(&best_u),
        log_likelihood: best_ll,
        restarts: results.len(),
        restarts_at_best,
        seconds: began.elapsed().as_secs_f64(),
    })
}

/// The log-likelihood of `model` with free values `params` (in `model.params` order).
pub fn log_likelihood(
    features: &Features,
    weights: &Weights,
    model: &Model,
    params: &[f64],
) -> f64 {
    evaluate(features, weights, model, &model.theta(params), false).log_likelihood()
}

/// The full evaluation (per task and per p_end) at `params`.
pub fn evaluation(
    features: &Features,
    weights: &Weights,
    model: &Model,
    params: &[f64],
) -> Evaluation {
    evaluate(features, weights, model, &model.theta(params), false)
}
