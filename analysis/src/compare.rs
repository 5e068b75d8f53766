//! Model comparison (docs/modelling.md §4.7): log-likelihood, BIC with N = observed programs,
//! likelihood-ratio tests for every nested pair, per-task log-likelihood and BIC at the global
//! fit, and profile-likelihood intervals for every parameter.

use std::collections::BTreeMap;

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::choice::{ChoiceSets, Coverage};
use crate::error::AnalysisError;
use crate::fit::{FitOptions, Interval, ModelFit, evaluation, fit, profile_intervals};
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
    let mut results = Vec::with_capacity(models.len());
    for model in models {
        let restarts = if model.k() == 0 {
            1
        } else {
            options.fit.random_starts + 1
        };
        progress(Progress::FitStarted {
            model: model.name,
            restarts,
        });
        let mut fitted = fit(features, &weights, model, &options.fit, &|| {
            progress(Progress::RestartDone)
        })?;
        let fit_seconds = fitted.seconds;
        let began = std::time::Instant::now();
        let intervals = if options.intervals && model.k() > 0 {
            progress(Progress::ProfileStarted { model: model.name });
            profile_intervals(features, &weights, &mut fitted, &options.fit)
        } else {
            Vec::new()
        };
        let profile_seconds = began.elapsed().as_secs_f64();
        progress(Progress::ModelDone { model: model.name });
        results.push(model_result(
            fitted,
            &intervals,
            n,
            fit_seconds,
            profile_seconds,
        ));
    }
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
            let p = ChiSquared::new(df as f64).map_or(f64::NAN, |d| d.sf(chi2));
            tests.push(Lrt {
                null_model: small.name.clone(),
                model: large.name.clone(),
                chi2,
                df,
                p,
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
