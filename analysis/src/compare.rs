//! Model comparison (docs/modelling.md §4.7): log-likelihood, BIC with N = observed programs,
//! likelihood-ratio tests for every nested pair, per-task log-likelihood and BIC at the global
//! fit, and profile-likelihood intervals for every parameter.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::choice::{ChoiceSets, Coverage};
use crate::error::AnalysisError;
use crate::fit::{FitOptions, Interval, ModelFit, evaluation, fit, n_starts, profile_intervals};
use crate::models::Model;
use crate::models::likelihood::{Features, Weights};

/// What a comparison computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    pub fit: FitOptions,
    /// Compute profile-likelihood intervals.
    pub intervals: bool,
}

impl Default for CompareOptions {
    fn default() -> CompareOptions {
        CompareOptions {
            fit: FitOptions::default(),
            intervals: true,
        }
    }
}

/// One fitted model in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    pub name: String,
    pub log_likelihood: f64,
    pub bic: f64,
    pub k: usize,
    /// Fitted values by parameter name.
    pub params: BTreeMap<String, f64>,
    /// Profile-likelihood 95% intervals by parameter name (empty when not computed).
    pub intervals: BTreeMap<String, Interval>,
    pub restarts: usize,
    pub restarts_at_best: usize,
    /// Seconds spent fitting and profiling.
    pub fit_seconds: f64,
    pub profile_seconds: f64,
    #[serde(skip)]
    pub fit: ModelFit,
}

/// A likelihood-ratio test of `null_model` nested in `model`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lrt {
    pub null_model: String,
    pub model: String,
    /// 2 (LL_model − LL_null), floored at 0.
    pub chi2: f64,
    pub df: usize,
    pub p: f64,
    /// The reference distribution of `p`: χ²(df), or a boundary mixture when the nested model
    /// sits at library weights of 0 (docs/modelling.md §4.7).
    pub reference: String,
}

/// One model on one task, at the global fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskModelResult {
    pub name: String,
    /// p_end averaged within the task.
    pub log_likelihood: f64,
    /// k ln n_t − 2 LL_t.
    pub bic: f64,
}

/// All models on one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    pub task: String,
    pub n_observations: usize,
    pub models: Vec<TaskModelResult>,
}

/// The outcome of comparing models on one data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub n_observations: usize,
    pub n_participants: usize,
    pub models: Vec<ModelResult>,
    pub lrt: Vec<Lrt>,
    pub per_task: Vec<TaskResult>,
    pub coverage: Vec<Coverage>,
}

/// Progress of a comparison, for a front end to display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// Fitting `model` starts, with this many restarts.
    FitStarted { model: &'a str, restarts: usize },
    /// One restart of the current model finished.
    RestartDone,
    /// Profiling the fitted `model` starts.
    ProfileStarted { model: &'a str },
    /// The model is done.
    ModelDone { model: &'a str },
}

/// BIC = k ln N − 2 LL.
pub fn bic(k: usize, n: usize, log_likelihood: f64) -> f64 {
    k as f64 * (n as f64).ln() - 2.0 * log_likelihood
}

/// Fits every model in `models` to all observations of `choice_sets` and compares them.
///
/// The models are fitted (and profiled) in parallel; their progress events are passed on in the
/// order of a sequential run, one model after the other (see `OrderedProgress`).
pub fn compare(
    choice_sets: &ChoiceSets,
    features: &Features,
    models: &[Model],
    options: &CompareOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Comparison, AnalysisError> {
    let weights = Weights::all(choice_sets);
    let n = choice_sets.n_observations();
    if n == 0 {
        return Err(AnalysisError::NoObservations);
    }
    let relay = OrderedProgress::new(models.len(), progress);
    let results = models
        .par_iter()
        .enumerate()
        .map(|(i, model)| {
            let restarts = n_starts(model, &options.fit);
            relay.send(
                i,
                Progress::FitStarted {
                    model: model.name,
                    restarts,
                },
            );
            let mut fitted = fit(features, &weights, model, &options.fit, &|| {
                relay.send(i, Progress::RestartDone)
            })?;
            let fit_seconds = fitted.seconds;
            let began = std::time::Instant::now();
            let intervals = if options.intervals && model.k() > 0 {
                relay.send(i, Progress::ProfileStarted { model: model.name });
                profile_intervals(features, &weights, &mut fitted, &options.fit)
            } else {
                Vec::new()
            };
            let profile_seconds = began.elapsed().as_secs_f64();
            relay.send(i, Progress::ModelDone { model: model.name });
            Ok(model_result(
                fitted,
                &intervals,
                n,
                fit_seconds,
                profile_seconds,
            ))
        })
        .collect::<Result<Vec<ModelResult>, AnalysisError>>()?;
    let per_task = per_task(choice_sets, features, &weights, &results);
    Ok(Comparison {
        n_observations: n,
        n_participants: choice_sets.participants().len(),
        lrt: likelihood_ratio_tests(&results),
        models: results,
        per_task,
        coverage: choice_sets.coverage(),
    })
}

/// Passes on the progress events of models fitted in parallel as a sequential run would send
/// them: all events of model 0 up to its [`Progress::ModelDone`], then those of model 1, and so
/// on. A later model's events wait until the models before it are done.
struct OrderedProgress<'p, 'm> {
    progress: &'p (dyn Fn(Progress<'_>) + Sync),
    /// The model whose events go out now, and every model's events not yet sent.
    state: Mutex<(usize, Vec<Vec<Progress<'m>>>)>,
}

impl<'p, 'm> OrderedProgress<'p, 'm> {
    fn new(models: usize, progress: &'p (dyn Fn(Progress<'_>) + Sync)) -> Self {
        OrderedProgress {
            progress,
            state: Mutex::new((0, vec![Vec::new(); models])),
        }
    }

    fn send(&self, model: usize, event: Progress<'m>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let (current, queues) = &mut *state;
        queues[model].push(event);
        while let Some(queue) = queues.get_mut(*current) {
            let mut done = false;
            for event in queue.drain(..) {
                done = matches!(event, Progress::ModelDone { .. });
                (self.progress)(event);
            }
            if !done {
                break;
            }
            *current += 1;
        }
    }
}

fn model_result(
    fit: ModelFit,
    intervals: &[Interval],
    n: usize,
    fit_seconds: f64,
    profile_seconds: f64,
) -> ModelResult {
    let names = fit.model.params.iter().map(|p| p.name().to_owned());
    ModelResult {
        name: fit.model.name.to_owned(),
        log_likelihood: fit.log_likelihood,
        bic: bic(fit.model.k(), n, fit.log_likelihood),
        k: fit.model.k(),
        params: names.clone().zip(fit.params.iter().copied()).collect(),
        intervals: names.zip(intervals.iter().copied()).collect(),
        restarts: fit.restarts,
        restarts_at_best: fit.restarts_at_best,
        fit_seconds,
        profile_seconds,
        fit,
    }
}

/// Likelihood-ratio tests for every pair of fitted models where one is nested in the other.
pub fn likelihood_ratio_tests(results: &[ModelResult]) -> Vec<Lrt> {
    let mut tests = Vec::new();
    for small in results {
        for large in results {
            if !small.fit.model.nested_in(&large.fit.model) {
                continue;
            }
            let df = large.k - small.k;
            let chi2 = (2.0 * (large.log_likelihood - small.log_likelihood)).max(0.0);
            let (small_model, large_model) = (&small.fit.model, &large.fit.model);
            let p = crate::models::library::lrt_p_value(small_model, large_model, chi2);
            tests.push(Lrt {
                null_model: small.name.clone(),
                model: large.name.clone(),
                chi2,
                df,
                p,
                reference: crate::models::library::lrt_reference(small_model, large_model),
            });
        }
    }
    tests
}

/// Per-task log-likelihood and BIC at each model's global fit, p_end averaged within the task.
pub fn per_task(
    choice_sets: &ChoiceSets,
    features: &Features,
    weights: &Weights,
    results: &[ModelResult],
) -> Vec<TaskResult> {
    let evaluations: Vec<_> = results
        .iter()
        .map(|r| evaluation(features, weights, &r.fit.model, &r.fit.params))
        .collect();
    choice_sets
        .tasks
        .iter()
        .enumerate()
        .map(|(t, task)| {
            let n_t = task.observations.len();
            TaskResult {
                task: task.label.clone(),
                n_observations: n_t,
                models: results
                    .iter()
                    .zip(&evaluations)
                    .map(|(result, evaluation)| {
                        let ll = if n_t == 0 {
                            0.0
                        } else {
                            evaluation.task_log_likelihood(t)
                        };
                        TaskModelResult {
                            name: result.name.clone(),
                            log_likelihood: ll,
                            bic: if n_t == 0 {
                                0.0
                            } else {
                                bic(result.k, n_t, ll)
                            },
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The difference of two models' held-out log-likelihoods per observation, paired over the
/// same observations (docs/modelling.md §4.9).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDifference {
    pub model: String,
    pub baseline: String,
    /// Observations paired.
    pub n: usize,
    /// Mean over observations of model − baseline.
    pub mean_difference: f64,
    /// Standard error of that mean: the differences' sample standard deviation over √n (NaN,
    /// written as null, with fewer than two observations). It treats observations as
    /// independent.
    pub standard_error: f64,
    /// Participants among the observations: the clusters of `clustered_standard_error`.
    pub participants: usize,
    /// Standard error of the same mean with each participant's observations as one cluster
    /// (the cluster-robust estimate with the small-sample factor G/(G − 1)), since one person's
    /// choices are not independent (NaN, written as null, with fewer than two participants).
    /// With one observation per participant it equals `standard_error`.
    pub clustered_standard_error: f64,
}

/// Mean and paired standard error of `a − b`, observation by observation (over the shorter).
pub fn paired_difference(a: &[f64], b: &[f64]) -> (usize, f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len();
    if n == 0 {
        return (0, f64::NAN, f64::NAN);
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (n, mean, f64::NAN);
    }
    let variance = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (n, mean, (variance / n as f64).sqrt())
}

/// The cluster-robust standard error of the mean of `a − b` (over the shorter), the
/// observations clustered by `clusters` (one label per observation): with G clusters and
/// S_g = Σ_(i in g) (d_i − mean), SE² = G / (G − 1) · Σ_g S_g² / n². Returns G and the SE (NaN
/// with fewer than two clusters).
pub fn clustered_standard_error(a: &[f64], b: &[f64], clusters: &[u32]) -> (usize, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len().min(clusters.len());
    if n == 0 {
        return (0, f64::NAN);
    }
    let mean = d[..n].iter().sum::<f64>() / n as f64;
    let mut sums: BTreeMap<u32, f64> = BTreeMap::new();
    for (x, &g) in d.iter().zip(clusters) {
        *sums.entry(g).or_default() += x - mean;
    }
    let g = sums.len();
    if g < 2 {
        return (g, f64::NAN);
    }
    let spread: f64 = sums.values().map(|s| s * s).sum();
    let factor = g as f64 / (g - 1) as f64;
    (g, (factor * spread).sqrt() / n as f64)
}

fn difference(
    names: &[&str],
    values: &[&[f64]],
    clusters: &[u32],
    model: usize,
    baseline: usize,
) -> PairedDifference {
    let (n, mean_difference, standard_error) = paired_difference(values[model], values[baseline]);
    let (participants, clustered_standard_error) =
        clustered_standard_error(values[model], values[baseline], clusters);
    PairedDifference {
        model: names[model].to_owned(),
        baseline: names[baseline].to_owned(),
        n,
        mean_difference,
        standard_error,
        participants,
        clustered_standard_error,
    }
}

/// Every pair of models (`names[i]` with per-observation values `values[i]`), the earlier minus
/// the later; `clusters` gives each observation's participant.
pub fn paired_differences(
    names: &[&str],
    values: &[&[f64]],
    clusters: &[u32],
) -> Vec<PairedDifference> {
    let n = names.len().min(values.len());
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            pairs.push(difference(names, values, clusters, i, j));
        }
    }
    pairs
}

/// Each model minus the best by `totals` (the highest held-out log-likelihood; the first on a
/// tie), the best against itself included; `clusters` gives each observation's participant.
pub fn versus_best(
    names: &[&str],
    values: &[&[f64]],
    totals: &[f64],
    clusters: &[u32],
) -> Vec<PairedDifference> {
    let n = names.len().min(values.len()).min(totals.len());
    let Some(best) = (0..n).max_by(|&i, &j| totals[i].total_cmp(&totals[j]).then(j.cmp(&i))) else {
        return Vec::new();
    };
    (0..n)
        .map(|i| difference(names, values, clusters, i, best))
        .collect()
}
