//! Maximising the log-likelihood from one start: L-BFGS, Nelder-Mead where L-BFGS stalls, and
//! restarts for coordinates stuck at a bound the likelihood rises away from.

use argmin::core::Executor;
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

use crate::fit::objective::{Objective, Unguarded};
use crate::models::likelihood::evaluate_with;

/// Maximises the log-likelihood from `start` (free unconstrained coordinates); returns the best
/// point and its log-likelihood.
///
/// Near a bound the reparameterisation flattens the objective, so an early overshoot can leave
/// the optimiser stuck at a bound although the likelihood rises inwards (a false stationary
/// point that box-constrained L-BFGS-B would not stop at). Such coordinates are moved back to
/// their default start and the search resumed, a few times at most; true boundary optima, where
/// the likelihood rises outwards, are kept.
pub(super) fn maximise(
    objective: &Objective<'_>,
    start: Vec<f64>,
    max_iters: u64,
) -> (Vec<f64>, f64) {
    let start = defined_start(objective, start);
    let (mut best_u, mut best_ll) = maximise_once(objective, start, max_iters);
    for _ in 0..3 {
        let stuck = stuck_at_bounds(objective, &best_u);
        if stuck.is_empty() {
            break;
        }
        // Every coordinate at a bound goes back to its default start: a coordinate pinned
        // with a flat slope (such as p_call while β_GI is at 0) would pin the others again.
        let mut restart = best_u.clone();
        for (u, param) in restart.iter_mut().zip(objective.free_params()) {
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

/// `start`, or where the likelihood is undefined there (the library model's walls,
/// docs/modelling.md §4.5), the first point halfway, a quarter of the way, ... back to the default
/// start at which it is defined, so that a random start far out still searches from nearby.
fn defined_start(objective: &Objective<'_>, start: Vec<f64>) -> Vec<f64> {
    let computable = |point: &[f64]| objective.fresh().cost_and_gradient(point).0 < f64::MAX;
    if start.is_empty() || computable(&start) {
        return start;
    }
    let default: Vec<f64> = objective
        .free_params()
        .map(|p| p.to_unbounded(p.default_start()))
        .collect();
    let mut fraction = 1.0;
    for _ in 0..10 {
        fraction *= 0.5;
        let point: Vec<f64> = start
            .iter()
            .zip(&default)
            .map(|(s, d)| d + fraction * (s - d))
            .collect();
        if computable(&point) {
            return point;
        }
    }
    start
}

/// Free coordinates (index, parameter) pinned at a bound while the likelihood rises inwards.
fn stuck_at_bounds(objective: &Objective<'_>, free: &[f64]) -> Vec<(usize, crate::models::Param)> {
    let values = objective.values(free);
    let theta = objective.model.theta(&values);
    let evaluation = evaluate_with(
        objective.features,
        objective.weights,
        objective.model,
        &theta,
        objective.gradient_rows(),
    );
    let gradient = match objective.grid {
        Some(grid) if grid < evaluation.n_grid => evaluation.grid_gradient[grid],
        _ => evaluation.gradient(),
    };
    objective
        .free_params()
        .zip(free)
        .enumerate()
        .filter(|&(_, (param, &u))| {
            let slope = gradient[param.index()] / objective.scale;
            // |u| > 10: within e^-10 of the lower bound (or the logit's ends); the slope is per
            // choice.
            (u < -10.0 && slope > 1e-6) || (u > 10.0 && slope < -1e-6)
        })
        .map(|(free_index, (param, _))| (free_index, param))
        .collect()
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
