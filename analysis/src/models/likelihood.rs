//! The softmax likelihood over choice sets (docs/modelling.md §4.4), with its gradient.
//!
//! P(p | t) = exp s(p) / Σ_{q ∈ U_t} exp s(q). U_t is a histogram over keys, so the normaliser is
//! a log-sum-exp over distinct keys with ln(multiplicity) added. For models with the
//! grammar-induction prior the total log-likelihood is computed for each p_end of the grid and
//! averaged on the probability scale (a log-mean-exp over the whole data, docs/modelling.md §4.5).

use crate::choice::{ChoiceSets, Observation};
use crate::key::MAX_SLOTS;
use crate::models::gi::{GiTables, ln_factorial_sizes};
use crate::models::likelihood::groups::{KeyScore, LengthGroups, key_score};
use crate::models::{Model, N_PARAMS, P_END_GRID, Param, Theta};

#[path = "likelihood_groups.rs"]
mod groups;

const N_GRID: usize = P_END_GRID.len();

/// Per-key quantities the scores need, precomputed once per choice set.
#[derive(Debug, Clone)]
struct KeyFeatures {
    ln_multiplicity: f64,
    p: f64,
    n: f64,
    t: f64,
    s: f64,
    r: f64,
    n_calls: usize,
    k: usize,
    ln_factorial_sizes: f64,
    calls: [u16; MAX_SLOTS],
}

/// The choice sets in the form the likelihood evaluates quickly.
#[derive(Debug, Clone)]
pub struct Features {
    tasks: Vec<Vec<KeyFeatures>>,
    max_n: usize,
    max_k: usize,
    max_c: usize,
    /// The library model's view of the same fit, when it is to be fitted.
    library: Option<std::sync::Arc<crate::models::library::LibraryFeatures>>,
}

impl Features {
    pub fn new(choice_sets: &ChoiceSets) -> Features {
        let (mut max_n, mut max_k, mut max_c) = (0, 0, 0);
        let tasks = choice_sets
            .tasks
            .iter()
            .map(|task| {
                task.keys
                    .iter()
                    .zip(&task.multiplicity)
                    .map(|(key, &m)| {
                        max_n = max_n.max(key.n as usize);
                        max_k = max_k.max(key.k() as usize);
                        max_c = max_c.max(key.calls[0] as usize);
                        KeyFeatures {
                            ln_multiplicity: (m as f64).ln(),
                            p: f64::from(key.p),
                            n: f64::from(key.n),
                            t: f64::from(key.t()),
                            s: f64::from(key.s),
                            r: f64::from(key.r),
                            n_calls: key.n as usize,
                            k: key.k() as usize,
                            ln_factorial_sizes: ln_factorial_sizes(key),
                            calls: key.calls,
                        }
                    })
                    .collect()
            })
            .collect();
        Features {
            tasks,
            max_n,
            max_k,
            max_c,
            library: None,
        }
    }

    /// The same features with the library model's view of the fit attached, so that `lib+step`
    /// can be evaluated (its likelihood depends on who wrote what, which keys do not carry).
    pub fn with_library(mut self, library: crate::models::library::LibraryFeatures) -> Features {
        self.library = Some(std::sync::Arc::new(library));
        self
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Distinct keys in task `task`'s choice set.
    pub fn n_keys(&self, task: usize) -> usize {
        self.tasks[task].len()
    }
}

/// How often each key was chosen, per task: the data a likelihood is evaluated on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Weights {
    /// Per task: (key index, number of choices), one entry per chosen key.
    pub tasks: Vec<Vec<(usize, f64)>>,
}

impl Weights {
    /// The observations accepted by `keep`, counted by key.
    pub fn from_observations(
        choice_sets: &ChoiceSets,
        keep: impl Fn(&Observation) -> bool,
    ) -> Weights {
        let tasks = choice_sets
            .tasks
            .iter()
            .map(|task| {
                let mut counts = vec![0.0; task.keys.len()];
                for obs in task.observations.iter().filter(|o| keep(o)) {
                    counts[obs.key] += 1.0;
                }
                counts
                    .into_iter()
                    .enumerate()
                    .filter(|&(_, c)| c > 0.0)
                    .collect()
            })
            .collect();
        Weights { tasks }
    }

    /// All observations.
    pub fn all(choice_sets: &ChoiceSets) -> Weights {
        Weights::from_observations(choice_sets, |_| true)
    }

    /// Number of choices in task `task`.
    pub fn task_total(&self, task: usize) -> f64 {
        self.tasks
            .get(task)
            .map_or(0.0, |t| t.iter().map(|&(_, c)| c).sum())
    }

    /// Number of choices over all tasks.
    pub fn total(&self) -> f64 {
        (0..self.tasks.len()).map(|t| self.task_total(t)).sum()
    }
}

/// The log-likelihood of a model at one parameter vector, with its parts.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// How many p_end values were evaluated: 9, or 1 for models that do not use p_end.
    pub n_grid: usize,
    /// Per task and p_end: Σ_p n_t(p) log P(p | t).
    pub task_grid: Vec<[f64; N_GRID]>,
    /// Per p_end: gradient of the total over tasks, by [`Param::index`] (zero when not asked).
    pub grid_gradient: [[f64; N_PARAMS]; N_GRID],
}

impl Evaluation {
    /// The log-likelihood of all tasks, p_end averaged over the whole data.
    pub fn log_likelihood(&self) -> f64 {
        log_mean_exp(&self.totals()[..self.n_grid])
    }

    /// The log-likelihood of all tasks at one p_end (grid index), not averaged.
    pub fn grid_log_likelihood(&self, grid: usize) -> f64 {
        self.totals()[grid.min(self.n_grid - 1)]
    }

    /// The log-likelihood of one task, p_end averaged within the task.
    pub fn task_log_likelihood(&self, task: usize) -> f64 {
        log_mean_exp(&self.task_grid[task][..self.n_grid])
    }

    /// Gradient of [`Evaluation::log_likelihood`] with respect to every parameter.
    pub fn gradient(&self) -> [f64; N_PARAMS] {
        let totals = self.totals();
        let max = totals[..self.n_grid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = totals[..self.n_grid]
            .iter()
            .map(|&l| (l - max).exp())
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut gradient = [0.0; N_PARAMS];
        for (e, weight) in weights.iter().enumerate() {
            for (g, &ge) in gradient.iter_mut().zip(&self.grid_gradient[e]) {
                *g += weight / sum * ge;
            }
        }
        gradient
    }

    /// Per p_end: the log-likelihood of all tasks.
    pub fn totals(&self) -> [f64; N_GRID] {
        let mut totals = [0.0; N_GRID];
        for task in &self.task_grid {
            for (total, value) in totals.iter_mut().zip(task) {
                *total += value;
            }
        }
        totals
    }
}

/// ln(e^a + e^b).
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    let max = a.max(b);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + ((a - max).exp() + (b - max).exp()).ln()
}

/// log Σ exp(x_i), with the largest term factored out.
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|&v| (v - max).exp()).sum::<f64>().ln()
}

/// log((1/m) Σ exp(x_i)).
pub fn log_mean_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = values.iter().map(|&v| (v - max).exp()).sum();
    max + (sum / values.len() as f64).ln()
}

/// Which rows of [`Evaluation::grid_gradient`] an evaluation fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientRows {
    /// None: the log-likelihood only.
    None,
    /// Every p_end of the grid.
    EveryGrid,
    /// What [`Evaluation::gradient`] needs: the p_end values whose posterior weight exp(L_e −
    /// max L) is at least 1e-20, so that the rows left at zero change the averaged gradient by
    /// less than double precision resolves. Models other than `lib+step` fill every row.
    Averaged,
    /// One p_end (grid index), for fits with p_end fixed.
    Grid(usize),
}

impl GradientRows {
    /// The grid indices to fill, given the log-likelihood of all tasks at each p_end.
    pub fn rows(self, totals: &[f64; N_GRID]) -> Vec<usize> {
        match self {
            GradientRows::None => Vec::new(),
            GradientRows::EveryGrid => (0..N_GRID).collect(),
            GradientRows::Grid(grid) => vec![grid.min(N_GRID - 1)],
            GradientRows::Averaged => {
                let max = totals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if !max.is_finite() {
                    return (0..N_GRID).collect();
                }
                (0..N_GRID).filter(|&e| totals[e] - max >= -46.0).collect()
            }
        }
    }
}

/// Evaluates `model` at `theta` on the choices `weights`; the gradient at every p_end only if
/// `with_gradient`.
pub fn evaluate(
    features: &Features,
    weights: &Weights,
    model: &Model,
    theta: &Theta,
    with_gradient: bool,
) -> Evaluation {
    let gradient = if with_gradient {
        GradientRows::EveryGrid
    } else {
        GradientRows::None
    };
    evaluate_with(features, weights, model, theta, gradient)
}

/// Evaluates `model` at `theta` on the choices `weights`, with the gradient rows `gradient` asks
/// for.
///
/// Each task's keys are summed once by routine-length group, and the normaliser of every p_end
/// is a log-sum-exp over the groups (`likelihood_groups.rs`).
pub fn evaluate_with(
    features: &Features,
    weights: &Weights,
    model: &Model,
    theta: &Theta,
    gradient: GradientRows,
) -> Evaluation {
    if model.uses_library() {
        let library = features.library.as_deref();
        return crate::models::library::evaluate(library, weights, theta, gradient);
    }
    let with_gradient = gradient != GradientRows::None;
    let uses_gi = model.uses_gi();
    let n_grid = if uses_gi { N_GRID } else { 1 };
    let beta_mdl = theta.get(Param::BetaMdl);
    let beta_step = theta.get(Param::BetaStep);
    let beta_gi = if uses_gi {
        theta.get(Param::BetaGi)
    } else {
        0.0
    };
    let discount = if model.uses_discount() {
        theta.get(Param::Discount)
    } else {
        0.0
    };
    let tables = uses_gi.then(|| {
        GiTables::new(
            theta.get(Param::Alpha),
            discount,
            theta.get(Param::PCall),
            features.max_n,
            features.max_k,
            features.max_c,
            model.uses_discount(),
        )
    });
    let grid_logs: [(f64, f64); N_GRID] = P_END_GRID.map(|q| ((1.0 - q).ln(), q.ln()));
    let betas = (beta_mdl, beta_step, beta_gi);

    let mut evaluation = Evaluation {
        n_grid,
        task_grid: vec![[0.0; N_GRID]; features.tasks.len()],
        grid_gradient: [[0.0; N_PARAMS]; N_GRID],
    };
    let mut scores: Vec<KeyScore> = Vec::new();
    let mut groups = LengthGroups::default();
    for (t, (keys, chosen)) in features.tasks.iter().zip(&weights.tasks).enumerate() {
        let n_t: f64 = chosen.iter().map(|&(_, c)| c).sum();
        if n_t == 0.0 || keys.is_empty() {
            continue;
        }
        scores.clear();
        scores.extend(
            keys.iter()
                .map(|key| key_score(key, model, tables.as_ref(), betas, with_gradient)),
        );
        groups.fill(keys, &scores, uses_gi, with_gradient);
        for (e, &(ln_continue, ln_end)) in grid_logs.iter().enumerate().take(n_grid) {
            let normaliser = groups.normaliser(
                (ln_continue, ln_end),
                uses_gi.then_some(beta_gi),
                with_gradient,
            );
            let mut chosen_sum = 0.0;
            let mut chosen_gradient = [0.0; N_PARAMS];
            for &(k, count) in chosen {
                let (key, score) = (&keys[k], &scores[k]);
                let length = if uses_gi {
                    length_term(key, ln_continue, ln_end)
                } else {
                    0.0
                };
                chosen_sum += count * (score.base + beta_gi * length);
                if with_gradient {
                    let log_prior = uses_gi.then_some(score.gi + length);
                    add_score_gradient(&mut chosen_gradient, count, key, score, beta_gi, log_prior);
                }
            }
            evaluation.task_grid[t][e] = chosen_sum - n_t * normaliser.log_z;
            if with_gradient {
                let gradient = &mut evaluation.grid_gradient[e];
                for ((g, chosen), expected) in gradient
                    .iter_mut()
                    .zip(chosen_gradient)
                    .zip(normaliser.expected)
                {
                    *g += chosen - n_t * expected;
                }
            }
        }
        for e in n_grid..N_GRID {
            evaluation.task_grid[t][e] = evaluation.task_grid[t][0];
        }
    }
    evaluation
}

/// The routine-length term of log P_GI: (T - R) ln(1 - p_end) + R ln p_end.
#[inline]
fn length_term(key: &KeyFeatures, ln_continue: f64, ln_end: f64) -> f64 {
    (key.t - key.r) * ln_continue + key.r * ln_end
}

/// Adds `weight` × ∂s/∂θ of one key to `into`; `log_prior` is the key's log P_GI at the current
/// p_end, for models that use it.
#[inline]
fn add_score_gradient(
    into: &mut [f64; N_PARAMS],
    weight: f64,
    key: &KeyFeatures,
    score: &KeyScore,
    beta_gi: f64,
    log_prior: Option<f64>,
) {
    into[Param::BetaMdl.index()] -= weight * key.t;
    into[Param::BetaStep.index()] -= weight * key.s;
    if let Some(log_prior) = log_prior {
        into[Param::BetaGi.index()] += weight * log_prior;
        for param in [Param::Alpha, Param::PCall, Param::Discount] {
            into[param.index()] += weight * beta_gi * score.d_gi[param.index()];
        }
    }
}

/// The choice probabilities of every key of task `task` at one p_end grid index (for
/// simulation): P(key) = multiplicity × exp(s) / Z.
pub fn key_probabilities(
    features: &Features,
    task: usize,
    theta: &Theta,
    model: &Model,
    grid_index: usize,
) -> Vec<f64> {
    let p_end = P_END_GRID[grid_index.min(N_GRID - 1)];
    let keys = &features.tasks[task];
    let mut theta = *theta;
    for param in crate::models::Param::ALL {
        if !model.params.contains(&param) {
            theta.values[param.index()] = param.neutral();
        }
    }
    let logits: Vec<f64> = keys
        .iter()
        .map(|key| {
            let stat = crate::key::StatKey {
                p: key.p as u16,
                n: key.n as u16,
                calls: key.calls,
                r: key.r as u8,
                s: key.s as u16,
            };
            key.ln_multiplicity + theta.score(&stat, p_end)
        })
        .collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut probabilities: Vec<f64> = logits.iter().map(|&l| (l - max).exp()).collect();
    let z: f64 = probabilities.iter().sum();
    probabilities.iter_mut().for_each(|p| *p /= z);
    probabilities
}

/// Simulates choices from `model` at `theta`: one p_end drawn uniformly from the grid for the
/// whole data set (the generative reading of averaging the whole-data likelihood over p_end),
/// then `choices[t]` programs per task drawn from the softmax. Returns the choices counted by key.
pub fn simulate(
    features: &Features,
    model: &Model,
    theta: &Theta,
    choices: &[usize],
    rng: &mut impl rand::Rng,
) -> Weights {
    let grid_index = if model.uses_gi() {
        rng.random_range(0..N_GRID)
    } else {
        0
    };
    let tasks = (0..features.n_tasks())
        .map(|t| {
            let n = choices.get(t).copied().unwrap_or(0);
            if n == 0 || features.n_keys(t) == 0 {
                return Vec::new();
            }
            let probabilities = key_probabilities(features, t, theta, model, grid_index);
            let mut cumulative = Vec::with_capacity(probabilities.len());
            let mut total = 0.0;
            for p in &probabilities {
                total += p;
                cumulative.push(total);
            }
            let mut counts = vec![0.0; probabilities.len()];
            for _ in 0..n {
                let draw: f64 = rng.random::<f64>() * total;
                let k = cumulative
                    .partition_point(|&c| c <= draw)
                    .min(counts.len() - 1);
                counts[k] += 1.0;
            }
            counts
                .into_iter()
                .enumerate()
                .filter(|&(_, c)| c > 0.0)
                .collect()
        })
        .collect();
    Weights { tasks }
}
