//! Profile-likelihood intervals: for each parameter, the range over which the log-likelihood
//! maximised over the other parameters stays within [`PROFILE_DROP`] of the best.

use rayon::prelude::*;
use serde::Serialize;

use crate::fit::objective::Objective;
use crate::fit::optimiser::maximise;
use crate::fit::{FitOptions, ModelFit};
use crate::models::likelihood::{Features, Weights};
use crate::models::{Model, P_END_GRID, ParamKind, U_LIMIT};

/// Half the 95% quantile of χ²(1): the log-likelihood drop that bounds a profile interval.
pub const PROFILE_DROP: f64 = 1.920_729_410_347_062;

/// A profile-likelihood interval. An end that the profile does not cross within the parameter's
/// range is the bound (infinite for an unbounded β).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
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
