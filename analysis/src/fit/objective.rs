//! The objective the optimiser minimises: −LL per choice in unconstrained coordinates, with
//! analytic gradients, optionally with one coordinate held fixed or p_end fixed at a grid value.

use std::sync::Mutex;

use argmin::core::{CostFunction, Error as ArgminError, Gradient};

use crate::models::likelihood::{Features, GradientRows, Weights, evaluate_with};
use crate::models::{Model, N_PARAMS, Param};

/// A point with its cost and gradient.
type CachedEvaluation = (Vec<f64>, f64, Vec<f64>);

/// −LL per choice as a function of unconstrained coordinates, optionally with one coordinate
/// held fixed (`fixed = (index in model.params, value)`) for profiling. Dividing by the number of
/// choices keeps gradients of order one, so that L-BFGS's first steps stay sensible.
pub(super) struct Objective<'a> {
    pub(super) features: &'a Features,
    pub(super) weights: &'a Weights,
    pub(super) model: &'a Model,
    pub(super) fixed: Option<(usize, f64)>,
    /// Evaluate at this p_end grid index only, instead of averaging over the grid.
    pub(super) grid: Option<usize>,
    /// Number of choices: the cost is −LL / scale.
    pub(super) scale: f64,
    /// The last point evaluated, since argmin asks for cost and gradient separately.
    cache: Mutex<Option<CachedEvaluation>>,
    /// The best point seen, so that a failed line search still returns something.
    best: Mutex<Option<(Vec<f64>, f64)>>,
}

impl<'a> Objective<'a> {
    pub(super) fn new(
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

    /// The gradient rows this objective reads: p_end averaged, or its fixed grid index.
    pub(super) fn gradient_rows(&self) -> GradientRows {
        match self.grid {
            Some(grid) => GradientRows::Grid(grid),
            None => GradientRows::Averaged,
        }
    }

    /// The same objective with p_end fixed at grid index `grid`.
    pub(super) fn at_grid(mut self, grid: usize) -> Objective<'a> {
        self.grid = Some(grid);
        self
    }

    /// A new objective on the same data, with empty caches.
    pub(super) fn fresh(&self) -> Objective<'a> {
        Objective {
            grid: self.grid,
            ..Objective::new(self.features, self.weights, self.model, self.fixed)
        }
    }

    /// The parameters of the free coordinates, in order (the model's, less the fixed one).
    pub(super) fn free_params(&self) -> impl Iterator<Item = Param> + '_ {
        let fixed = self.fixed.map(|(index, _)| index);
        self.model
            .params
            .iter()
            .enumerate()
            .filter(move |&(i, _)| Some(i) != fixed)
            .map(|(_, p)| *p)
    }

    /// All unconstrained coordinates from the free ones.
    pub(super) fn full(&self, free: &[f64]) -> Vec<f64> {
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
    pub(super) fn values(&self, free: &[f64]) -> Vec<f64> {
        self.model
            .params
            .iter()
            .zip(self.full(free))
            .map(|(p, u)| p.from_unbounded(u))
            .collect()
    }

    /// The log-likelihood that a cost stands for.
    pub(super) fn log_likelihood_of(&self, cost: f64) -> f64 {
        if cost == f64::MAX {
            f64::NEG_INFINITY
        } else {
            -cost * self.scale
        }
    }

    pub(super) fn cost_and_gradient(&self, free: &[f64]) -> (f64, Vec<f64>) {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, cost, gradient)) = cache.as_ref()
            && at.as_slice() == free
        {
            return (*cost, gradient.clone());
        }
        let full = self.full(free);
        let theta = self.model.theta(&self.values(free));
        let evaluation = evaluate_with(
            self.features,
            self.weights,
            self.model,
            &theta,
            self.gradient_rows(),
        );
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

    pub(super) fn best_seen(&self) -> Option<(Vec<f64>, f64)> {
        self.best.lock().ok().and_then(|best| best.clone())
    }
}

/// Beyond this unconstrained coordinate a parameter is at its bound for every practical purpose
/// (within e^-30 of it, or above e^30 for a β or alpha); an optimiser run that goes there is
/// stopped, since crawling on towards the clamp costs many evaluations and changes nothing.
/// The best point seen is kept, and [`maximise`](super::optimiser::maximise) decides whether the bound is a real optimum.
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
pub(super) struct Unguarded<'a, 'b>(pub(super) &'b Objective<'a>);

impl CostFunction for Unguarded<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, free: &Vec<f64>) -> Result<f64, ArgminError> {
        Ok(self.0.cost_and_gradient(free).0)
    }
}

// Compile-time check that the objective can be shared across rayon workers.
const _: fn() = || {
    fn assert_sync<T: Sync>() {}
    assert_sync::<Objective<'static>>();
};
