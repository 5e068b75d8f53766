//! `proglab train-neural`: trains the task-conditioned program transformer (feature `neural`) on a
//! programs.csv-format file and saves it, or with `--cv K` cross-validates the symbolic and
//! neural models by participant on the same choice sets and folds and prints one held-out table.
//!
//! The analyses are `analysis::pipeline::neural`; this file parses the arguments, draws the
//! progress and prints. On the CPU the choice sets default to the reduced approximation described
//! there; the output says so. `--top-n 0` uses the full sets.
//!
//! candle's CPU kernels run on their own spinning thread pool sized by `CANDLE_NUM_THREADS`; for
//! these small models `CANDLE_NUM_THREADS=1` was about twice as fast on 2 cores (see
//! `analysis/benches/neural.rs`).

use std::path::PathBuf;

use analysis::pipeline::neural::{NeuralConfig, NeuralTableConfig};

use super::DEFAULT_EXPERIMENT;

/// Arguments of `proglab train-neural`.
#[derive(Debug, clap::Args)]
pub struct TrainNeuralArgs {
    /// A programs.csv-format file.
    #[arg(long)]
    pub data: PathBuf,
    /// The experiment whose tasks the rows' `mdp_idx` name.
    #[arg(long, default_value = DEFAULT_EXPERIMENT)]
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
    #[arg(long, default_value_t = NeuralTableConfig::default().models)]
    pub models: String,
    /// Choice sets: the observed programs plus the top N enumerated programs of --rank-model;
    /// 0 = the full sets. Default: 1000 on cpu, the full sets on cuda.
    #[arg(long)]
    pub top_n: Option<usize>,
    /// The symbolic model whose top N programs form the reduced sets.
    #[arg(long, default_value_t = NeuralTableConfig::default().rank_model)]
    pub rank_model: String,
    /// Random starts of each symbolic fit (the reference analysis used 50, docs/modelling.md §4.6).
    #[arg(long, default_value_t = NeuralTableConfig::default().random_starts)]
    pub random_starts: usize,
    /// Seed of the folds, the initialisation, the shuffling and the dropout.
    #[arg(long, default_value_t = NeuralConfig::default().seed)]
    pub seed: u64,
    /// Model width.
    #[arg(long, default_value_t = NeuralConfig::default().width)]
    pub width: usize,
    #[arg(long, default_value_t = NeuralConfig::default().layers)]
    pub layers: usize,
    #[arg(long, default_value_t = NeuralConfig::default().heads)]
    pub heads: usize,
    #[arg(long, default_value_t = NeuralConfig::default().dropout)]
    pub dropout: f32,
    #[arg(long, default_value_t = NeuralConfig::default().epochs)]
    pub epochs: usize,
    /// Programs per training batch.
    #[arg(long, default_value_t = NeuralConfig::default().batch_size)]
    pub batch_size: usize,
    /// Programs per scoring batch.
    #[arg(long, default_value_t = NeuralConfig::default().score_batch)]
    pub score_batch: usize,
    #[arg(long, default_value_t = NeuralConfig::default().learning_rate)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = NeuralConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Most tokens of a program sequence.
    #[arg(long, default_value_t = NeuralConfig::default().max_tokens)]
    pub max_tokens: usize,
    /// Threads of the rayon pool the network runs in.
    #[arg(long, default_value_t = NeuralConfig::default().threads)]
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

#[cfg(feature = "neural")]
impl TrainNeuralArgs {
    /// The network and training settings these arguments name.
    fn network(&self) -> NeuralConfig {
        NeuralConfig {
            width: self.width,
            layers: self.layers,
            heads: self.heads,
            dropout: self.dropout,
            max_tokens: self.max_tokens,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            score_batch: self.score_batch,
            seed: self.seed,
            threads: self.threads,
        }
    }

    /// The held-out table's settings these arguments name.
    fn table(&self) -> NeuralTableConfig {
        NeuralTableConfig {
            models: self.models.clone(),
            top_n: self.top_n,
            rank_model: self.rank_model.clone(),
            random_starts: self.random_starts,
            network: self.network(),
            plots: self.plots.clone(),
        }
    }
}

#[cfg(not(feature = "neural"))]
pub fn main(_args: TrainNeuralArgs) -> anyhow::Result<()> {
    anyhow::bail!("this proglab was built without neural models: rebuild with `--features neural`")
}

#[cfg(not(feature = "neural"))]
pub(super) fn table_main(
    _data: &std::path::Path,
    _experiment: &str,
    _device: &str,
    _folds: usize,
    _config: &NeuralTableConfig,
    _json: bool,
) -> anyhow::Result<()> {
    anyhow::bail!("this proglab was built without neural models: rebuild with `--features neural`")
}

#[cfg(feature = "neural")]
pub use enabled::main;
#[cfg(feature = "neural")]
pub(super) use enabled::table_main;

#[cfg(feature = "neural")]
mod enabled {
    use std::path::Path;

    use anyhow::Context;

    use analysis::neural::{DeviceChoice, device};
    use analysis::pipeline::Progress;
    use analysis::pipeline::neural::{
        NeuralTableConfig, neural_table, scoring_throughput, train_network,
    };

    use super::TrainNeuralArgs;
    use crate::cli::load_observations;
    use crate::cli::progress::Bars;
    use crate::cli::{experiment_tasks, print_json, print_stdout};

    pub fn main(args: TrainNeuralArgs) -> anyhow::Result<()> {
        if let Some(folds) = args.cv {
            return table_main(
                &args.data,
                &args.experiment,
                &args.device,
                folds,
                &args.table(),
                args.json,
            );
        }
        let device = device(args.device.parse::<DeviceChoice>()?)?;
        let out = args
            .out
            .clone()
            .context("--out is required unless --cv is given")?;
        let tasks = experiment_tasks(&args.experiment)?;
        let observations = load_observations(&args.data, &tasks, true)?;
        warn_excluded(&args.data, &observations.excluded);
        let network = args.network();
        let bars = Bars::default();
        let show = |event: Progress<'_>| bars.show(event);
        let (lm, report) = train_network(&tasks, &observations.observed, &network, &device, &show)?;
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
            let throughput = scoring_throughput(&lm, &tasks, limit, &network, &show)?;
            let (mut total, mut seconds) = (0usize, 0.0);
            for task in &throughput {
                total += task.candidates;
                seconds += task.seconds;
                text.push_str(&format!(
                    "task {}: {} candidates in {:.2} s\n",
                    task.task, task.candidates, task.seconds
                ));
            }
            text.push_str(&format!(
                "scored {total} candidates (enumerated where scored) in {seconds:.2} s: {:.0} candidates/s\n",
                total as f64 / seconds.max(1e-9)
            ));
        }
        if args.json {
            print_json(&serde_json::json!({ "train": report, "model": out }))
        } else {
            print_stdout(&text)
        }
    }

    /// The held-out table of `train-neural --cv` and of `fit` with neural models.
    pub(crate) fn table_main(
        data: &Path,
        experiment: &str,
        device_name: &str,
        folds: usize,
        config: &NeuralTableConfig,
        json: bool,
    ) -> anyhow::Result<()> {
        let device = device(device_name.parse::<DeviceChoice>()?)?;
        let tasks = experiment_tasks(experiment)?;
        let observations = load_observations(data, &tasks, true)?;
        warn_excluded(data, &observations.excluded);
        let bars = Bars::default();
        let table = neural_table(
            &tasks,
            &observations.observed,
            folds,
            config,
            &device,
            &|event| bars.show(event),
        )?;
        if config.plots.is_some() && table.comparison.is_none() {
            eprintln!("no figures: they need at least one symbolic model");
        }
        if json {
            print_json(&table)
        } else {
            print_stdout(&table.render())
        }
    }

    fn warn_excluded(data: &Path, excluded: &[analysis::data::RowError]) {
        for error in excluded {
            eprintln!(
                "{}: line {}: {} (row left out)",
                data.display(),
                error.line,
                error.message
            );
        }
    }
}
