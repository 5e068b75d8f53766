//! `proglab train-neural`: trains the task-conditioned program transformer (feature `neural`) on a
//! programs.csv-format file and saves it, or with `--cv K` cross-validates the symbolic and
//! neural models by participant on the same choice sets and folds and prints one held-out table.
//!
//! On the CPU the choice sets default to the documented approximation of
//! `analysis::neural::choice` (the observed programs plus the top N enumerated programs of a
//! ranking model, whose parameters are fitted on the full choice sets); the output says so, and
//! the symbolic models are scored on the same reduced sets. `--top-n 0` uses the full sets.
//!
//! candle's CPU kernels run on their own spinning thread pool sized by `CANDLE_NUM_THREADS`; for
//! these small models `CANDLE_NUM_THREADS=1` was about twice as fast on 2 cores (see
//! `analysis/benches/neural.rs`).

use std::path::PathBuf;

/// Arguments of `proglab train-neural`.
#[derive(Debug, clap::Args)]
pub struct TrainNeuralArgs {
    /// A programs.csv-format file.
    #[arg(long)]
    pub data: PathBuf,
    /// The experiment whose tasks the rows' `mdp_idx` name.
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    /// Where the network runs: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where to save the trained weights (safetensors; the configuration is written beside them
    /// with extension .json). Required without --cv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Cross-validate with this many participant folds and print the held-out table.
    #[arg(long)]
    pub cv: Option<usize>,
    /// Models of the --cv table (symbolic and neural names).
    #[arg(
        long,
        default_value = "null,mdl,step,gi,gi+step,neural-tf,neural-tf+step"
    )]
    pub models: String,
    /// Choice sets: the observed programs plus the top N enumerated programs of --rank-model;
    /// 0 = the full sets. Default: 1000 on cpu, the full sets on cuda.
    #[arg(long)]
    pub top_n: Option<usize>,
    /// The symbolic model whose top N programs form the reduced sets.
    #[arg(long, default_value = "gi+step")]
    pub rank_model: String,
    /// Random starts of each symbolic fit (SPEC: 50).
    #[arg(long, default_value_t = 10)]
    pub random_starts: usize,
    /// Seed of the folds, the initialisation, the shuffling and the dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model width.
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f32,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Programs per training batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Programs per scoring batch.
    #[arg(long, default_value_t = 128)]
    pub score_batch: usize,
    #[arg(long, default_value_t = 3e-3)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Most tokens of a program sequence.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Threads of the rayon pool the network runs in.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// After training, stream this many candidates of every task through the model and report
    /// the scoring throughput (0 = every candidate).
    #[arg(long)]
    pub score_candidates: Option<u64>,
    /// With --cv: write the comparison figures (SVG and PNG, held-out log-likelihood of every
    /// model included) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Whether a comma-separated model list names a neural model (`neural-...`).
pub fn lists_neural(models: &str) -> bool {
    models
        .split(',')
        .any(|name| name.trim().starts_with("neural-"))
}

/// What `proglab fit` passes on when its model list names neural models.
#[derive(Debug, Clone)]
pub struct FitNeural {
    pub programs: PathBuf,
    pub experiment: String,
    pub models: String,
    pub cv: Option<usize>,
    pub restarts: usize,
    pub seed: u64,
    pub canonicalise: bool,
    pub plots: Option<PathBuf>,
    pub json: bool,
}

impl TrainNeuralArgs {
    /// The defaults of `train-neural --cv` with the fit's file, experiment, models, folds,
    /// restarts, seed, plot folder and output form.
    pub fn for_fit(fit: FitNeural) -> TrainNeuralArgs {
        TrainNeuralArgs {
            data: fit.programs,
            experiment: fit.experiment,
            device: "cpu".into(),
            out: None,
            cv: fit.cv,
            models: fit.models,
            top_n: None,
            rank_model: "gi+step".into(),
            random_starts: fit.restarts,
            seed: fit.seed,
            width: 64,
            layers: 2,
            heads: 4,
            dropout: 0.1,
            epochs: 20,
            batch_size: 32,
            score_batch: 128,
            learning_rate: 3e-3,
            weight_decay: 0.05,
            max_tokens: 64,
            threads: 1,
            score_candidates: None,
            plots: fit.plots,
            json: fit.json,
        }
    }
}

/// `proglab fit` with neural models in its list: the symbolic models are fitted and
/// cross-validated on the same choice sets as the neural ones (on the CPU, the reduced sets), and
/// every model appears in one held-out table, JSON object and set of figures.
pub fn fit_with_neural(fit: FitNeural) -> anyhow::Result<()> {
    anyhow::ensure!(
        fit.cv.is_some(),
        "neural models are compared on held-out participants only: add --cv K"
    );
    anyhow::ensure!(
        fit.canonicalise,
        "neural models use canonical programs: drop --no-canonicalise"
    );
    main(TrainNeuralArgs::for_fit(fit))
}

#[cfg(not(feature = "neural"))]
pub fn main(_args: TrainNeuralArgs) -> anyhow::Result<()> {
    anyhow::bail!("this proglab was built without neural models: rebuild with `--features neural`")
}

#[cfg(feature = "neural")]
pub use enabled::{NeuralTable, main, neural_table};

#[cfg(feature = "neural")]
mod enabled {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use anyhow::Context;
    use indicatif::{ProgressBar, ProgressStyle};
    use serde::Serialize;

    use analysis::choice::{
        ChoiceSets, ObserveOptions, ObservedProgram, TaskCandidates, observed_programs,
    };
    use analysis::compare::{CompareOptions, Comparison, Progress, compare};
    use analysis::cv::{CvOptions, CvResult, cross_validate};
    use analysis::data::read_programs;
    use analysis::enumerate::enumerate_task_with_progress;
    use analysis::fit::{FitOptions, fit};
    use analysis::models::Model;
    use analysis::models::likelihood::{Features, Weights};
    use analysis::neural::choice::{Approximation, ChoiceMode, RankBy, build};
    use analysis::neural::cv::{FoldFit, NeuralCvOptions, NeuralCvProgress};
    use analysis::neural::score::score_stream;
    use analysis::neural::tokens::Vocab;
    use analysis::neural::train::{
        Example, NeuralLm, TaskTable, TrainConfig, TrainProgress, train,
    };
    use analysis::neural::transformer::TransformerConfig;
    use analysis::neural::{DeviceChoice, NeuralModel, device, split_models, with_threads};
    use dsl::Task;

    use super::TrainNeuralArgs;
    use crate::cli::{experiment_tasks, print_json, print_stdout};

    /// Reduced sets hold this many top programs per task on the CPU unless --top-n says otherwise.
    const CPU_TOP_N: usize = 1000;

    fn bar(len: u64, template: &str) -> ProgressBar {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    }

    fn model_config(args: &TrainNeuralArgs) -> anyhow::Result<TransformerConfig> {
        let vocab = Vocab::new(dsl::Limits::default().subroutines, args.max_tokens)?;
        let config = TransformerConfig {
            width: args.width,
            layers: args.layers,
            heads: args.heads,
            dropout: args.dropout,
            ..TransformerConfig::small(vocab)
        };
        config.check()?;
        Ok(config)
    }

    fn train_config(args: &TrainNeuralArgs) -> TrainConfig {
        TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.learning_rate,
            weight_decay: args.weight_decay,
            seed: args.seed,
        }
    }

    /// The experiment's tasks and labels and the file's observations.
    fn load(
        args: &TrainNeuralArgs,
    ) -> anyhow::Result<(Vec<Task>, Vec<String>, Vec<ObservedProgram>)> {
        let named = experiment_tasks(&args.experiment)?;
        let tasks: Vec<Task> = named.iter().map(|t| t.task.clone()).collect();
        let labels: Vec<String> = named.iter().map(|t| t.label.clone()).collect();
        let file = std::fs::File::open(&args.data)
            .with_context(|| format!("cannot open {}", args.data.display()))?;
        let rows = read_programs(file)?;
        let refs: Vec<&Task> = tasks.iter().collect();
        let (observed, errors) = observed_programs(&rows.rows, &refs, &ObserveOptions::default());
        for error in rows.errors.iter().chain(&errors) {
            eprintln!(
                "{}: line {}: {} (row left out)",
                args.data.display(),
                error.line,
                error.message
            );
        }
        if observed.is_empty() {
            anyhow::bail!("{}: no usable observations", args.data.display());
        }
        Ok((tasks, labels, observed))
    }

    pub fn main(args: TrainNeuralArgs) -> anyhow::Result<()> {
        let choice: DeviceChoice = args.device.parse()?;
        let device = device(choice)?;
        if args.cv.is_some() {
            let table = neural_table(&args, &device)?;
            return if args.json {
                print_json(&table)
            } else {
                print_stdout(&table.render())
            };
        }
        let out = args
            .out
            .clone()
            .context("--out is required unless --cv is given")?;
        let (tasks, _, observed) = load(&args)?;
        let refs: Vec<&Task> = tasks.iter().collect();
        let config = model_config(&args)?;
        let examples: Vec<Example> = observed
            .iter()
            .map(|o| Example::new(&config.vocab, o.task, &o.program))
            .collect::<Result<_, _>>()?;
        let table = TaskTable::new(&refs);
        let (report, lm) = with_threads(args.threads, || -> anyhow::Result<_> {
            let mut lm = NeuralLm::new(config, &device, args.seed)?;
            let progress = training_bar(0);
            let report = train(&mut lm, &table, &examples, &train_config(&args), &|event| {
                progress(event)
            })?;
            Ok((report, lm))
        })??;
        lm.save(&out)?;
        let mut text = format!(
            "trained on {} programs ({} parameters, {} epochs, {:.1} s, {:.0} programs/s); final loss {:.4} nats/token\n\
             saved {} and {}\n",
            report.examples,
            lm.n_parameters(),
            report.epoch_loss.len(),
            report.seconds,
            report.programs_per_second,
            report.epoch_loss.last().copied().unwrap_or(f64::NAN),
            out.display(),
            out.with_extension("json").display()
        );
        if let Some(limit) = args.score_candidates {
            text.push_str(&with_threads(args.threads, || {
                score_throughput(&lm, &refs, &table, limit, args.score_batch)
            })??);
        }
        if args.json {
            print_json(&serde_json::json!({ "train": report, "model": out }))
        } else {
            print_stdout(&text)
        }
    }

    /// A progress callback for training with a bar over optimiser steps.
    fn training_bar(fold: usize) -> impl Fn(TrainProgress) {
        let bar = bar(
            0,
            "{msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})",
        );
        move |event| match event {
            TrainProgress::Started { steps } => {
                bar.set_length(steps as u64);
                bar.set_position(0);
                bar.set_message(format!("training (fold {fold})"));
            }
            TrainProgress::Step { loss } => {
                bar.inc(1);
                if bar.position().is_multiple_of(20) {
                    bar.set_message(format!("training (fold {fold}, loss {loss:.3})"));
                }
            }
            TrainProgress::Epoch { .. } => {
                if bar.position() >= bar.length().unwrap_or(0) {
                    bar.finish_and_clear();
                }
            }
        }
    }

    fn score_throughput(
        lm: &NeuralLm,
        tasks: &[&Task],
        table: &TaskTable,
        limit: u64,
        batch_size: usize,
    ) -> anyhow::Result<String> {
        let mut text = String::new();
        let (mut total, mut seconds) = (0usize, 0.0);
        for (index, task) in tasks.iter().enumerate() {
            let progress = bar(0, "{msg} {pos} candidates ({elapsed}, {per_sec})");
            progress.set_message(format!("scoring task {index}"));
            let began = Instant::now();
            let stream = analysis::enumerate::candidates(task)?
                .take(if limit == 0 {
                    usize::MAX
                } else {
                    limit as usize
                })
                .map(|(p, _)| (p, ()));
            let n = score_stream(lm, table, index, stream, batch_size, &mut |_, (), _| {
                progress.inc(1)
            })?;
            progress.finish_and_clear();
            let elapsed = began.elapsed().as_secs_f64();
            total += n;
            seconds += elapsed;
            text.push_str(&format!("task {index}: {n} candidates in {elapsed:.2} s\n"));
        }
        text.push_str(&format!(
            "scored {total} candidates (enumerated where scored) in {seconds:.2} s: {:.0} candidates/s\n",
            total as f64 / seconds.max(1e-9)
        ));
        Ok(text)
    }

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
        /// Figures written (with --plots).
        pub plots: Vec<String>,
    }

    impl NeuralTable {
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
                let folds: Vec<String> =
                    model.per_fold.iter().map(|ll| format!("{ll:.1}")).collect();
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

    /// Builds the choice sets (reduced or full), cross-validates the symbolic and the neural
    /// models of `args.models` on them with the same folds, and returns the table.
    pub fn neural_table(
        args: &TrainNeuralArgs,
        device: &analysis::neural::Device,
    ) -> anyhow::Result<NeuralTable> {
        let folds = args.cv.context("--cv is needed for the table")?;
        let (symbolic_list, neural_models) = split_models(&args.models);
        let symbolic = if symbolic_list.is_empty() {
            Vec::new()
        } else {
            Model::parse_list(&symbolic_list)?
        };
        let (tasks, labels, observed) = load(args)?;
        let refs: Vec<&Task> = tasks.iter().collect();
        let on_cpu = matches!(device, analysis::neural::Device::Cpu);
        let top_n = args.top_n.unwrap_or(if on_cpu { CPU_TOP_N } else { 0 });
        let fit_options = FitOptions {
            random_starts: args.random_starts,
            seed: args.seed,
            ..FitOptions::default()
        };
        let mode = if top_n == 0 {
            ChoiceMode::Full
        } else {
            let rank_model = Model::by_name(&args.rank_model)?;
            let full = full_choice_sets(&refs, &labels, &observed)?;
            let features = Features::new(&full);
            let spinner = bar(0, "{msg} ({elapsed})");
            spinner.set_message(format!(
                "fitting the ranking model {} on the full sets",
                rank_model.name
            ));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let fitted = fit(
                &features,
                &Weights::all(&full),
                &rank_model,
                &fit_options,
                &|| {},
            )?;
            spinner.finish_and_clear();
            ChoiceMode::Reduced {
                top_n,
                rank: RankBy {
                    model: rank_model,
                    params: fitted.params,
                },
            }
        };
        let streaming = bar(0, "{msg} {pos} candidates ({elapsed}, {per_sec})");
        let sets = build(&refs, &labels, &observed, &mode, &|task, done| {
            streaming.set_message(format!("choice set of task {}", labels[task]));
            streaming.set_position(done);
        })?;
        streaming.finish_and_clear();

        let features = Features::new(&sets.choice_sets);
        let cv_options = CvOptions {
            folds,
            seed: args.seed,
            fit: fit_options,
        };
        let fits = bar(
            (symbolic.len() * folds) as u64,
            "symbolic fits [{bar:30}] {pos}/{len} ({elapsed})",
        );
        let mut cv = cross_validate(
            &sets.choice_sets,
            &features,
            &symbolic,
            &cv_options,
            &|_, _| fits.inc(1),
        )?;
        fits.finish_and_clear();
        let mut k: BTreeMap<String, usize> = symbolic
            .iter()
            .map(|m| (m.name.to_owned(), m.k()))
            .collect();
        let comparison = if symbolic.is_empty() {
            None
        } else {
            let options = CompareOptions {
                fit: fit_options,
                intervals: false,
            };
            let fits = bar(
                symbolic.len() as u64,
                "symbolic fits on all participants [{bar:30}] {pos}/{len} ({elapsed})",
            );
            let comparison = compare(
                &sets.choice_sets,
                &features,
                &symbolic,
                &options,
                &|event| {
                    if let Progress::ModelDone { .. } = event {
                        fits.inc(1);
                    }
                },
            )?;
            fits.finish_and_clear();
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
                seed: args.seed,
                model: model_config(args)?,
                train: train_config(args),
                batch_size: args.score_batch,
            };
            let result = with_threads(args.threads, || {
                neural_cv(&sets, &refs, &neural_models, &options, device)
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
        if let Some(dir) = &args.plots {
            match &table.comparison {
                Some(comparison) => {
                    table.plots = analysis::plots::write_plots(dir, comparison, Some(&cv))?
                        .into_iter()
                        .map(|p| p.display().to_string())
                        .collect();
                }
                None => eprintln!("no figures: they need at least one symbolic model"),
            }
        }
        table.cv = cv;
        table.k = k;
        Ok(table)
    }

    fn neural_cv(
        sets: &analysis::neural::choice::ProgramChoiceSets,
        tasks: &[&Task],
        models: &[NeuralModel],
        options: &NeuralCvOptions,
        device: &analysis::neural::Device,
    ) -> anyhow::Result<analysis::neural::cv::NeuralCvResult> {
        let fold_bar = std::sync::Mutex::new(None::<Box<dyn Fn(TrainProgress)>>);
        let scoring = bar(0, "{msg} [{bar:30}] {pos}/{len} programs ({elapsed})");
        let result =
            analysis::neural::cv::cross_validate(sets, tasks, models, options, device, &|event| {
                match event {
                    NeuralCvProgress::Training { fold } => {
                        if let Ok(mut current) = fold_bar.lock() {
                            *current = Some(Box::new(training_bar(fold)));
                        }
                    }
                    NeuralCvProgress::Train(event) => {
                        if let Ok(current) = fold_bar.lock()
                            && let Some(progress) = current.as_ref()
                        {
                            progress(event);
                        }
                    }
                    NeuralCvProgress::Scoring { fold, programs } => {
                        scoring.set_length(programs as u64);
                        scoring.set_position(0);
                        scoring.set_message(format!("scoring (fold {fold})"));
                    }
                    NeuralCvProgress::Scored { done } => scoring.set_position(done as u64),
                }
            })?;
        scoring.finish_and_clear();
        Ok(result)
    }

    /// The full keyed choice sets (SPEC §4.4), for fitting the ranking model.
    fn full_choice_sets(
        tasks: &[&Task],
        labels: &[String],
        observed: &[ObservedProgram],
    ) -> anyhow::Result<ChoiceSets> {
        let progress = bar(0, "{msg} [{bar:30}] {pos}/{len} traces ({elapsed})");
        let sets = ChoiceSets::build(
            labels,
            observed,
            |index, queries| {
                progress.set_message(format!("enumerating task {}", labels[index]));
                let enumeration =
                    enumerate_task_with_progress(tasks[index], queries, &|done, total| {
                        progress.set_length(total as u64);
                        progress.set_position(done as u64);
                    })?;
                Ok(TaskCandidates {
                    programs: enumeration.programs,
                    histogram: enumeration.histogram,
                    found: enumeration.found,
                })
            },
            &|_| {},
        )?;
        progress.finish_and_clear();
        Ok(sets)
    }
}
