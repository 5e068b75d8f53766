//! Throughput of the neural baseline: training (programs per second, forward and backward) on the
//! development data and scoring (candidates per second) streamed from the candidate iterator.
//!
//! `cargo bench -p analysis --features neural --bench neural [-- DEVICE [SCORE_N]]`, DEVICE = cpu
//! (default) or cuda. The PyTorch reference of the same architecture is
//! `benchmarks/pytorch_reference.py`; run both on the same machine and compare. Each measurement
//! runs on a rayon pool of 1 and of 2 threads.

use std::time::Instant;

use analysis::choice::{ObserveOptions, observed_programs};
use analysis::data::read_programs;
use analysis::enumerate::candidates;
use analysis::neural::score::score_stream;
use analysis::neural::tokens::Vocab;
use analysis::neural::train::{Example, NeuralLm, TaskTable, TrainConfig, train};
use analysis::neural::transformer::TransformerConfig;
use analysis::neural::{DeviceChoice, device, with_threads};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for threads in [1, 2] {
        with_threads(threads, || run(threads).map_err(|e| e.to_string()))??;
    }
    Ok(())
}

fn run(threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let choice: DeviceChoice = args.first().map_or(Ok(DeviceChoice::Cpu), |a| a.parse())?;
    let score_n: usize = args.get(1).map_or(Ok(20_000), |a| a.parse())?;
    let device = device(choice)?;
    let tasks: Vec<&dsl::Task> = dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| &t.task)
        .collect();
    let table = TaskTable::new(&tasks);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/programs-dev.csv"
    ))?;
    let file = read_programs(text.as_bytes())?;
    let (observed, _) = observed_programs(&file.rows, &tasks, &ObserveOptions::default());
    let vocab = Vocab::new(4, 64)?;
    let examples: Vec<Example> = observed
        .iter()
        .map(|o| Example::new(&vocab, o.task, &o.program))
        .collect::<Result<_, _>>()?;
    let config = TransformerConfig::small(vocab);
    println!(
        "device {choice:?}, rayon pool of {threads} threads, model width {} layers {}",
        config.width, config.layers
    );

    for batch_size in [32, 256] {
        let mut lm = NeuralLm::new(config, &device, 0)?;
        let train_config = TrainConfig {
            epochs: 2,
            batch_size,
            ..TrainConfig::default()
        };
        let report = train(&mut lm, &table, &examples, &train_config, &|_| {})?;
        println!(
            "train: batch {batch_size}: {:.0} programs/s ({} programs x {} epochs in {:.2} s)",
            report.programs_per_second, report.examples, train_config.epochs, report.seconds
        );
    }

    let lm = NeuralLm::new(config, &device, 0)?;
    for batch_size in [128, 512, 2048] {
        let began = Instant::now();
        let stream = candidates(tasks[0])?.take(score_n).map(|(p, _)| (p, ()));
        let mut total = 0.0;
        let n = score_stream(&lm, &table, 0, stream, batch_size, &mut |_, (), s| {
            total += s
        })?;
        let seconds = began.elapsed().as_secs_f64();
        println!(
            "score: batch {batch_size}: {:.0} candidates/s ({n} candidates of task a in {seconds:.2} s)",
            n as f64 / seconds
        );
    }
    Ok(())
}
