//! The analyses that `proglab fit` and `proglab train-neural` run, as library functions: read a
//! programs file into observations, build the choice sets, then fit and cross-validate the
//! symbolic models ([`symbolic`]) or compare them with the neural ones on held-out participants
//! ([`neural`]).
//!
//! Every step takes its settings as a config struct whose `Default` holds the documented defaults
//! (the command line takes its defaults from there), and reports what it is doing through one
//! [`Progress`] callback, so that a front end can draw progress bars without knowing the steps.
//! The models and choice sets are described in `docs/modelling.md`.

pub mod neural;
pub mod symbolic;

use std::path::Path;

use dsl::Task;
use dsl::tasks::NamedTask;

use crate::choice::{
    ChoiceSets, ObserveOptions, ObservedProgram, TaskCandidates, observed_programs,
};
use crate::data::{RowError, read_programs};
use crate::enumerate::enumerate_task_with_progress;
use crate::error::AnalysisError;

/// The usable observations of a programs file and the rows left out.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub observed: Vec<ObservedProgram>,
    /// Rows that could not be read or used, with why, in file order of the two passes (reading,
    /// then observing).
    pub excluded: Vec<RowError>,
}

/// What a pipeline is doing. Stages follow one another; [`Progress::StageDone`] ends the current
/// one, and events of a new stage imply the end of the previous.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Task `task`'s candidates are enumerated: `done` of `total` traces compressed.
    Enumerating {
        task: &'a str,
        done: usize,
        total: usize,
    },
    /// Task `task`'s candidates stream into its program choice set: `done` so far.
    Streaming { task: &'a str, done: u64 },
    /// An event of fitting the models to all participants.
    Compare(crate::compare::Progress<'a>),
    /// Cross-validation of the symbolic models starts: `fits` fits over `folds` folds.
    CrossValidationStarted { folds: usize, fits: usize },
    /// One cross-validation fit of `model` on fold `fold` is done.
    CrossValidated { model: &'a str, fold: usize },
    /// An event of training or cross-validating a neural model.
    #[cfg(feature = "neural")]
    Neural(crate::neural::cv::NeuralCvProgress<'a>),
    /// `done` candidates of task index `task` scored, when measuring scoring throughput.
    #[cfg(feature = "neural")]
    ScoringCandidates { task: usize, done: usize },
    /// The current stage is over.
    StageDone,
}

/// Reads a programs.csv-format file and turns its non-skipped rows into observations of
/// `tasks` (index = `mdp_idx`). Malformed or unusable rows are returned in
/// [`Observations::excluded`]; a file without any usable row is an error.
pub fn load_observations(
    path: &Path,
    tasks: &[NamedTask],
    options: &ObserveOptions,
) -> Result<Observations, AnalysisError> {
    let file = std::fs::File::open(path).map_err(|e| AnalysisError::io(path, e))?;
    let rows = read_programs(file)?;
    let tasks: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
    let (observed, row_errors) = observed_programs(&rows.rows, &tasks, options);
    if observed.is_empty() {
        return Err(AnalysisError::NoUsableRows {
            path: path.to_owned(),
        });
    }
    let mut excluded = rows.errors;
    excluded.extend(row_errors);
    Ok(Observations { observed, excluded })
}

/// The choice sets of every task: each task's enumerated candidates plus the participant
/// programs the enumeration lacks (tasks without observations stay empty and are not
/// enumerated).
pub fn enumerated_choice_sets(
    tasks: &[NamedTask],
    observed: &[ObservedProgram],
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<ChoiceSets, AnalysisError> {
    let labels = labels(tasks);
    let sets = ChoiceSets::build(
        &labels,
        observed,
        |index, queries| {
            let label = labels[index].as_str();
            progress(Progress::Enumerating {
                task: label,
                done: 0,
                total: 0,
            });
            let enumeration =
                enumerate_task_with_progress(&tasks[index].task, queries, &|done, total| {
                    progress(Progress::Enumerating {
                        task: label,
                        done,
                        total,
                    })
                })?;
            Ok(TaskCandidates::from(enumeration))
        },
        &|_| {},
    )?;
    progress(Progress::StageDone);
    Ok(sets)
}

/// The tasks' labels, in task order.
fn labels(tasks: &[NamedTask]) -> Vec<String> {
    tasks.iter().map(|t| t.label.clone()).collect()
}
