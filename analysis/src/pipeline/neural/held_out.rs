//! The neural models' held-out rows beside the symbolic ones: the same participant folds and
//! held-out tasks, the same choice-set rule (docs/modelling.md §4.9), the full sets, several
//! network seeds.
//!
//! The symbolic analysis is run exactly as without neural models
//! ([`crate::pipeline::symbolic::fit_and_hold_out`]), so listing a neural model never changes a
//! symbolic number. [`neural_held_out`] then evaluates the neural models on the same splits, and
//! [`add_to_participant_cv`] / [`add_to_task_cv`] put their rows (means over seeds) into the
//! symbolic tables and recompute the paired differences.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use dsl::Task;
use dsl::tasks::NamedTask;

use crate::choice::ObservedProgram;
use crate::compare::{PairedDifference, paired_differences, versus_best};
use crate::cv::{CvModel, CvResult, HeldOutId};
use crate::cv_tasks::{TaskCvModel, TaskCvResult};
use crate::neural::choice::{ProgramChoiceSets, build};
use crate::neural::cv::{
    FoldFit, NeuralCvOptions, NeuralCvResult, SplitRule, SplitStore, hold_out, participant_splits,
    task_splits,
};
use crate::neural::{Device, NeuralError, NeuralModel, with_threads};
use crate::pipeline::neural::NeuralConfig;
use crate::pipeline::neural::split_dir::{SplitDir, SplitKind, context, data_digest};
use crate::pipeline::{Progress, labels};

/// How the network's hyperparameters were chosen, for the record: they are the defaults
/// committed (in 35c2b99) before any held-out evaluation on fold choice sets, unchanged, unless
/// the command line set them.
pub const FIXED_IN_ADVANCE: &str = "fixed in advance: the defaults committed before held-out evaluation on fold choice sets, unchanged (no selection on held-out data)";

/// Settings of the neural held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuralHeldOutConfig {
    /// Participant folds (the symbolic cross-validation's), if any.
    pub folds: Option<usize>,
    /// Seed of the folds: the symbolic cross-validation's seed.
    pub fold_seed: u64,
    /// Also leave one task out at a time.
    pub tasks: bool,
    /// Networks are trained with seeds `network.seed`, `network.seed + 1`, ... (this many).
    pub seeds: usize,
    pub network: NeuralConfig,
    /// How the hyperparameters were chosen ([`FIXED_IN_ADVANCE`] for the defaults).
    pub hyperparameters: String,
    /// Where finished splits are kept, so that a stopped evaluation resumes
    /// ([`crate::pipeline::neural::split_dir`]); none: nothing is kept.
    pub splits_dir: Option<PathBuf>,
}

/// One neural model over several network seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeededModel {
    pub name: String,
    /// Free parameters of the choice rule (the network's weights are not counted).
    pub k: usize,
    /// Held-out log-likelihood of each seed.
    pub per_seed: Vec<f64>,
    /// Mean over seeds.
    pub held_out_log_likelihood: f64,
    /// Standard deviation over seeds (n − 1 in the denominator; 0 for one seed).
    pub seed_sd: f64,
    /// Mean over seeds, per observation.
    pub per_observation: f64,
    /// Mean over seeds of each split's held-out log-likelihood.
    pub per_split: Vec<f64>,
}

/// The neural models on one kind of split, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeededEvaluation {
    pub models: Vec<SeededModel>,
    /// The held-out observations, in the symbolic evaluation's order.
    pub observations: Vec<HeldOutId>,
    /// Per model: each observation's held-out log-likelihood, averaged over seeds.
    pub observation_log_likelihoods: Vec<Vec<f64>>,
    /// Fitted choice-rule parameters per seed, split and model.
    pub fits: Vec<SeedFit>,
}

/// A [`FoldFit`] with the seed of its network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedFit {
    pub seed: u64,
    #[serde(flatten)]
    pub fit: FoldFit,
}

/// The neural held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuralHeldOut {
    pub config: NeuralHeldOutConfig,
    /// The network seeds.
    pub seeds: Vec<u64>,
    /// Choice sets of every split: the enumeration plus the programs the split's training
    /// observations chose; a held-out program is added to its own set only. No approximation.
    pub choice_sets: String,
    /// Participant folds.
    pub participants: Option<SeededEvaluation>,
    /// One held-out task at a time.
    pub tasks: Option<SeededEvaluation>,
    pub network_parameters: usize,
    pub train_programs_per_second: f64,
    /// Programs scored per second (candidate stream and listed programs), over every split.
    pub candidates_per_second: f64,
    /// Programs scored, over every split and seed.
    pub scored_programs: usize,
    pub score_seconds: f64,
    pub device: String,
}

/// Evaluates `models` on the participant folds and/or held-out tasks of `config`, once per seed.
pub fn neural_held_out(
    tasks: &[NamedTask],
    observed: &[ObservedProgram],
    models: &[NeuralModel],
    config: &NeuralHeldOutConfig,
    device: &Device,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<NeuralHeldOut, NeuralError> {
    if config.folds.is_none() && !config.tasks {
        return Err(NeuralError::Invalid(
            "neural models are evaluated on held-out data only: ask for participant folds or held-out tasks".into(),
        ));
    }
    let labels = labels(tasks);
    let refs: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
    let sets = build(&refs, &labels, observed, &|task, done| {
        progress(Progress::Streaming {
            task: &labels[task],
            done,
        })
    })?;
    progress(Progress::StageDone);
    let seeds: Vec<u64> = (0..config.seeds.max(1) as u64)
        .map(|i| config.network.seed + i)
        .collect();
    let mut out = NeuralHeldOut {
        config: config.clone(),
        seeds: seeds.clone(),
        choice_sets: crate::choice::SetRule::Training.describe().to_owned(),
        participants: None,
        tasks: None,
        network_parameters: 0,
        train_programs_per_second: 0.0,
        candidates_per_second: 0.0,
        scored_programs: 0,
        score_seconds: 0.0,
        device: format!("{device:?}"),
    };
    let names: Vec<&str> = models.iter().map(|m| m.name).collect();
    let mut kinds: Vec<(SplitKind, Vec<SplitRule>, serde_json::Value)> = Vec::new();
    if let Some(folds) = config.folds {
        let splits = participant_splits(&sets, folds, config.fold_seed)?;
        let folds = json!({ "folds": folds, "fold_seed": config.fold_seed });
        kinds.push((SplitKind::Participants, splits, folds));
    }
    if config.tasks {
        kinds.push((SplitKind::Tasks, task_splits(&sets), json!(null)));
    }
    // The data's digest, for the kept splits' keys: the same for every seed and kind of split.
    let data = config
        .splits_dir
        .as_ref()
        .map(|_| data_digest(tasks, &sets))
        .unwrap_or_default();
    let data = data.as_str();
    // Seeds in the outer loop: a run stopped with kept splits (`splits_dir`) then holds whole
    // tables for its first seeds rather than every seed of one kind of split.
    let mut train_rate = Vec::new();
    let mut runs: Vec<Vec<(u64, NeuralCvResult)>> = kinds.iter().map(|_| Vec::new()).collect();
    for &seed in &seeds {
        let network = NeuralConfig {
            seed,
            ..config.network
        };
        let options = NeuralCvOptions {
            model: network.model_config()?,
            train: network.train_config(),
            batch_size: network.score_batch,
        };
        for ((kind, splits, folds), runs) in kinds.iter().zip(&mut runs) {
            let store = config.splits_dir.as_deref().map(|dir| {
                let settings = json!({
                    "network": network,
                    "models": names,
                    "device": out.device,
                    "splits": folds,
                });
                SplitDir::new(dir, *kind, seed, context(data, settings))
            });
            let store = store.as_ref().map(|s| s as &dyn SplitStore);
            let run = with_threads(network.threads, || {
                evaluate(
                    &sets, &refs, models, splits, &options, device, store, progress,
                )
            })??;
            out.network_parameters = run.parameters;
            out.scored_programs += run.scored_programs;
            out.score_seconds += run.score_seconds;
            train_rate.push(run.train_programs_per_second);
            runs.push((seed, run));
        }
    }
    for ((kind, _, _), runs) in kinds.iter().zip(runs) {
        let evaluation = combine(models, runs)?;
        if *kind == SplitKind::Tasks {
            out.tasks = Some(evaluation);
        } else {
            out.participants = Some(evaluation);
        }
    }
    out.candidates_per_second = out.scored_programs as f64 / out.score_seconds.max(1e-9);
    out.train_programs_per_second = train_rate.iter().sum::<f64>() / train_rate.len().max(1) as f64;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn evaluate(
    sets: &ProgramChoiceSets,
    tasks: &[&Task],
    models: &[NeuralModel],
    splits: &[SplitRule],
    options: &NeuralCvOptions,
    device: &Device,
    store: Option<&dyn SplitStore>,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<NeuralCvResult, NeuralError> {
    let result = hold_out(
        sets,
        tasks,
        models,
        splits,
        options,
        device,
        store,
        &|event| progress(Progress::Neural(event)),
    )?;
    progress(Progress::StageDone);
    Ok(result)
}

/// Means and spreads over the seeds' runs, which share their splits and observations.
fn combine(
    models: &[NeuralModel],
    runs: Vec<(u64, NeuralCvResult)>,
) -> Result<SeededEvaluation, NeuralError> {
    let Some((_, first)) = runs.first() else {
        return Err(NeuralError::Invalid("no network seed".into()));
    };
    let observations = first.observations.clone();
    let n_seeds = runs.len() as f64;
    let n_obs = observations.len().max(1) as f64;
    let mut seeded = Vec::new();
    let mut values = Vec::new();
    for (m, model) in models.iter().enumerate() {
        let per_seed: Vec<f64> = runs
            .iter()
            .map(|(_, r)| r.models[m].held_out_log_likelihood)
            .collect();
        let mean = per_seed.iter().sum::<f64>() / n_seeds;
        let sd = if runs.len() > 1 {
            (per_seed.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n_seeds - 1.0)).sqrt()
        } else {
            0.0
        };
        let splits = first.models[m].per_fold.len();
        let per_split = (0..splits)
            .map(|s| {
                runs.iter()
                    .map(|(_, r)| r.models[m].per_fold[s])
                    .sum::<f64>()
                    / n_seeds
            })
            .collect();
        let mut mean_values = vec![0.0; observations.len()];
        for (_, run) in &runs {
            if run.observations != observations {
                return Err(NeuralError::Invalid(
                    "network seeds held out different observations".into(),
                ));
            }
            for (total, v) in mean_values
                .iter_mut()
                .zip(&run.observation_log_likelihoods[m])
            {
                *total += v / n_seeds;
            }
        }
        seeded.push(SeededModel {
            name: model.name.to_owned(),
            k: model.k(),
            per_seed,
            held_out_log_likelihood: mean,
            seed_sd: sd,
            per_observation: mean / n_obs,
            per_split,
        });
        values.push(mean_values);
    }
    let fits = runs
        .into_iter()
        .flat_map(|(seed, run)| run.fits.into_iter().map(move |fit| SeedFit { seed, fit }))
        .collect();
    Ok(SeededEvaluation {
        models: seeded,
        observations,
        observation_log_likelihoods: values,
        fits,
    })
}

/// Checks that the neural evaluation held out the same observations, in the same order, as the
/// symbolic one (same folds or tasks, same choice data).
fn same_observations(symbolic: &[HeldOutId], neural: &SeededEvaluation) -> Result<(), NeuralError> {
    if symbolic == neural.observations.as_slice() {
        Ok(())
    } else {
        Err(NeuralError::Invalid(format!(
            "the neural evaluation held out {} observations, the symbolic one {} (or in another order)",
            neural.observations.len(),
            symbolic.len()
        )))
    }
}

/// Adds the neural rows (means over seeds) to the symbolic participant cross-validation and
/// recomputes its paired differences.
pub fn add_to_participant_cv(
    cv: &mut CvResult,
    neural: &SeededEvaluation,
) -> Result<(), NeuralError> {
    same_observations(&cv.observations, neural)?;
    for (model, values) in neural
        .models
        .iter()
        .zip(&neural.observation_log_likelihoods)
    {
        cv.models.push(CvModel {
            name: model.name.clone(),
            held_out_log_likelihood: model.held_out_log_likelihood,
            per_observation: model.per_observation,
            per_fold: model.per_split.clone(),
        });
        cv.observation_log_likelihoods.push(values.clone());
    }
    let names: Vec<&str> = cv.models.iter().map(|m| m.name.as_str()).collect();
    let totals: Vec<f64> = cv
        .models
        .iter()
        .map(|m| m.held_out_log_likelihood)
        .collect();
    (cv.versus_best, cv.paired) = differences(
        &names,
        &totals,
        &cv.observation_log_likelihoods,
        &cv.observations,
    );
    Ok(())
}

/// Adds the neural rows (means over seeds) to the symbolic leave-one-task-out table and
/// recomputes its paired differences.
pub fn add_to_task_cv(cv: &mut TaskCvResult, neural: &SeededEvaluation) -> Result<(), NeuralError> {
    same_observations(&cv.observations, neural)?;
    let n: usize = cv.task_observations.iter().sum();
    for (model, values) in neural
        .models
        .iter()
        .zip(&neural.observation_log_likelihoods)
    {
        cv.models.push(TaskCvModel {
            name: model.name.clone(),
            held_out_log_likelihood: model.held_out_log_likelihood,
            per_observation: model.held_out_log_likelihood / n.max(1) as f64,
            per_task: model.per_split.clone(),
        });
        cv.observation_log_likelihoods.push(values.clone());
    }
    let names: Vec<&str> = cv.models.iter().map(|m| m.name.as_str()).collect();
    let totals: Vec<f64> = cv
        .models
        .iter()
        .map(|m| m.held_out_log_likelihood)
        .collect();
    (cv.versus_best, cv.paired) = differences(
        &names,
        &totals,
        &cv.observation_log_likelihoods,
        &cv.observations,
    );
    Ok(())
}

/// The paired differences of every model from the best and of every pair, from the
/// per-observation values (clustered by the observations' participants).
fn differences(
    names: &[&str],
    totals: &[f64],
    values: &[Vec<f64>],
    observations: &[HeldOutId],
) -> (Vec<PairedDifference>, Vec<PairedDifference>) {
    let values: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
    let participants: Vec<u32> = observations.iter().map(|o| o.participant).collect();
    (
        versus_best(names, &values, totals, &participants),
        paired_differences(names, &values, &participants),
    )
}
