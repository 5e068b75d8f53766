//! `proglab train-neural`: trains the task-conditioned program transformer (feature `neural`) on a
//! programs.csv-format file and saves it, or with `--cv K` runs `proglab fit --cv K` with these
//! network settings: the symbolic and neural models on the same participant folds and full
//! choice sets, in one held-out table (the neural rows are `neural_rows.rs`).
//!
//! The analyses are `analysis::pipeline::neural`; this file parses the arguments, draws the
//! progress and prints.
//!
//! candle's CPU kernels run on their own spinning thread pool sized by `CANDLE_NUM_THREADS`; for
//! these small models `CANDLE_NUM_THREADS=1` was about twice as fast on 2 cores (see
//! `analysis/benches/neural.rs`).

use std::path::PathBuf;

use analysis::pipeline::neural::NeuralConfig;

use super::DEFAULT_EXPERIMENT;

/// The models of `train-neural --cv` unless `--models` says otherwise.
const DEFAULT_TABLE_MODELS: &str = "null,mdl,step,gi,gi+step,neural-tf,neural-tf+step";

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
    /// Cross-validate with this many participant folds and print the held-out table (as
    /// `proglab fit --cv K` does, with these network settings).
    #[arg(long)]
    pub cv: Option<usize>,
    /// With --cv: also leave one task out at a time.
    #[arg(long)]
    pub cv_tasks: bool,
    /// Models of the --cv table (symbolic and neural names).
    #[arg(long, default_value = DEFAULT_TABLE_MODELS)]
    pub models: String,
    /// Random starts of each symbolic fit (the reference analysis used 50, docs/modelling.md §4.6).
    #[arg(long, default_value_t = 10)]
    pub random_starts: usize,
    /// Seed of the folds and of the first network (initialisation, shuffling, dropout).
    #[arg(long, default_value_t = NeuralConfig::default().seed)]
    pub seed: u64,
    /// With --cv: networks trained with this many seeds (seed, seed + 1, ...).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// With --cv: keep each finished split in this folder and resume from the ones it holds
    /// (as `proglab fit --neural-splits-dir`).
    #[arg(long, value_name = "DIR")]
    pub splits_dir: Option<PathBuf>,
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

    /// `proglab fit --cv K` with these settings; the hyperparameters are recorded as set on the
    /// command line when they differ from the committed defaults.
    fn run_fit(&self, folds: usize) -> anyhow::Result<()> {
        let network = self.network();
        let defaults = NeuralConfig {
            seed: network.seed,
            threads: network.threads,
            score_batch: network.score_batch,
            ..NeuralConfig::default()
        };
        let hyperparameters = (network != defaults)
            .then(|| "set on the command line (not the committed defaults)".to_owned());
        let args = super::fit::FitArgs {
            programs: self.data.clone(),
            experiment: self.experiment.clone(),
            models: self.models.clone(),
            restarts: self.random_starts,
            seed: self.seed,
            cv: Some(folds),
            cv_tasks: self.cv_tasks,
            json: self.json,
            plots: self.plots.clone(),
            no_canonicalise: false,
            no_intervals: true,
            neural_seeds: self.seeds,
            device: self.device.clone(),
            neural_splits_dir: self.splits_dir.clone(),
        };
        super::fit::run(args, network, hyperparameters)
    }
}

#[cfg(not(feature = "neural"))]
pub fn main(_args: TrainNeuralArgs) -> anyhow::Result<()> {
    anyhow::bail!("this proglab was built without neural models: rebuild with `--features neural`")
}

#[cfg(feature = "neural")]
pub use enabled::main;

#[cfg(feature = "neural")]
mod enabled {
    use std::path::Path;

    use anyhow::Context;

    use analysis::neural::{DeviceChoice, device};
    use analysis::pipeline::Progress;
    use analysis::pipeline::neural::{scoring_throughput, train_network};

    use super::TrainNeuralArgs;
    use crate::cli::load_observations;
    use crate::cli::progress::Bars;
    use crate::cli::{experiment_tasks, print_json, print_stdout};

    pub fn main(args: TrainNeuralArgs) -> anyhow::Result<()> {
        if let Some(folds) = args.cv {
            return args.run_fit(folds);
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
