//! Maximum-likelihood fitting (SPEC §4.6) and profile-likelihood intervals.
//!
//! Each fit runs L-BFGS (argmin, with analytic gradients) from one default start plus seeded
//! random starts and keeps the best. The optimiser works on unconstrained coordinates: ln(x - 1e-4)
//! for positive parameters and the logit of the position within the bounds for probabilities, so
//! every step stays inside the SPEC's box bounds (the bounds themselves are approached, not
//! reached). Restarts run in parallel with rayon.

use std::sync::Mutex;
use std::time::Instant;

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::AnalysisError;
use crate::models::likelihood::{Evaluation, Features, Weights, evaluate};
use crate::models::{Model, N_PARAMS, P_END_GRID, ParamKind, U_LIMIT};

/// Half the 95% quantile of χ²(1): the log-likelihood drop that bounds a profile interval.
pub const PROFILE_DROP: f64 = 1.920_729_410_347_062;

/// Settings of a fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Random starts in addition to the default start (SPEC: 50).
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

/// A profile-likelihood interval. An end that the profile does not cross within the parameter's
/// range is the bound (infinite for an unbounded β).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// The default start followed by `options.random_starts` random ones: positive parameters from
/// Exponential(scale 2), probabilities from Uniform(0, 1), clipped to the bounds (SPEC §4.6).
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

/// Fits `model` to the choices `weights` by maximum likelihood; `progress` is called once per
/// finished start.
pub fn fit(
    features: &Features,
    weights: &Weights,
    model: &Model,
    options: &FitOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<ModelFit, AnalysisError> {
    let began = Instant::now();
    if weights.total() == 0.0 {
        return Err(AnalysisError::Invalid(
            "there are no observations to fit".into(),
        ));
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
    let results: Vec<(Vec<f64>, f64)> = starts(model, options)
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
        .ok_or_else(|| {
            AnalysisError::Invalid(format!(
                "model {}: no start gave a finite likelihood",
                model.name
            ))
        })?;
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

/// Profile-likelihood 95% intervals of every parameter of a fitted model, in `model.params`
/// order. If profiling finds a higher likelihood than the fit's, the fit is moved there (and
/// the intervals recomputed), so `fitted` may change.
///
/// For models with the grammar-induction prior the likelihood is a mixture over the p_end grid,
/// and each grid value makes its own local optimum, with the other parameters compensating.
/// The profile is the maximum over all of them, so every mode within the profile drop of the
/// best is followed separately and each interval is the hull of the modes' intervals.
pub fn profile_intervals(
    features: &Features,
    weights: &Weights,
    fitted: &mut ModelFit,
    options: &FitOptions,
) -> Vec<Interval> {
    let model = fitted.model;
    if model.k() == 0 {
        return Vec::new();
    }
    for _ in 0..4 {
        let u: Vec<f64> = model
            .params
            .iter()
            .zip(&fitted.params)
            .map(|(p, &x)| p.to_unbounded(x))
            .collect();
        let modes = match modes(features, weights, &model, u, fitted.log_likelihood, options) {
            Ok(modes) => modes,
            Err((better_u, better_ll)) => {
                fitted.params = Objective::new(features, weights, &model, None).values(&better_u);
                fitted.log_likelihood = better_ll;
                continue;
            }
        };
        let jobs: Vec<(usize, usize, f64)> = (0..modes.len())
            .flat_map(|m| (0..model.k()).flat_map(move |i| [(m, i, -1.0), (m, i, 1.0)]))
            .collect();
        let steps: Vec<Vec<f64>> = modes
            .iter()
            .map(|(u, _)| wald_steps(features, weights, &model, u))
            .collect();
        let ends: Vec<Result<f64, Vec<f64>>> = jobs
            .par_iter()
            .map(|&(m, index, direction)| {
                let job = ProfileJob {
                    features,
                    weights,
                    model: &model,
                    best_ll: fitted.log_likelihood,
                    options,
                };
                job.end(&modes[m].0, modes[m].1, index, direction, steps[m][index])
            })
            .collect();
        if let Some(better) = ends.iter().filter_map(|s| s.as_ref().err()).next() {
            // Profiling found a higher optimum: polish it and profile again from there.
            let objective = Objective::new(features, weights, &model, None);
            let (u, ll) = maximise(&objective, better.clone(), options.max_iters);
            if ll > fitted.log_likelihood {
                fitted.params = objective.values(&u);
                fitted.log_likelihood = ll;
            }
            continue;
        }
        let mut intervals = vec![
            Interval {
                lower: f64::INFINITY,
                upper: f64::NEG_INFINITY
            };
            model.k()
        ];
        for (&(_, index, direction), end) in jobs.iter().zip(&ends) {
            let end = *end.as_ref().unwrap_or(&f64::NAN);
            let interval = &mut intervals[index];
            if direction < 0.0 {
                interval.lower = interval.lower.min(end);
            } else {
                interval.upper = interval.upper.max(end);
            }
        }
        return intervals;
    }
    vec![
        Interval {
            lower: f64::NAN,
            upper: f64::NAN
        };
        model.k()
    ]
}

/// The local optima of the likelihood worth profiling, as (unconstrained point, log-likelihood):
/// the fit itself and, for models that use p_end, the optimum belonging to each p_end of the grid
/// if it comes within the profile drop of the best. `Err` carries a better optimum than the fit.
fn modes(
    features: &Features,
    weights: &Weights,
    model: &Model,
    u: Vec<f64>,
    best_ll: f64,
    options: &FitOptions,
) -> Result<Vec<Point>, Point> {
    let mut modes = vec![(u.clone(), best_ll)];
    if !model.uses_gi() {
        return Ok(modes);
    }
    let found: Vec<(Vec<f64>, f64)> = (0..P_END_GRID.len())
        .into_par_iter()
        .map(|grid| {
            // The optimum with p_end fixed at this grid value, then the mixture's optimum near it.
            let conditional = Objective::new(features, weights, model, None).at_grid(grid);
            let (start, _) = maximise(&conditional, u.clone(), options.max_iters);
            maximise(
                &Objective::new(features, weights, model, None),
                start,
                options.max_iters,
            )
        })
        .collect();
    for (point, ll) in found {
        if ll > best_ll + 1e-3 {
            return Err((point, ll));
        }
        let distinct = modes.iter().all(|(m, _)| {
            m.iter()
                .zip(&point)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                > 1e-3
        });
        if ll >= best_ll - PROFILE_DROP && distinct {
            modes.push((point, ll));
        }
    }
    Ok(modes)
}

/// Initial profiling steps in unconstrained coordinates: 2 standard errors from the inverse of
/// the observed information, or 0.5 where that is not usable.
fn wald_steps(features: &Features, weights: &Weights, model: &Model, u: &[f64]) -> Vec<f64> {
    let objective = Objective::new(features, weights, model, None);
    let k = u.len();
    let h = 1e-4;
    let mut hessian = vec![vec![0.0; k]; k];
    for j in 0..k {
        let mut plus = u.to_vec();
        let mut minus = u.to_vec();
        plus[j] += h;
        minus[j] -= h;
        let (_, g_plus) = objective.cost_and_gradient(&plus);
        let (_, g_minus) = objective.cost_and_gradient(&minus);
        for i in 0..k {
            hessian[i][j] = (g_plus[i] - g_minus[i]) / (2.0 * h);
        }
    }
    // The objective is −LL, so its Hessian is the observed information.
    let covariance = invert(&hessian);
    (0..k)
        .map(|j| {
            let variance = covariance.as_ref().map_or(f64::NAN, |c| c[j][j]);
            let step = 2.0 * variance.sqrt();
            if step.is_finite() && step > 0.0 {
                step.clamp(1e-3, 5.0)
            } else {
                0.5
            }
        })
        .collect()
}

/// Gauss-Jordan inverse of a small matrix; `None` if singular.
fn invert(matrix: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let k = matrix.len();
    let mut a: Vec<Vec<f64>> = matrix
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut row = row.clone();
            row.extend((0..k).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for col in 0..k {
        let pivot = (col..k).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        let p = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= p);
        for row in 0..k {
            if row != col {
                let factor = a[row][col];
                let pivot_row = a[col].clone();
                a[row]
                    .iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(v, &pv)| *v -= factor * pv);
            }
        }
    }
    Some(a.into_iter().map(|row| row[k..].to_vec()).collect())
}

/// A point in unconstrained coordinates with its log-likelihood (or cost).
type Point = (Vec<f64>, f64);

/// A point with its cost and gradient.
type CachedEvaluation = (Vec<f64>, f64, Vec<f64>);

/// What every profiling walk shares.
struct ProfileJob<'a> {
    features: &'a Features,
    weights: &'a Weights,
    model: &'a Model,
    /// The best log-likelihood; the interval is where the profile stays within the drop of it.
    best_ll: f64,
    options: &'a FitOptions,
}

impl ProfileJob<'_> {
    /// One end of the profile interval of parameter `index`, walking in `direction` (−1 or +1)
    /// from the local optimum `u` (unconstrained coordinates) with log-likelihood `start_ll`.
    /// `Err` carries a point whose likelihood beats the best.
    fn end(
        &self,
        u: &[f64],
        start_ll: f64,
        index: usize,
        direction: f64,
        step: f64,
    ) -> Result<f64, Vec<f64>> {
        let param = self.model.params[index];
        let target = self.best_ll - PROFILE_DROP;
        let limit = direction * U_LIMIT;
        let rest: Vec<f64> = u
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != index)
            .map(|(_, &v)| v)
            .collect();
        // The profile log-likelihood at u_index = x minus the target, warm-started from the
        // nearest point inside.
        let profile = |x: f64, warm: &[f64]| -> Result<(f64, Vec<f64>), Vec<f64>> {
            let objective =
                Objective::new(self.features, self.weights, self.model, Some((index, x)));
            let (rest, ll) = if warm.is_empty() {
                (
                    Vec::new(),
                    objective.log_likelihood_of(objective.cost_and_gradient(&[]).0),
                )
            } else {
                maximise(&objective, warm.to_vec(), self.options.max_iters)
            };
            if ll > self.best_ll + 1e-3 {
                return Err(objective.full(&rest));
            }
            Ok((ll - target, rest))
        };
        let mut inside = (u[index], start_ll - target, rest);
        let mut step = step;
        let outside = loop {
            let x = inside.0 + direction * step;
            let x = if direction > 0.0 {
                x.min(limit)
            } else {
                x.max(limit)
            };
            let (f, rest) = profile(x, &inside.2)?;
            if f < 0.0 {
                break (x, f);
            }
            if x == limit {
                // The profile never drops far enough within the parameter's range.
                return Ok(match (param.kind(), direction > 0.0) {
                    (ParamKind::Positive, true) => f64::INFINITY,
                    (_, true) => param.bounds().1,
                    (_, false) => param.bounds().0,
                });
            }
            inside = (x, f, rest);
            step *= 2.0;
        };
        // Illinois (modified regula falsi) between the last inside point and the first outside one.
        let (mut a, mut fa, mut warm) = inside;
        let (mut b, mut fb) = outside;
        let mut side = 0;
        for _ in 0..60 {
            let x = (a * fb - b * fa) / (fb - fa);
            let x = if x.is_finite() && (x - a) * (x - b) < 0.0 {
                x
            } else {
                0.5 * (a + b)
            };
            let (f, rest) = profile(x, &warm)?;
            if f.abs() < 1e-4 || (b - a).abs() < 1e-7 {
                return Ok(param.from_unbounded(x));
            }
            if f > 0.0 {
                (a, fa, warm) = (x, f, rest);
                if side == 1 {
                    fb *= 0.5;
                }
                side = 1;
            } else {
                (b, fb) = (x, f);
                if side == -1 {
                    fa *= 0.5;
                }
                side = -1;
            }
        }
        Ok(param.from_unbounded(0.5 * (a + b)))
    }
}

/// −LL per choice as a function of unconstrained coordinates, optionally with one coordinate
/// held fixed (`fixed = (index in model.params, value)`) for profiling. Dividing by the number of
/// choices keeps gradients of order one, so that L-BFGS's first steps stay sensible.
struct Objective<'a> {
    features: &'a Features,
    weights: &'a Weights,
    model: &'a Model,
    fixed: Option<(usize, f64)>,
    /// Evaluate at this p_end grid index only, instead of averaging over the grid.
    grid: Option<usize>,
    /// Number of choices: the cost is −LL / scale.
    scale: f64,
    /// The last point evaluated, since argmin asks for cost and gradient separately.
    cache: Mutex<Option<CachedEvaluation>>,
    /// The best point seen, so that a failed line search still returns something.
    best: Mutex<Option<(Vec<f64>, f64)>>,
}

impl<'a> Objective<'a> {
    fn new(
        features: &'a Features,
        weights: &'a Weights,
        model: &'a Model,
        fixed: Option<(usize, f64)>,
    ) -> Objective<'a> {
        Objective {
            features,
            weights,
            model,
            fixed,
            grid: None,
            scale: weights.total().max(1.0),
            cache: Mutex::new(None),
            best: Mutex::new(None),
        }
    }

    /// The same objective with p_end fixed at grid index `grid`.
    fn at_grid(mut self, grid: usize) -> Objective<'a> {
        self.grid = Some(grid);
        self
    }

    /// A new objective on the same data, with empty caches.
    fn fresh(&self) -> Objective<'a> {
        Objective {
            grid: self.grid,
            ..Objective::new(self.features, self.weights, self.model, self.fixed)
        }
    }

    /// All unconstrained coordinates from the free ones.
    fn full(&self, free: &[f64]) -> Vec<f64> {
        match self.fixed {
            None => free.to_vec(),
            Some((index, value)) => {
                let mut full = free.to_vec();
                full.insert(index, value);
                full
            }
        }
    }

    /// Parameter values (in `model.params` order) at free coordinates `free`.
    fn values(&self, free: &[f64]) -> Vec<f64> {
        self.model
            .params
            .iter()
            .zip(self.full(free))
            .map(|(p, u)| p.from_unbounded(u))
            .collect()
    }

    /// The log-likelihood that a cost stands for.
    fn log_likelihood_of(&self, cost: f64) -> f64 {
        if cost == f64::MAX {
            f64::NEG_INFINITY
        } else {
            -cost * self.scale
        }
    }

    fn cost_and_gradient(&self, free: &[f64]) -> (f64, Vec<f64>) {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, cost, gradient)) = cache.as_ref()
            && at.as_slice() == free
        {
            return (*cost, gradient.clone());
        }
        let full = self.full(free);
        let theta = self.model.theta(&self.values(free));
        let evaluation = evaluate(self.features, self.weights, self.model, &theta, true);
        let (ll, natural): (f64, [f64; N_PARAMS]) = match self.grid {
            Some(grid) if grid < evaluation.n_grid => (
                evaluation.grid_log_likelihood(grid),
                evaluation.grid_gradient[grid],
            ),
            _ => (evaluation.log_likelihood(), evaluation.gradient()),
        };
        let mut gradient: Vec<f64> = self
            .model
            .params
            .iter()
            .zip(&full)
            .map(|(p, &u)| -natural[p.index()] * p.derivative(u) / self.scale)
            .collect();
        if let Some((index, _)) = self.fixed {
            gradient.remove(index);
        }
        // Non-finite values would derail the line search; treat them as a wall.
        let cost = if ll.is_finite() {
            -ll / self.scale
        } else {
            f64::MAX
        };
        if gradient.iter().any(|g| !g.is_finite()) {
            gradient.iter_mut().for_each(|g| *g = 0.0);
        }
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((free.to_vec(), cost, gradient.clone()));
        }
        if let Ok(mut best) = self.best.lock()
            && best.as_ref().is_none_or(|(_, c)| cost < *c)
        {
            *best = Some((free.to_vec(), cost));
        }
        (cost, gradient)
    }

    fn best_seen(&self) -> Option<(Vec<f64>, f64)> {
        self.best.lock().ok().and_then(|best| best.clone())
    }
}

/// Beyond this unconstrained coordinate a parameter is at its bound for every practical purpose
/// (within e^-30 of it, or above e^30 for a β or alpha); an optimiser run that goes there is
/// stopped, since crawling on towards the clamp costs many evaluations and changes nothing.
/// The best point seen is kept, and [`maximise`] decides whether the bound is a real optimum.
const RUNAWAY: f64 = 30.0;

fn runaway(free: &[f64]) -> Result<(), ArgminError> {
    if free.iter().any(|u| u.abs() > RUNAWAY) {
        return Err(ArgminError::msg("a parameter ran to its bound"));
    }
    Ok(())
}

impl CostFunction for &Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, free: &Vec<f64>) -> Result<f64, ArgminError> {
        let cost = self.cost_and_gradient(free).0;
        runaway(free)?;
        Ok(cost)
    }
}

impl Gradient for &Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, free: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        let gradient = self.cost_and_gradient(free).1;
        runaway(free)?;
        Ok(gradient)
    }
}

/// The objective without the runaway stop, for argmin's Nelder-Mead, which panics on a cost error
/// (the coordinates are clamped, so it stays finite anyway).
struct Unguarded<'a, 'b>(&'b Objective<'a>);

impl CostFunction for Unguarded<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, free: &Vec<f64>) -> Result<f64, ArgminError> {
        Ok(self.0.cost_and_gradient(free).0)
    }
}

/// Maximises the log-likelihood from `start` (free unconstrained coordinates); returns the best
/// point and its log-likelihood.
///
/// Near a bound the reparameterisation flattens the objective, so an early overshoot can leave
/// the optimiser stuck at a bound although the likelihood rises inwards (a false stationary
/// point that box-constrained L-BFGS-B would not stop at). Such coordinates are moved back to
/// their default start and the search resumed, a few times at most; true boundary optima, where
/// the likelihood rises outwards, are kept.
fn maximise(objective: &Objective<'_>, start: Vec<f64>, max_iters: u64) -> (Vec<f64>, f64) {
    let (mut best_u, mut best_ll) = maximise_once(objective, start, max_iters);
    for _ in 0..3 {
        let stuck = stuck_at_bounds(objective, &best_u);
        if stuck.is_empty() {
            break;
        }
        // Every coordinate at a bound goes back to its default start: a coordinate pinned
        // with a flat slope (such as p_call while β_GI is at 0) would pin the others again.
        let mut restart = best_u.clone();
        let fixed = objective.fixed.map(|(index, _)| index);
        let free_params = objective
            .model
            .params
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != fixed);
        for (u, (_, param)) in restart.iter_mut().zip(free_params) {
            if u.abs() > 10.0 {
                *u = param.to_unbounded(param.default_start().max(0.1));
            }
        }
        for (i, param) in stuck {
            restart[i] = param.to_unbounded(param.default_start().max(0.1));
        }
        let (u, ll) = maximise_once(objective, restart, max_iters);
        if ll <= best_ll {
            break;
        }
        (best_u, best_ll) = (u, ll);
    }
    (best_u, best_ll)
}

/// Free coordinates (index, parameter) pinned at a bound while the likelihood rises inwards.
fn stuck_at_bounds(objective: &Objective<'_>, free: &[f64]) -> Vec<(usize, crate::models::Param)> {
    let values = objective.values(free);
    let theta = objective.model.theta(&values);
    let evaluation = evaluate(
        objective.features,
        objective.weights,
        objective.model,
        &theta,
        true,
    );
    let gradient = match objective.grid {
        Some(grid) if grid < evaluation.n_grid => evaluation.grid_gradient[grid],
        _ => evaluation.gradient(),
    };
    let fixed = objective.fixed.map(|(index, _)| index);
    let mut stuck = Vec::new();
    let mut free_index = 0;
    for (i, param) in objective.model.params.iter().enumerate() {
        if Some(i) == fixed {
            continue;
        }
        let u = free[free_index];
        let slope = gradient[param.index()] / objective.scale;
        // |u| > 10: within e^-10 of the lower bound (or the logit's ends); the slope is per choice.
        if (u < -10.0 && slope > 1e-6) || (u > 10.0 && slope < -1e-6) {
            stuck.push((free_index, *param));
        }
        free_index += 1;
    }
    stuck
}

/// One run of [`maximise`]: L-BFGS; if it stops away from a stationary point (a line search that
/// cannot progress), Nelder-Mead continues from there and L-BFGS polishes once more.
fn maximise_once(objective: &Objective<'_>, start: Vec<f64>, max_iters: u64) -> (Vec<f64>, f64) {
    if start.is_empty() {
        let cost = objective.cost_and_gradient(&[]).0;
        return (start, objective.log_likelihood_of(cost));
    }
    let run_lbfgs = |from: Vec<f64>| -> Option<(Vec<f64>, f64)> {
        let problem = objective.fresh();
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
            .with_tolerance_grad(1e-8)
            .ok()?
            .with_tolerance_cost(1e-12)
            .ok()?;
        // An error here is a line search that could not progress; the best point seen so far
        // is still a valid result, so it is used either way.
        let _ = Executor::new(&problem, solver)
            .configure(|state| state.param(from).max_iters(max_iters))
            .run();
        problem.best_seen()
    };
    let (u, cost) = match run_lbfgs(start.clone()) {
        Some((u, cost)) if cost < f64::MAX => (u, cost),
        _ => (start, f64::MAX),
    };
    let gradient_norm = {
        let (_, g) = objective.fresh().cost_and_gradient(&u);
        g.iter().map(|x| x * x).sum::<f64>().sqrt()
    };
    if gradient_norm < 1e-5 {
        return (u, objective.log_likelihood_of(cost));
    }
    let problem = objective.fresh();
    let mut simplex = vec![u.clone()];
    for j in 0..u.len() {
        let mut vertex = u.clone();
        vertex[j] += 0.5;
        simplex.push(vertex);
    }
    if let Ok(solver) = NelderMead::new(simplex).with_sd_tolerance(1e-12) {
        let _ = Executor::new(Unguarded(&problem), solver)
            .configure(|state| state.max_iters(max_iters))
            .run();
    }
    let (u, cost) = match problem.best_seen() {
        Some((v, c)) if c < cost => (v, c),
        _ => (u, cost),
    };
    match run_lbfgs(u.clone()) {
        Some((v, c)) if c < cost => (v, objective.log_likelihood_of(c)),
        _ => (u, objective.log_likelihood_of(cost)),
    }
}

// Compile-time check that the objective can be shared across rayon workers.
const _: fn() = || {
    fn assert_sync<T: Sync>() {}
    assert_sync::<Objective<'static>>();
};
