//! Leave-one-task-out evaluation of the program-choice models (docs/modelling.md §4.9).
//!
//! Every model is fitted on the observations of all tasks but one and scored on the held-out
//! task's observations, once per task with observations. The held-out task's choice set is its
//! enumeration alone ([`SetRule::Training`] with no training observation in that task), and each
//! of its observations is scored in that set plus its own program, so no participant's program
//! of the task shapes its set. For models with the grammar-induction prior, p_end is averaged
//! over the held-out task's likelihood.

use serde::Serialize;

use crate::choice::{ChoiceSets, SetRule, Split};
use crate::compare::PairedDifference;
use crate::cv::{HeldOutId, SplitLibrary, held_out_ids, score_splits};
use crate::error::AnalysisError;
use crate::fit::FitOptions;
use crate::models::Model;
use crate::models::library::{HeldOutRule, LibraryData};

/// The choice-set rule of leave-one-task-out, in words.
pub const TASK_CHOICE_SETS: &str = "held-out task: its enumeration + each held-out program added to its own set; \
     training tasks: enumeration + their participants' programs";

/// One model's held-out performance, task by task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskCvModel {
    pub name: String,
    /// Sum over tasks of the held-out log-likelihood.
    pub held_out_log_likelihood: f64,
    /// Held-out log-likelihood per observation.
    pub per_observation: f64,
    /// Held-out log-likelihood of each task of [`TaskCvResult::tasks`].
    pub per_task: Vec<f64>,
}

/// The outcome of leaving one task out at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskCvResult {
    /// The tasks held out (those with observations), in task order.
    pub tasks: Vec<String>,
    /// Observations of each held-out task.
    pub task_observations: Vec<usize>,
    pub models: Vec<TaskCvModel>,
    /// How the choice sets were built.
    pub choice_sets: String,
    /// Each model minus the best, per observation, with its paired standard error.
    pub versus_best: Vec<PairedDifference>,
    /// Every pair of models, the earlier in `models` minus the later.
    pub paired: Vec<PairedDifference>,
    /// The held-out observations, in the order of the per-observation values (`split` is the
    /// index into `tasks`).
    pub observations: Vec<HeldOutId>,
    /// Per model: each held-out observation's share of the held-out log-likelihood.
    pub observation_log_likelihoods: Vec<Vec<f64>>,
}

/// The splits of leave-one-task-out: one per task with observations, with that task's index.
pub fn task_splits(choice_sets: &ChoiceSets) -> Result<Vec<(usize, Split)>, AnalysisError> {
    let held: Vec<usize> = (0..choice_sets.tasks.len())
        .filter(|&t| !choice_sets.tasks[t].observations.is_empty())
        .collect();
    if held.len() < 2 {
        return Err(AnalysisError::TooFewFolds { folds: held.len() });
    }
    held.into_iter()
        .map(|out| {
            choice_sets
                .split(SetRule::Training, |t, _| t != out)
                .map(|split| (out, split))
        })
        .collect()
}

/// Leaves each task out in turn; `progress(model, split)` is called after each fit. `library`
/// (built from the same observations) is needed when a model is the library model; the held-out
/// task's programs then enter no cache and no population library of the training fit.
pub fn leave_one_task_out(
    choice_sets: &ChoiceSets,
    library: Option<&LibraryData>,
    models: &[Model],
    options: &FitOptions,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<TaskCvResult, AnalysisError> {
    let (held, splits): (Vec<usize>, Vec<Split>) = task_splits(choice_sets)?.into_iter().unzip();
    let rules: Vec<HeldOutRule> = held.iter().map(|&t| HeldOutRule::Task(t)).collect();
    let library = library.map(|data| SplitLibrary {
        data,
        rules: &rules,
    });
    let scored = score_splits(&splits, models, options, library, progress)?;
    let n = choice_sets.n_observations().max(1);
    Ok(TaskCvResult {
        tasks: held
            .iter()
            .map(|&t| choice_sets.tasks[t].label.clone())
            .collect(),
        task_observations: splits.iter().map(|s| s.held_out.len()).collect(),
        models: models
            .iter()
            .zip(&scored.per_model)
            .map(|(model, scores)| {
                let total: f64 = scores.per_split.iter().sum();
                TaskCvModel {
                    name: model.name.to_owned(),
                    held_out_log_likelihood: total,
                    per_observation: total / n as f64,
                    per_task: scores.per_split.clone(),
                }
            })
            .collect(),
        choice_sets: TASK_CHOICE_SETS.to_owned(),
        versus_best: scored.versus_best,
        paired: scored.paired,
        observations: held_out_ids(choice_sets, &splits),
        observation_log_likelihoods: scored
            .per_model
            .into_iter()
            .map(|s| s.per_observation)
            .collect(),
    })
}
