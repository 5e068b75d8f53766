//! The held-out comparison of symbolic and neural models on the same choice sets and folds.

use std::collections::BTreeMap;

use serde::Serialize;

use dsl::Task;
use dsl::tasks::NamedTask;

use crate::choice::ObservedProgram;
use crate::compare::{Comparison, compare};
use crate::cv::CvResult;
use crate::fit::fit;
use crate::models::Model;
use crate::models::likelihood::{Features, Weights};
use crate::neural::choice::{Approximation, ChoiceMode, ProgramChoiceSets, RankBy, build};
use crate::neural::cv::{FoldFit, NeuralCvOptions, cross_validate};
use crate::neural::{Device, NeuralError, split_models, with_threads};
use crate::pipeline::neural::{CPU_TOP_N, NeuralTableConfig};
use crate::pipeline::symbolic::{FitConfig, cross_validate_models};
use crate::pipeline::{Progress, enumerated_choice_sets, labels};

/// The held-out comparison of symbolic and neural models.
#[derive(Debug, Serialize)]
pub struct NeuralTable {
    /// The symbolic models fitted to all participants on the same choice sets.
    pub comparison: Option<Comparison>,
    /// Symbolic and neural rows, on the same folds and choice sets.
    pub cv: CvResult,
    pub n_observations: usize,
    /// Free parameters per model (neural: the choice rule's β, not the network's weights).
    pub k: BTreeMap<String, usize>,
    /// Set when the choice sets are the reduced approximation.
    pub approximation: Option<Approximation>,
    /// Fitted β of the neural models per fold.
    pub neural_fits: Vec<FoldFit>,
    pub network_parameters: usize,
    pub train_programs_per_second: f64,
    pub candidates_per_second: f64,
    pub scored_programs: usize,
    pub device: String,
    /// Figures written (with [`NeuralTableConfig::plots`]).
    pub plots: Vec<String>,
}

impl NeuralTable {
    /// The table as text, for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(approximation) = &self.approximation {
            out.push_str(&format!("{}\n", approximation.note));
            let params: Vec<String> = approximation
                .rank_params
                .iter()
                .map(|(k, v)| format!("{k} = {v:.4}"))
                .collect();
            out.push_str(&format!(
                "ranking model {} fitted on all participants on the full sets ({}); only set membership depends on it\n",
                approximation.rank_model,
                params.join(", ")
            ));
        }
        if let Some(comparison) = &self.comparison {
            out.push_str("symbolic models fitted to all participants on these sets\n");
            out.push_str(&format!(
                "{:<16} {:>3} {:>12} {:>12}\n",
                "model", "k", "log-lik", "BIC"
            ));
            for model in &comparison.models {
                out.push_str(&format!(
                    "{:<16} {:>3} {:>12.2} {:>12.2}\n",
                    model.name, model.k, model.log_likelihood, model.bic
                ));
            }
        }
        out.push_str(&format!(
            "held-out log-likelihood, {} participant folds (seed {}), {} observations\n",
            self.cv.folds, self.cv.seed, self.n_observations
        ));
        out.push_str(&format!(
            "{:<16} {:>3} {:>12} {:>10}  per fold\n",
            "model", "k", "held-out LL", "per obs"
        ));
        let best = self
            .cv
            .models
            .iter()
            .map(|m| m.held_out_log_likelihood)
            .fold(f64::NEG_INFINITY, f64::max);
        for model in &self.cv.models {
            let folds: Vec<String> = model.per_fold.iter().map(|ll| format!("{ll:.1}")).collect();
            out.push_str(&format!(
                "{:<16} {:>3} {:>12.2} {:>10.4}  {}{}\n",
                model.name,
                self.k.get(&model.name).copied().unwrap_or(0),
                model.held_out_log_likelihood,
                model.per_observation,
                folds.join(" "),
                if model.held_out_log_likelihood == best {
                    "  best"
                } else {
                    ""
                }
            ));
        }
        if self.scored_programs > 0 {
            out.push_str(&format!(
                "neural ({} on {}): {} network parameters; training {:.0} programs/s; scoring {:.0} candidates/s ({} scored)\n",
                "transformer", self.device, self.network_parameters, self.train_programs_per_second,
                self.candidates_per_second, self.scored_programs
            ));
        }
        for path in &self.plots {
            out.push_str(&format!("wrote {path}\n"));
        }
        out
    }
}

/// Builds the choice sets (reduced or full, see [`NeuralTableConfig::top_n`]), cross-validates
/// the symbolic and the neural models of `config.models` on them with the same `folds`
/// participant folds, fits the symbolic ones to all participants, and returns the table.
pub fn neural_table(
    tasks: &[NamedTask],
    observed: &[ObservedProgram],
    folds: usize,
    config: &NeuralTableConfig,
    device: &Device,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<NeuralTable, NeuralError> {
    let network = &config.network;
    let (symbolic_list, neural_models) = split_models(&config.models);
    let symbolic = FitConfig {
        models: if symbolic_list.is_empty() {
            Vec::new()
        } else {
            Model::parse_list(&symbolic_list)?
        },
        restarts: config.random_starts,
        seed: network.seed,
        intervals: false,
        folds: Some(folds),
    };
    let fit_options = symbolic.fit_options();
    let labels = labels(tasks);
    let refs: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
    let on_cpu = matches!(device, Device::Cpu);
    let top_n = config.top_n.unwrap_or(if on_cpu { CPU_TOP_N } else { 0 });
    let mode = if top_n == 0 {
        ChoiceMode::Full
    } else {
        let rank_model = Model::by_name(&config.rank_model)?;
        let full = enumerated_choice_sets(tasks, observed, progress)?;
        let features = Features::new(&full);
        progress(Progress::FittingRankModel {
            model: rank_model.name,
        });
        let fitted = fit(
            &features,
            &Weights::all(&full),
            &rank_model,
            &fit_options,
            &|| {},
        )?;
        progress(Progress::StageDone);
        ChoiceMode::Reduced {
            top_n,
            rank: RankBy {
                model: rank_model,
                params: fitted.params,
            },
        }
    };
    let sets = build(&refs, &labels, observed, &mode, &|task, done| {
        progress(Progress::Streaming {
            task: &labels[task],
            done,
        })
    })?;
    progress(Progress::StageDone);

    let features = Features::new(&sets.choice_sets);
    let mut cv = cross_validate_models(&sets.choice_sets, &features, &symbolic, folds, progress)?;
    let mut k: BTreeMap<String, usize> = symbolic
        .models
        .iter()
        .map(|m| (m.name.to_owned(), m.k()))
        .collect();
    let comparison = if symbolic.models.is_empty() {
        None
    } else {
        let options = crate::compare::CompareOptions {
            fit: fit_options,
            intervals: symbolic.intervals,
        };
        let comparison = compare(
            &sets.choice_sets,
            &features,
            &symbolic.models,
            &options,
            &|event| progress(Progress::Compare(event)),
        )?;
        progress(Progress::StageDone);
        Some(comparison)
    };

    let mut table = NeuralTable {
        comparison,
        plots: Vec::new(),
        n_observations: sets.choice_sets.n_observations(),
        approximation: sets.approximation.clone(),
        neural_fits: Vec::new(),
        network_parameters: 0,
        train_programs_per_second: 0.0,
        candidates_per_second: 0.0,
        scored_programs: 0,
        device: format!("{device:?}"),
        k: BTreeMap::new(),
        cv: cv.clone(),
    };
    if !neural_models.is_empty() {
        let options = NeuralCvOptions {
            folds,
            seed: network.seed,
            model: network.model_config()?,
            train: network.train_config(),
            batch_size: network.score_batch,
        };
        let result = with_threads(network.threads, || {
            neural_cross_validation(&sets, &refs, &neural_models, &options, device, progress)
        })??;
        for model in &neural_models {
            k.insert(model.name.to_owned(), model.k());
        }
        cv.models.extend(result.models.iter().cloned());
        table.neural_fits = result.fits;
        table.network_parameters = result.parameters;
        table.train_programs_per_second = result.train_programs_per_second;
        table.candidates_per_second = result.candidates_per_second;
        table.scored_programs = result.scored_programs;
    }
    // The figures compare fitted models, so they need at least one symbolic one.
    if let (Some(dir), Some(comparison)) = (&config.plots, &table.comparison) {
        table.plots = crate::plots::write_plots(dir, comparison, Some(&cv))?
            .into_iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    table.cv = cv;
    table.k = k;
    Ok(table)
}

/// [`cross_validate`] of the neural models, reporting through the pipeline's progress.
fn neural_cross_validation(
    sets: &ProgramChoiceSets,
    tasks: &[&Task],
    models: &[crate::neural::NeuralModel],
    options: &NeuralCvOptions,
    device: &Device,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<crate::neural::cv::NeuralCvResult, NeuralError> {
    let result = cross_validate(sets, tasks, models, options, device, &|event| {
        progress(Progress::Neural(event))
    })?;
    progress(Progress::StageDone);
    Ok(result)
}
