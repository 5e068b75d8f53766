//! The neural models' rows of `proglab fit` (feature `neural`): evaluates them on the fit's
//! held-out splits (`analysis::pipeline::neural::held_out`), adds their rows to its tables and
//! renders their own section (seeds, hyperparameters, throughput). `fit.rs` calls it; without the
//! feature it says how to get one.

use analysis::pipeline::neural::NeuralConfig;

/// What `proglab fit` asks of the neural models (read only by the `neural` build).
#[cfg_attr(not(feature = "neural"), allow(dead_code))]
pub(super) struct NeuralRequest<'a> {
    pub models: &'a [String],
    pub folds: Option<usize>,
    pub fold_seed: u64,
    pub tasks: bool,
    pub seeds: usize,
    pub network: NeuralConfig,
    /// How the hyperparameters were chosen, when not the committed defaults.
    pub hyperparameters: Option<String>,
    pub device: &'a str,
    /// Where finished splits are kept (`--neural-splits-dir`).
    pub splits_dir: Option<&'a std::path::Path>,
}

#[cfg(not(feature = "neural"))]
pub(super) fn add_neural_rows(
    _tasks: &[dsl::tasks::NamedTask],
    _observed: &[analysis::choice::ObservedProgram],
    _request: &NeuralRequest<'_>,
    _analysis: &mut analysis::pipeline::symbolic::SymbolicAnalysis,
    _progress: &(dyn Fn(analysis::pipeline::Progress<'_>) + Sync),
) -> anyhow::Result<(serde_json::Value, String)> {
    anyhow::bail!("this proglab was built without neural models: rebuild with `--features neural`")
}

#[cfg(feature = "neural")]
pub(super) use enabled::add_neural_rows;

#[cfg(feature = "neural")]
mod enabled {
    use anyhow::Context;

    use dsl::tasks::NamedTask;

    use analysis::choice::ObservedProgram;
    use analysis::neural::{DeviceChoice, NeuralModel, device};
    use analysis::pipeline::Progress;
    use analysis::pipeline::neural::held_out::{
        FIXED_IN_ADVANCE, NeuralHeldOut, NeuralHeldOutConfig, add_to_participant_cv,
        add_to_task_cv, neural_held_out,
    };
    use analysis::pipeline::symbolic::SymbolicAnalysis;

    use super::NeuralRequest;

    /// Evaluates the neural models of `request` on the held-out splits of `analysis` and adds
    /// their rows (means over seeds) to its tables; returns the evaluation as JSON and a text
    /// section for the table.
    pub(in crate::cli) fn add_neural_rows(
        tasks: &[NamedTask],
        observed: &[ObservedProgram],
        request: &NeuralRequest<'_>,
        analysis: &mut SymbolicAnalysis,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> anyhow::Result<(serde_json::Value, String)> {
        let device = device(request.device.parse::<DeviceChoice>()?)?;
        let mut models = Vec::new();
        for name in request.models {
            models.push(NeuralModel::by_name(name).with_context(|| {
                format!("unknown neural model `{name}` (neural-tf, neural-tf+step)")
            })?);
        }
        let config = NeuralHeldOutConfig {
            folds: request.folds,
            fold_seed: request.fold_seed,
            tasks: request.tasks,
            seeds: request.seeds,
            network: request.network,
            hyperparameters: request
                .hyperparameters
                .clone()
                .unwrap_or_else(|| FIXED_IN_ADVANCE.to_owned()),
            splits_dir: request.splits_dir.map(ToOwned::to_owned),
        };
        let neural = neural_held_out(tasks, observed, &models, &config, &device, progress)?;
        if let (Some(cv), Some(rows)) = (analysis.cv.as_mut(), &neural.participants) {
            add_to_participant_cv(cv, rows)?;
        }
        if let (Some(cv), Some(rows)) = (analysis.cv_tasks.as_mut(), &neural.tasks) {
            add_to_task_cv(cv, rows)?;
        }
        let text = render(&neural);
        Ok((serde_json::to_value(&neural)?, text))
    }

    /// The neural section of the table: seeds, hyperparameters, per-seed totals, throughput.
    fn render(neural: &NeuralHeldOut) -> String {
        let seeds: Vec<String> = neural.seeds.iter().map(u64::to_string).collect();
        let mut out = format!(
            "\nneural models (rows above: means over network seeds {}); choice sets: {}; no approximation\n\
             hyperparameters: {}\n",
            seeds.join(", "),
            neural.choice_sets,
            neural.config.hyperparameters
        );
        for (what, evaluation) in [
            ("participant folds", &neural.participants),
            ("held-out tasks", &neural.tasks),
        ] {
            let Some(evaluation) = evaluation else {
                continue;
            };
            out.push_str(&format!("held-out log-likelihood per seed, {what}\n"));
            for model in &evaluation.models {
                let per_seed: Vec<String> =
                    model.per_seed.iter().map(|v| format!("{v:.2}")).collect();
                out.push_str(&format!(
                    "  {:<15} {}   mean {:.2} ± {:.2} (sd over seeds)\n",
                    model.name,
                    per_seed.join(" "),
                    model.held_out_log_likelihood,
                    model.seed_sd
                ));
            }
        }
        out.push_str(&format!(
            "network: transformer on {}, {} parameters; training {:.0} programs/s; scoring {:.0} programs/s ({} programs in {:.1} s)\n",
            neural.device,
            neural.network_parameters,
            neural.train_programs_per_second,
            neural.candidates_per_second,
            neural.scored_programs,
            neural.score_seconds
        ));
        out
    }
}
