//! The held-out evaluation of the neural models.
//!
//! [`hold_out`] evaluates the neural models on the splits the symbolic models use
//! (docs/modelling.md §4.9): participant folds ([`crate::cv::folds`], same seed, same folds) or
//! one held-out task at a time. In each split a fresh network is trained on the training
//! observations only, every program of every U_t is scored, and the choice rule
//! (`crate::neural::choice_fit`) is fitted on the training choices in the split's sets (the
//! enumeration plus the programs training observations chose) and scores each held-out
//! observation in its task's set plus its own program.

use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use dsl::Task;

use crate::cv::{CvModel, HeldOutId};
use crate::neural::choice::{ProgramChoiceSets, TaskPrograms};
use crate::neural::choice_fit::{SplitTask, fit};
use crate::neural::score::score_choice_sets;
use crate::neural::train::{Example, NeuralLm, TaskTable, TrainConfig, TrainProgress, train};
use crate::neural::transformer::TransformerConfig;
use crate::neural::{NeuralError, NeuralModel};

/// Settings of a neural held-out evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuralCvOptions {
    pub model: TransformerConfig,
    /// Training settings; their seed seeds the initialisation, the shuffling and the dropout.
    pub train: TrainConfig,
    /// Trie nodes per transformer call when scoring candidates, and programs per batch of listed
    /// programs.
    pub batch_size: usize,
}

/// Which observations train a split; the others are held out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SplitRule {
    /// These participants (sorted) are held out, on every task.
    Participants(Vec<u32>),
    /// This task is held out, for every participant.
    Task(usize),
}

impl SplitRule {
    /// Whether the observation of `participant` on task `task` trains the split.
    pub fn training(&self, task: usize, participant: u32) -> bool {
        match self {
            SplitRule::Participants(held) => held.binary_search(&participant).is_err(),
            SplitRule::Task(held) => task != *held,
        }
    }
}

/// One program a network is trained on, or that a split's choice set holds beyond the
/// enumeration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TrainingProgram {
    pub participant: u32,
    /// Task index.
    pub task: usize,
    /// Compact form of the program.
    pub program: String,
}

/// Progress of a neural held-out evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NeuralCvProgress<'a> {
    /// Training of split `fold` starts on exactly these programs, so that a caller can check
    /// (or log) what the network sees.
    Training {
        fold: usize,
        programs: &'a [TrainingProgram],
    },
    /// A training event of the current split.
    Train(TrainProgress),
    /// Scoring of split `fold` starts: this many programs.
    Scoring { fold: usize, programs: usize },
    /// `done` programs of the current split scored.
    Scored { done: usize },
    /// Split `fold` was not evaluated again: its finished outcome was loaded from a
    /// [`SplitStore`].
    Loaded { fold: usize },
    /// The programs that split `fold`'s choice sets hold beyond the enumeration (task, compact
    /// text), which must all be training observations' programs.
    SetPrograms {
        fold: usize,
        programs: &'a [(usize, String)],
    },
}

/// One neural model's fitted choice parameters in one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldFit {
    pub model: String,
    pub fold: usize,
    /// In [`NeuralModel::param_names`] order.
    pub params: Vec<f64>,
    pub train_log_likelihood: f64,
    pub held_out_log_likelihood: f64,
}

/// The outcome of a neural held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuralCvResult {
    /// In the same form as the symbolic models' rows (`per_fold`: per split).
    pub models: Vec<CvModel>,
    /// The held-out observations, in the order of the per-observation values: split by split,
    /// task by task, in each task's observation order (the symbolic evaluations' order).
    pub observations: Vec<HeldOutId>,
    /// Per model: each held-out observation's log-likelihood.
    pub observation_log_likelihoods: Vec<Vec<f64>>,
    pub fits: Vec<FoldFit>,
    pub train_programs: usize,
    pub train_seconds: f64,
    /// Training throughput: programs per second (forward and backward, all splits).
    pub train_programs_per_second: f64,
    pub scored_programs: usize,
    pub score_seconds: f64,
    /// Scoring throughput: programs per second.
    pub candidates_per_second: f64,
    pub parameters: usize,
}

/// One split's evaluation: what [`hold_out`] keeps of it, and what a [`SplitStore`] saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitOutcome {
    /// The held-out observations, task by task.
    pub observations: Vec<HeldOutId>,
    /// Per model: each held-out observation's log-likelihood.
    pub observation_log_likelihoods: Vec<Vec<f64>>,
    /// Per model: the fitted choice rule and its training and held-out log-likelihoods.
    pub fits: Vec<FoldFit>,
    pub train_programs: usize,
    pub train_seconds: f64,
    /// Training programs times epochs.
    pub trained_passes: usize,
    pub scored_programs: usize,
    pub score_seconds: f64,
    /// The network's weights.
    pub parameters: usize,
}

/// Keeps finished splits, so that an evaluation that stops (it takes hours on a CPU) resumes
/// where it stopped instead of training and scoring again.
pub trait SplitStore: Sync {
    /// Split `fold`'s outcome, if a finished one is kept.
    fn load(&self, fold: usize, rule: &SplitRule) -> Result<Option<SplitOutcome>, NeuralError>;
    /// Keeps split `fold`'s outcome.
    fn save(
        &self,
        fold: usize,
        rule: &SplitRule,
        outcome: &SplitOutcome,
    ) -> Result<(), NeuralError>;
}

/// Evaluates `models` on each split of `splits`: trains a network on the split's training
/// observations, scores every program, fits each model's choice rule on the training choices
/// and scores the held-out ones (see the module documentation). With a `store`, a split it
/// holds is loaded instead, and each split evaluated is saved to it once finished.
#[allow(clippy::too_many_arguments)]
pub fn hold_out(
    sets: &ProgramChoiceSets,
    tasks: &[&Task],
    models: &[NeuralModel],
    splits: &[SplitRule],
    options: &NeuralCvOptions,
    device: &Device,
    store: Option<&dyn SplitStore>,
    progress: &dyn Fn(NeuralCvProgress<'_>),
) -> Result<NeuralCvResult, NeuralError> {
    let table = TaskTable::new(tasks);
    let mut outcomes = Vec::with_capacity(splits.len());
    for (fold, rule) in splits.iter().enumerate() {
        let kept = match store {
            Some(store) => store.load(fold, rule)?,
            None => None,
        };
        let outcome = match kept {
            Some(outcome) => {
                check_kept(&outcome, models, fold)?;
                progress(NeuralCvProgress::Loaded { fold });
                outcome
            }
            None => {
                let split = Split {
                    sets,
                    tasks,
                    table: &table,
                    fold,
                    rule,
                };
                let outcome = split.evaluate(models, options, device, progress)?;
                if let Some(store) = store {
                    store.save(fold, rule, &outcome)?;
                }
                outcome
            }
        };
        outcomes.push(outcome);
    }
    Ok(assemble(models, outcomes))
}

/// A kept outcome must hold the listed models, in order, for its split.
fn check_kept(
    outcome: &SplitOutcome,
    models: &[NeuralModel],
    fold: usize,
) -> Result<(), NeuralError> {
    let names: Vec<&str> = outcome.fits.iter().map(|f| f.model.as_str()).collect();
    let wanted: Vec<&str> = models.iter().map(|m| m.name).collect();
    if names != wanted
        || outcome.observation_log_likelihoods.len() != models.len()
        || outcome.fits.iter().any(|f| f.fold != fold)
        || outcome
            .observation_log_likelihoods
            .iter()
            .any(|v| v.len() != outcome.observations.len())
    {
        return Err(NeuralError::Invalid(format!(
            "the kept outcome of split {fold} holds models {names:?}, not {wanted:?}, or is incomplete"
        )));
    }
    Ok(())
}

/// One split of a held-out evaluation, with what it reads.
struct Split<'a> {
    sets: &'a ProgramChoiceSets,
    tasks: &'a [&'a Task],
    table: &'a TaskTable,
    fold: usize,
    rule: &'a SplitRule,
}

impl Split<'_> {
    fn evaluate(
        &self,
        models: &[NeuralModel],
        options: &NeuralCvOptions,
        device: &Device,
        progress: &dyn Fn(NeuralCvProgress<'_>),
    ) -> Result<SplitOutcome, NeuralError> {
        let Split {
            sets,
            tasks,
            table,
            fold,
            rule,
        } = *self;
        let vocab = options.model.vocab;
        let programs = training_programs(sets, rule);
        let examples: Vec<Example> = programs
            .iter()
            .map(|p| Example::new(&vocab, p.task, &parse_observed(&p.program, vocab.slots)?))
            .collect::<Result<_, _>>()?;
        progress(NeuralCvProgress::Training {
            fold,
            programs: &programs,
        });
        let mut lm = NeuralLm::new(options.model, device, options.train.seed)?;
        let report = train(&mut lm, table, &examples, &options.train, &|event| {
            progress(NeuralCvProgress::Train(event))
        })?;
        let total: usize = sets
            .tasks
            .iter()
            .filter(|t| !t.observations.is_empty())
            .map(TaskPrograms::len)
            .sum();
        progress(NeuralCvProgress::Scoring {
            fold,
            programs: total,
        });
        let began = Instant::now();
        let log_p = score_choice_sets(&lm, table, tasks, sets, options.batch_size, &|done| {
            progress(NeuralCvProgress::Scored { done })
        })?;
        let score_seconds = began.elapsed().as_secs_f64();
        let split: Vec<SplitTask<'_>> = sets
            .tasks
            .iter()
            .zip(&log_p)
            .enumerate()
            .map(|(t, (programs, log_p))| SplitTask::new(programs, log_p, |p| rule.training(t, p)))
            .collect();
        let set_programs = set_programs(sets, &split);
        progress(NeuralCvProgress::SetPrograms {
            fold,
            programs: &set_programs,
        });
        let mut observations = Vec::new();
        for (t, task) in split.iter().enumerate() {
            observations.extend(task.held_out.iter().map(|&(participant, _)| HeldOutId {
                split: fold,
                task: sets.tasks[t].label.clone(),
                participant,
            }));
        }
        let mut observation_log_likelihoods = Vec::with_capacity(models.len());
        let mut fits = Vec::with_capacity(models.len());
        for model in models {
            let (theta, train_ll) = fit(&split, model.k());
            let values: Vec<f64> = split
                .iter()
                .flat_map(|task| task.held_out_log_likelihoods(&theta))
                .collect();
            fits.push(FoldFit {
                model: model.name.to_owned(),
                fold,
                params: theta,
                train_log_likelihood: train_ll,
                held_out_log_likelihood: values.iter().sum(),
            });
            observation_log_likelihoods.push(values);
        }
        Ok(SplitOutcome {
            observations,
            observation_log_likelihoods,
            fits,
            train_programs: examples.len(),
            train_seconds: report.seconds,
            trained_passes: examples.len() * options.train.epochs,
            scored_programs: total,
            score_seconds,
            parameters: lm.n_parameters(),
        })
    }
}

/// The splits' outcomes as one result, split after split.
fn assemble(models: &[NeuralModel], outcomes: Vec<SplitOutcome>) -> NeuralCvResult {
    let mut per_fold: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let mut per_observation: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let mut observations = Vec::new();
    let mut fits = Vec::new();
    let (mut train_seconds, mut train_programs, mut trained_passes) = (0.0, 0, 0usize);
    let (mut score_seconds, mut scored, mut parameters) = (0.0, 0, 0);
    for outcome in outcomes {
        for (m, (fit, values)) in outcome
            .fits
            .iter()
            .zip(outcome.observation_log_likelihoods)
            .enumerate()
        {
            per_fold[m].push(fit.held_out_log_likelihood);
            per_observation[m].extend(values);
        }
        observations.extend(outcome.observations);
        fits.extend(outcome.fits);
        train_seconds += outcome.train_seconds;
        train_programs += outcome.train_programs;
        trained_passes += outcome.trained_passes;
        score_seconds += outcome.score_seconds;
        scored += outcome.scored_programs;
        parameters = outcome.parameters;
    }
    let n_observations = observations.len().max(1);
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
    NeuralCvResult {
        models,
        observations,
        observation_log_likelihoods: per_observation,
        fits,
        train_programs,
        train_seconds,
        train_programs_per_second: trained_passes as f64 / train_seconds.max(1e-9),
        scored_programs: scored,
        score_seconds,
        candidates_per_second: scored as f64 / score_seconds.max(1e-9),
        parameters,
    }
}

/// The participant-fold splits of `sets` ([`crate::cv::folds`] with `folds` and `seed`: the
/// symbolic cross-validation's folds).
pub fn participant_splits(
    sets: &ProgramChoiceSets,
    folds: usize,
    seed: u64,
) -> Result<Vec<SplitRule>, NeuralError> {
    Ok(
        crate::cv::folds(&sets.choice_sets.participants(), folds, seed)?
            .into_iter()
            .map(SplitRule::Participants)
            .collect(),
    )
}

/// One split per task with observations, in task order (leave-one-task-out).
pub fn task_splits(sets: &ProgramChoiceSets) -> Vec<SplitRule> {
    sets.tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.observations.is_empty())
        .map(|(t, _)| SplitRule::Task(t))
        .collect()
}

/// The training observations of a split, in task order.
fn training_programs(sets: &ProgramChoiceSets, rule: &SplitRule) -> Vec<TrainingProgram> {
    sets.choice_sets
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(task, set)| {
            set.observations
                .iter()
                .filter(move |o| rule.training(task, o.participant))
                .map(move |o| TrainingProgram {
                    participant: o.participant,
                    task,
                    program: o.program.clone(),
                })
        })
        .collect()
}

/// The listed programs a split's sets hold (task, compact text): the added programs that a
/// training observation chose.
fn set_programs(sets: &ProgramChoiceSets, split: &[SplitTask<'_>]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (t, (programs, task)) in sets.tasks.iter().zip(split).enumerate() {
        let mut listed: Vec<usize> = task
            .chosen_indices()
            .filter_map(|k| k.checked_sub(programs.enumerated))
            .collect();
        listed.sort_unstable();
        listed.dedup();
        out.extend(
            listed
                .into_iter()
                .filter_map(|i| programs.listed.get(i))
                .map(|p| (t, p.to_compact())),
        );
    }
    out
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
