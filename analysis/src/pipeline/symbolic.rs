//! The symbolic analysis of `proglab fit`: choice sets from the enumeration, every model fitted
//! with restarts and profiled, compared, and optionally evaluated on held-out data: participant
//! folds and leave-one-task-out, both with held-out sets (docs/modelling.md §4.9).

use std::time::Instant;

use serde::Serialize;

use dsl::tasks::NamedTask;

use crate::choice::SetRule;
use crate::choice::{ChoiceSets, ObservedProgram};
use crate::compare::{CompareOptions, Comparison, compare};
use crate::cv::{CvOptions, CvResult, cross_validate_with};
use crate::cv_tasks::{TaskCvResult, leave_one_task_out};
use crate::error::AnalysisError;
use crate::fit::FitOptions;
use crate::models::Model;
use crate::models::library::LibraryData;
use crate::models::likelihood::Features;
use crate::pipeline::{Progress, enumerated_choice_sets};

/// Settings of the symbolic analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Models to fit, in the order of the output.
    pub models: Vec<Model>,
    /// Random starts per fit, in addition to the default start.
    pub restarts: usize,
    /// Seed of the random starts and of the cross-validation folds.
    pub seed: u64,
    /// Compute profile-likelihood intervals (the slowest part of a fit).
    pub intervals: bool,
    /// Also cross-validate with this many participant folds.
    pub folds: Option<usize>,
}

impl Default for FitConfig {
    fn default() -> FitConfig {
        let fit = FitOptions::default();
        FitConfig {
            models: Model::reference(),
            restarts: fit.random_starts,
            seed: fit.seed,
            intervals: CompareOptions::default().intervals,
            folds: None,
        }
    }
}

impl FitConfig {
    /// The settings of each single fit.
    pub fn fit_options(&self) -> FitOptions {
        FitOptions {
            random_starts: self.restarts,
            seed: self.seed,
            ..FitOptions::default()
        }
    }
}

/// Wall-clock seconds of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSeconds {
    pub choice_sets: f64,
    /// Grouping the candidates for the library model (one more pass over the enumeration;
    /// 0 when no model needs it).
    pub library: f64,
    pub fits: f64,
    pub cv: f64,
    /// Leave-one-task-out.
    pub cv_tasks: f64,
}

/// The outcome of the symbolic analysis.
#[derive(Debug, Clone)]
pub struct SymbolicAnalysis {
    pub choice_sets: ChoiceSets,
    pub comparison: Comparison,
    /// Set when [`FitConfig::folds`] is.
    pub cv: Option<CvResult>,
    /// Set when [`HeldOut::tasks`] is.
    pub cv_tasks: Option<TaskCvResult>,
    pub seconds: StageSeconds,
}

/// Held-out evaluations beyond [`FitConfig::folds`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldOut {
    /// Also leave one task out at a time.
    pub tasks: bool,
}

/// Builds the choice sets of `tasks` from the enumeration and `observed`, fits and compares
/// `config.models` on all participants, and cross-validates them when `config.folds` is set.
/// The folds split participants, and each fold's choice sets hold only the enumeration and the
/// training participants' programs (see [`crate::cv`]).
pub fn fit_and_cross_validate(
    tasks: &[NamedTask],
    observed: &[ObservedProgram],
    config: &FitConfig,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<SymbolicAnalysis, AnalysisError> {
    fit_and_hold_out(tasks, observed, config, HeldOut::default(), progress)
}

/// [`fit_and_cross_validate`], and also leave-one-task-out when `held_out.tasks` is set.
pub fn fit_and_hold_out(
    tasks: &[NamedTask],
    observed: &[ObservedProgram],
    config: &FitConfig,
    held_out: HeldOut,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<SymbolicAnalysis, AnalysisError> {
    let began = Instant::now();
    let choice_sets = enumerated_choice_sets(tasks, observed, progress)?;
    let mut seconds = StageSeconds {
        choice_sets: began.elapsed().as_secs_f64(),
        ..StageSeconds::default()
    };
    let library_began = Instant::now();
    let (features, library) = crate::models::library::attach_in_sample(
        Features::new(&choice_sets),
        tasks,
        observed,
        &choice_sets,
        &config.models,
    )?;
    seconds.library = library_began.elapsed().as_secs_f64();
    let compare_options = CompareOptions {
        fit: config.fit_options(),
        intervals: config.intervals,
    };
    let fits_began = Instant::now();
    let comparison = compare(
        &choice_sets,
        &features,
        &config.models,
        &compare_options,
        &|event| progress(Progress::Compare(event)),
    )?;
    progress(Progress::StageDone);
    seconds.fits = fits_began.elapsed().as_secs_f64();
    let cv = match config.folds {
        Some(folds) => {
            let cv_began = Instant::now();
            let cv = cross_validate_in(
                &choice_sets,
                library.as_ref(),
                config,
                folds,
                SetRule::Training,
                progress,
            )?;
            seconds.cv = cv_began.elapsed().as_secs_f64();
            Some(cv)
        }
        None => None,
    };
    let cv_tasks = if held_out.tasks {
        let began = Instant::now();
        let result = leave_tasks_out(&choice_sets, library.as_ref(), config, progress)?;
        seconds.cv_tasks = began.elapsed().as_secs_f64();
        Some(result)
    } else {
        None
    };
    Ok(SymbolicAnalysis {
        choice_sets,
        comparison,
        cv,
        cv_tasks,
        seconds,
    })
}

/// Cross-validates `config.models` on `choice_sets` with `folds` participant folds seeded by
/// `config.seed`, with the choice sets of `rule`.
pub fn cross_validate_in(
    choice_sets: &ChoiceSets,
    library: Option<&LibraryData>,
    config: &FitConfig,
    folds: usize,
    rule: SetRule,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<CvResult, AnalysisError> {
    let options = CvOptions {
        folds,
        seed: config.seed,
        fit: config.fit_options(),
    };
    progress(Progress::CrossValidationStarted {
        folds,
        fits: config.models.len() * folds,
    });
    let cv = cross_validate_with(
        choice_sets,
        library,
        &config.models,
        &options,
        rule,
        &|model, fold| progress(Progress::CrossValidated { model, fold }),
    )?;
    progress(Progress::StageDone);
    Ok(cv)
}

/// Leaves each task of `choice_sets` out in turn (docs/modelling.md §4.9), reporting each task
/// as a fold.
pub fn leave_tasks_out(
    choice_sets: &ChoiceSets,
    library: Option<&LibraryData>,
    config: &FitConfig,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<TaskCvResult, AnalysisError> {
    let held = choice_sets
        .tasks
        .iter()
        .filter(|t| !t.observations.is_empty())
        .count();
    progress(Progress::CrossValidationStarted {
        folds: held,
        fits: config.models.len() * held,
    });
    let result = leave_one_task_out(
        choice_sets,
        library,
        &config.models,
        &config.fit_options(),
        &|model, fold| progress(Progress::CrossValidated { model, fold }),
    )?;
    progress(Progress::StageDone);
    Ok(result)
}
