//! The program-level softmax likelihood and the cross-validation of the neural models.
//!
//! [`choice_log_likelihood`] is the likelihood of docs/modelling.md §4.4 with one score per program
//! instead of one per key: Σ_t Σ_chosen n · [s(p) − log Σ_{q ∈ U_t} exp s(q)]. With symbolic scores
//! it gives the keyed likelihood of [`crate::models::likelihood`] (a test checks this), so neural
//! and symbolic log-likelihoods compare directly.
//!
//! The neural scores are linear in their parameters (s = β · log P_model − β_step · S), so the
//! log-likelihood is concave in them and a projected Newton iteration fits them exactly.
//!
//! Cross-validation uses [`crate::cv::folds`], the symbolic models' folds: in each fold a fresh
//! network is trained on the training participants' programs only, every program of every U_t is
//! scored, β (and β_step) are fitted on the training participants' choices and the held-out
//! participants' choices are scored at those values.

use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use dsl::Task;

use crate::cv::{CvModel, folds};
use crate::enumerate::candidates;
use crate::models::LOWER_BOUND;
use crate::neural::choice::{ProgramChoiceSets, TaskPrograms};
use crate::neural::score::{log_probs, score_stream};
use crate::neural::train::{Example, NeuralLm, TaskTable, TrainConfig, TrainProgress, train};
use crate::neural::transformer::TransformerConfig;
use crate::neural::{NeuralError, NeuralModel};

/// `Σ_t Σ_(k, n) n · [scores_t[k] − log Σ_j exp scores_t[j]]`: the log-likelihood of the choices
/// `chosen[t]` = (program index, count) under per-program scores.
pub fn choice_log_likelihood(scores: &[Vec<f64>], chosen: &[Vec<(usize, f64)>]) -> f64 {
    scores
        .iter()
        .zip(chosen)
        .filter(|(s, c)| !s.is_empty() && !c.is_empty())
        .map(|(s, c)| {
            let log_z = log_sum_exp(s);
            c.iter().map(|&(k, n)| n * (s[k] - log_z)).sum::<f64>()
        })
        .sum()
}

fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|&v| (v - max).exp()).sum::<f64>().ln()
}

/// The choices of the participants accepted by `keep`, per task, counted by program index.
pub fn chosen(tasks: &[TaskPrograms], keep: impl Fn(u32) -> bool) -> Vec<Vec<(usize, f64)>> {
    tasks
        .iter()
        .map(|task| {
            let mut counts: Vec<(usize, f64)> = Vec::new();
            for &(_, index) in task.observations.iter().filter(|(p, _)| keep(*p)) {
                match counts.iter_mut().find(|(k, _)| *k == index) {
                    Some((_, n)) => *n += 1.0,
                    None => counts.push((index, 1.0)),
                }
            }
            counts
        })
        .collect()
}

/// Per-program features of a model whose score is θ · x: x = (log P) or (log P, −S).
fn features(model: &NeuralModel, tasks: &[TaskPrograms], log_p: &[Vec<f64>]) -> Vec<Vec<Vec<f64>>> {
    tasks
        .iter()
        .zip(log_p)
        .map(|(task, lp)| {
            lp.iter()
                .zip(&task.keys)
                .map(|(&l, key)| {
                    if model.step {
                        vec![l, -f64::from(key.s)]
                    } else {
                        vec![l]
                    }
                })
                .collect()
        })
        .collect()
}

/// Log-likelihood, gradient and Hessian of θ for a linear-in-parameters choice model.
fn linear_evaluate(
    x: &[Vec<Vec<f64>>],
    chosen: &[Vec<(usize, f64)>],
    theta: &[f64],
) -> (f64, Vec<f64>, Vec<Vec<f64>>) {
    let k = theta.len();
    let mut ll = 0.0;
    let mut gradient = vec![0.0; k];
    let mut hessian = vec![vec![0.0; k]; k];
    for (programs, choices) in x.iter().zip(chosen) {
        let n: f64 = choices.iter().map(|&(_, c)| c).sum();
        if n == 0.0 || programs.is_empty() {
            continue;
        }
        let scores: Vec<f64> = programs
            .iter()
            .map(|f| f.iter().zip(theta).map(|(a, b)| a * b).sum())
            .collect();
        let log_z = log_sum_exp(&scores);
        let mut mean = vec![0.0; k];
        let mut second = vec![vec![0.0; k]; k];
        for (f, &s) in programs.iter().zip(&scores) {
            let p = (s - log_z).exp();
            for i in 0..k {
                mean[i] += p * f[i];
                for j in 0..k {
                    second[i][j] += p * f[i] * f[j];
                }
            }
        }
        for &(index, count) in choices {
            ll += count * (scores[index] - log_z);
            for i in 0..k {
                gradient[i] += count * programs[index][i];
            }
        }
        for i in 0..k {
            gradient[i] -= n * mean[i];
            for j in 0..k {
                hessian[i][j] -= n * (second[i][j] - mean[i] * mean[j]);
            }
        }
    }
    (ll, gradient, hessian)
}

/// Maximises the concave log-likelihood over θ ≥ `LOWER_BOUND` from θ = 1: Newton steps over
/// the coordinates not held at their bound (a coordinate at the bound whose gradient points
/// outward stays there), with step halving, and a gradient step where Newton makes no progress.
fn fit_linear(x: &[Vec<Vec<f64>>], chosen: &[Vec<(usize, f64)>], k: usize) -> (Vec<f64>, f64) {
    let mut theta = vec![1.0; k];
    let (mut ll, mut gradient, mut hessian) = linear_evaluate(x, chosen, &theta);
    for _ in 0..500 {
        let free: Vec<usize> = (0..k)
            .filter(|&i| !(theta[i] <= LOWER_BOUND * (1.0 + 1e-9) && gradient[i] < 0.0))
            .collect();
        if free.is_empty() {
            break;
        }
        let g: Vec<f64> = free.iter().map(|&i| gradient[i]).collect();
        let h: Vec<Vec<f64>> = free
            .iter()
            .map(|&i| free.iter().map(|&j| hessian[i][j]).collect())
            .collect();
        let mut improved = None;
        for reduced in [newton_direction(&g, &h), g.clone()] {
            let mut direction = vec![0.0; k];
            for (&i, &d) in free.iter().zip(&reduced) {
                direction[i] = d;
            }
            let mut step = 1.0;
            for _ in 0..60 {
                let candidate: Vec<f64> = theta
                    .iter()
                    .zip(&direction)
                    .map(|(t, d)| (t + step * d).max(LOWER_BOUND))
                    .collect();
                let evaluation = linear_evaluate(x, chosen, &candidate);
                if evaluation.0 > ll {
                    improved = Some((candidate, evaluation));
                    break;
                }
                step *= 0.5;
            }
            if improved.is_some() {
                break;
            }
        }
        let Some((candidate, (new_ll, new_gradient, new_hessian))) = improved else {
            break;
        };
        let gain = new_ll - ll;
        theta = candidate;
        (ll, gradient, hessian) = (new_ll, new_gradient, new_hessian);
        if gain < 1e-11 {
            break;
        }
    }
    (theta, ll)
}

/// −H⁻¹ g for the 1- or 2-dimensional problems here, or the gradient itself where the Hessian is
/// not negative definite.
fn newton_direction(gradient: &[f64], hessian: &[Vec<f64>]) -> Vec<f64> {
    match gradient.len() {
        1 if hessian[0][0] < -1e-12 => vec![-gradient[0] / hessian[0][0]],
        2 => {
            let (a, b, c, d) = (hessian[0][0], hessian[0][1], hessian[1][0], hessian[1][1]);
            let det = a * d - b * c;
            if a < -1e-12 && det > 1e-12 {
                vec![
                    -(d * gradient[0] - b * gradient[1]) / det,
                    -(-c * gradient[0] + a * gradient[1]) / det,
                ]
            } else {
                gradient.to_vec()
            }
        }
        _ => gradient.to_vec(),
    }
}

/// Settings of a neural cross-validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuralCvOptions {
    pub folds: usize,
    /// Seed of the folds (the symbolic cross-validation's seed, so the folds are the same).
    pub seed: u64,
    pub model: TransformerConfig,
    pub train: TrainConfig,
    /// Programs per scoring batch.
    pub batch_size: usize,
}

/// One program a network is trained on: an observation of a participant outside the held-out
/// fold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TrainingProgram {
    pub participant: u32,
    /// Task index.
    pub task: usize,
    /// Compact form of the program.
    pub program: String,
}

/// Progress of a neural cross-validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NeuralCvProgress<'a> {
    /// Training of fold `fold` starts on exactly these programs, so that a caller can check
    /// (or log) what the network sees.
    Training {
        fold: usize,
        programs: &'a [TrainingProgram],
    },
    /// A training event of the current fold.
    Train(TrainProgress),
    /// Scoring of fold `fold` starts: this many programs.
    Scoring { fold: usize, programs: usize },
    /// `done` programs of the current fold scored.
    Scored { done: usize },
}

/// One neural model's fitted choice parameters in one fold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldFit {
    pub model: String,
    pub fold: usize,
    /// In [`NeuralModel::param_names`] order.
    pub params: Vec<f64>,
    pub train_log_likelihood: f64,
    pub held_out_log_likelihood: f64,
}

/// The outcome of a neural cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuralCvResult {
    /// In the same form as the symbolic models' rows.
    pub models: Vec<CvModel>,
    pub fits: Vec<FoldFit>,
    pub train_programs: usize,
    pub train_seconds: f64,
    /// Training throughput: programs per second (forward and backward, all folds).
    pub train_programs_per_second: f64,
    pub scored_programs: usize,
    pub score_seconds: f64,
    /// Scoring throughput: candidates per second.
    pub candidates_per_second: f64,
    pub parameters: usize,
}

/// Scores every program of every task's U_t with `lm`: log P(program | task).
pub fn score_choice_sets(
    lm: &NeuralLm,
    table: &TaskTable,
    tasks: &[&Task],
    sets: &ProgramChoiceSets,
    batch_size: usize,
    progress: &dyn Fn(usize),
) -> Result<Vec<Vec<f64>>, NeuralError> {
    let vocab = lm.config().vocab;
    let mut done = 0usize;
    let mut out = Vec::with_capacity(sets.tasks.len());
    for (index, programs) in sets.tasks.iter().enumerate() {
        let mut scores = Vec::with_capacity(programs.len());
        if programs.observations.is_empty() {
            out.push(scores);
            continue;
        }
        if programs.streamed {
            let stream = candidates(tasks[index])?.map(|(program, _)| (program, ()));
            score_stream(lm, table, index, stream, batch_size, &mut |_, (), score| {
                scores.push(score);
                done += 1;
                if done.is_multiple_of(10_000) {
                    progress(done);
                }
            })?;
        }
        let listed: Vec<Example> = programs
            .listed
            .iter()
            .map(|p| Example::new(&vocab, index, p))
            .collect::<Result<_, _>>()?;
        scores.extend(log_probs(lm, table, &listed, batch_size)?);
        done += listed.len();
        progress(done);
        if scores.len() != programs.len() {
            return Err(NeuralError::Invalid(format!(
                "task {}: scored {} programs of {}",
                programs.label,
                scores.len(),
                programs.len()
            )));
        }
        out.push(scores);
    }
    Ok(out)
}

/// Cross-validates `models` on `sets` with the symbolic models' participant folds.
pub fn cross_validate(
    sets: &ProgramChoiceSets,
    tasks: &[&Task],
    models: &[NeuralModel],
    options: &NeuralCvOptions,
    device: &Device,
    progress: &dyn Fn(NeuralCvProgress<'_>),
) -> Result<NeuralCvResult, NeuralError> {
    let folds = folds(
        &sets.choice_sets.participants(),
        options.folds,
        options.seed,
    )?;
    let table = TaskTable::new(tasks);
    let vocab = options.model.vocab;
    let n_observations = sets.choice_sets.n_observations().max(1);
    let mut per_fold: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let mut fits = Vec::new();
    let (mut train_seconds, mut train_programs, mut trained_passes) = (0.0, 0, 0usize);
    let (mut score_seconds, mut scored) = (0.0, 0);
    let mut parameters = 0;
    for (fold_index, fold) in folds.iter().enumerate() {
        let held_out = |p: u32| fold.binary_search(&p).is_ok();
        let programs = training_programs(sets, |p| !held_out(p));
        let examples: Vec<Example> = programs
            .iter()
            .map(|p| Example::new(&vocab, p.task, &parse_observed(&p.program, vocab.slots)?))
            .collect::<Result<_, _>>()?;
        progress(NeuralCvProgress::Training {
            fold: fold_index,
            programs: &programs,
        });
        let mut lm = NeuralLm::new(options.model, device, options.train.seed)?;
        parameters = lm.n_parameters();
        let report = train(&mut lm, &table, &examples, &options.train, &|event| {
            progress(NeuralCvProgress::Train(event))
        })?;
        train_seconds += report.seconds;
        train_programs += examples.len();
        trained_passes += examples.len() * options.train.epochs;
        let total: usize = sets
            .tasks
            .iter()
            .filter(|t| !t.observations.is_empty())
            .map(TaskPrograms::len)
            .sum();
        progress(NeuralCvProgress::Scoring {
            fold: fold_index,
            programs: total,
        });
        let began = Instant::now();
        let log_p = score_choice_sets(&lm, &table, tasks, sets, options.batch_size, &|done| {
            progress(NeuralCvProgress::Scored { done })
        })?;
        score_seconds += began.elapsed().as_secs_f64();
        scored += total;
        let train_choices = chosen(&sets.tasks, |p| !held_out(p));
        let test_choices = chosen(&sets.tasks, held_out);
        for (m, model) in models.iter().enumerate() {
            let x = features(model, &sets.tasks, &log_p);
            let (theta, train_ll) = fit_linear(&x, &train_choices, model.k());
            let (test_ll, _, _) = linear_evaluate(&x, &test_choices, &theta);
            per_fold[m].push(test_ll);
            fits.push(FoldFit {
                model: model.name.to_owned(),
                fold: fold_index,
                params: theta,
                train_log_likelihood: train_ll,
                held_out_log_likelihood: test_ll,
            });
        }
    }
    let models = models
        .iter()
        .zip(per_fold)
        .map(|(model, per_fold)| {
            let total: f64 = per_fold.iter().sum();
            CvModel {
                name: model.name.to_owned(),
                held_out_log_likelihood: total,
                per_observation: total / n_observations as f64,
                per_fold,
            }
        })
        .collect();
    Ok(NeuralCvResult {
        models,
        fits,
        train_programs,
        train_seconds,
        train_programs_per_second: trained_passes as f64 / train_seconds.max(1e-9),
        scored_programs: scored,
        score_seconds,
        candidates_per_second: scored as f64 / score_seconds.max(1e-9),
        parameters,
    })
}

/// The observations of the participants accepted by `keep`, in task order.
fn training_programs(sets: &ProgramChoiceSets, keep: impl Fn(u32) -> bool) -> Vec<TrainingProgram> {
    sets.choice_sets
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(task, set)| {
            set.observations
                .iter()
                .filter(|o| keep(o.participant))
                .map(move |o| TrainingProgram {
                    participant: o.participant,
                    task,
                    program: o.program.clone(),
                })
        })
        .collect()
}

/// An observation's program from its compact text.
fn parse_observed(text: &str, slots: usize) -> Result<dsl::Program, NeuralError> {
    let limits = dsl::Limits {
        subroutines: slots,
        ..dsl::Limits::default()
    };
    dsl::compact::parse(text, &limits)
        .map(|p| p.with_slots(slots))
        .map_err(|e| NeuralError::Invalid(format!("observation `{text}` does not parse: {e}")))
}
