//! Throughput of the neural baseline: training (programs per second, forward and backward) on the
//! development data and scoring (candidates per second) streamed from the candidate iterator.
//!
//! `cargo bench -p analysis --features neural --bench neural [-- DEVICE [SCORE_N]]`, DEVICE = cpu
//! (default) or cuda. The PyTorch reference of the same architecture is
//! `benchmarks/pytorch_reference.py`; run both on the same machine and compare. Each measurement
//! runs on a rayon pool of 1 and of 2 threads.
//!
//! The fast CPU scorer ([`analysis::neural::fast`]) is measured last, on the candidates of one
//! task: the candidate stream alone, the stream with tokenising, a one-thread profile of the
//! scorer's parts, and the whole scorer streamed on 1 and 2 threads, with the time all 14,758,615
//! candidates of the ten tasks would take at that rate; CPU seconds are printed beside the wall
//! times, since a busy machine stretches the latter. Environment: `FAST_TASK` (task index,
//! default 3; `all` times every candidate of the ten tasks instead, one fold's scoring),
//! `FAST_N` (candidates, default 300,000; 0 for the whole task), `FAST_CHUNK` (sequences per
//! trie), `FAST_WINDOW` (programs per window of the stream), `FAST_ROWS` (trie nodes per block
//! of matrix products), `FAST_THREADS` (the thread counts of the streamed runs, default `1,2`;
//! with `FAST_TASK=all`, one count, default 2), `FAST_ONLY=1` to skip the candle measurements. Measured on the 2-core
//! development machine: see the fast scorer's module docs.

use std::time::Instant;

use analysis::choice::{ObserveOptions, observed_programs};
use analysis::data::read_programs;
use analysis::enumerate::candidates;
use analysis::neural::fast::{FastScorer, Profile};
use analysis::neural::score::score_stream;
use analysis::neural::tokens::Vocab;
use analysis::neural::train::{Example, NeuralLm, TaskTable, TrainConfig, train};
use analysis::neural::transformer::TransformerConfig;
use analysis::neural::{DeviceChoice, device, with_threads};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var("FAST_ONLY").is_err() {
        for threads in [1, 2] {
            with_threads(threads, || run(threads).map_err(|e| e.to_string()))??;
        }
    }
    fast()
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

/// Candidates of all ten tasks.
const ALL_CANDIDATES: f64 = 14_758_615.0;

fn env_usize(name: &str, default: usize) -> Result<usize, Box<dyn std::error::Error>> {
    match std::env::var(name) {
        Ok(text) => Ok(text.trim().parse()?),
        Err(_) => Ok(default),
    }
}

/// This thread's time on the CPU (Linux), to tell the cost of the work from waiting for a busy
/// machine.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

/// This process's user and system time (Linux, clock ticks of 1/100 s).
fn process_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = text.rsplit(')').next()?.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// The fast scorer on one task's candidates (see the module docs).
fn fast() -> Result<(), Box<dyn std::error::Error>> {
    let tasks: Vec<&dsl::Task> = dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| &t.task)
        .collect();
    let table = TaskTable::new(&tasks);
    let all = std::env::var("FAST_TASK").as_deref() == Ok("all");
    let vocab = Vocab::new(4, 64)?;
    let lm = NeuralLm::new(
        TransformerConfig::small(vocab),
        &analysis::neural::Device::Cpu,
        0,
    )?;
    let mut scorer = FastScorer::new(&lm, &table)?;
    let (chunk, window, rows) = (
        env_usize("FAST_CHUNK", 0)?,
        env_usize("FAST_WINDOW", 0)?,
        env_usize("FAST_ROWS", 0)?,
    );
    if chunk > 0 {
        scorer = scorer.with_chunk(chunk);
    }
    if window > 0 {
        scorer = scorer.with_window(window);
    }
    if rows > 0 {
        scorer = scorer.with_rows(rows);
    }
    if all {
        return fast_all(&tasks, &scorer);
    }
    let task = env_usize("FAST_TASK", 3)?;
    let limit = match env_usize("FAST_N", 300_000)? {
        0 => usize::MAX,
        n => n,
    };
    let stream = || -> Result<_, Box<dyn std::error::Error>> {
        Ok(candidates(tasks[task])?.take(limit).map(|(p, _)| p))
    };

    let began = Instant::now();
    let n = stream()?.count();
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "fast: task {task}, {n} candidates; the stream alone: {:.0} candidates/s",
        n as f64 / seconds
    );
    let began = Instant::now();
    let mut sequences = Vec::with_capacity(n);
    for program in stream()? {
        sequences.push(vocab.encode(&program)?);
    }
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "fast: stream and tokenising: {:.0} candidates/s",
        n as f64 / seconds
    );

    // Where one thread's time goes.
    let mut profile = Profile::default();
    let began = Instant::now();
    let cpu_began = thread_cpu_seconds();
    let scores = scorer.profile(task, &sequences, &mut profile)?;
    let seconds = began.elapsed().as_secs_f64();
    if let (Some(end), Some(start)) = (thread_cpu_seconds(), cpu_began) {
        println!(
            "fast: profile: {:.2} s wall, {:.2} s on the CPU ({:.0} programs per CPU second)",
            seconds,
            end - start,
            n as f64 / (end - start)
        );
    }
    drop(sequences);
    let part = |d: std::time::Duration| {
        format!(
            "{:.2} s ({:.0}%)",
            d.as_secs_f64(),
            100.0 * d.as_secs_f64() / profile.total().as_secs_f64()
        )
    };
    println!(
        "fast: profile, 1 thread, scoring only: {:.0} programs/s, {:.2} nodes/program, {:.2} us/node; \
         trie {}, inputs {}, matmul {}, attention {}, layer norm and relu {}, softmax {}",
        n as f64 / seconds,
        profile.nodes as f64 / n as f64,
        1e6 * seconds / profile.nodes as f64,
        part(profile.trie),
        part(profile.inputs),
        part(profile.matmul),
        part(profile.attention),
        part(profile.elementwise),
        part(profile.softmax),
    );

    let thread_counts: Vec<usize> = std::env::var("FAST_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    for threads in thread_counts {
        let cpu_began = process_cpu_seconds();
        let (seconds, stats, total) = with_threads(threads, || {
            let began = Instant::now();
            let mut total = 0.0;
            let mut count = 0u64;
            let programs = candidates(tasks[task])
                .map_err(|e| e.to_string())?
                .take(limit)
                .map(|(p, _)| p);
            let stats = scorer
                .score_stream(task, programs, |index, score| {
                    debug_assert_eq!(index, count);
                    count += 1;
                    total += score;
                })
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((began.elapsed().as_secs_f64(), stats, total))
        })??;
        let cpu = match (process_cpu_seconds(), cpu_began) {
            (Some(end), Some(start)) => format!(", {:.1} CPU seconds", end - start),
            _ => String::new(),
        };
        let check: f64 = scores.iter().sum();
        assert!((total - check).abs() < 1e-6 * check.abs().max(1.0));
        let rate = n as f64 / seconds;
        println!(
            "fast: {threads} thread(s), streamed: {rate:.0} programs/s ({n} in {seconds:.1} s{cpu}, \
             {:.2} nodes/program); all {ALL_CANDIDATES} candidates: {:.1} min at this rate",
            stats.evaluated as f64 / n as f64,
            ALL_CANDIDATES / rate / 60.0
        );
    }
    Ok(())
}

/// Every candidate of the ten tasks through the fast scorer on a pool of `FAST_THREADS` (default
/// 2) threads, task by task: the whole of a fold's scoring, timed directly rather than
/// extrapolated from one task.
fn fast_all(tasks: &[&dsl::Task], scorer: &FastScorer) -> Result<(), Box<dyn std::error::Error>> {
    let threads = env_usize("FAST_THREADS", 2)?;
    let cpu_began = process_cpu_seconds();
    let began = Instant::now();
    let (mut programs, mut nodes) = (0u64, 0u64);
    for (index, task) in tasks.iter().enumerate() {
        let task_began = Instant::now();
        let (count, stats) = with_threads(threads, || {
            let mut count = 0u64;
            let stats = scorer
                .score_candidates(index, task, |_, _| count += 1)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((count, stats))
        })??;
        let seconds = task_began.elapsed().as_secs_f64();
        println!(
            "fast all: task {index}: {count} candidates in {seconds:.1} s ({:.0} programs/s, {:.2} nodes/program)",
            count as f64 / seconds,
            stats.evaluated as f64 / count.max(1) as f64
        );
        programs += count;
        nodes += stats.evaluated as u64;
    }
    let seconds = began.elapsed().as_secs_f64();
    let cpu = match (process_cpu_seconds(), cpu_began) {
        (Some(end), Some(start)) => format!(", {:.1} CPU seconds", end - start),
        _ => String::new(),
    };
    println!(
        "fast all: {threads} thread(s), {programs} candidates of the ten tasks in {:.2} min{cpu} \
         ({:.0} programs/s, {:.2} nodes/program)",
        seconds / 60.0,
        programs as f64 / seconds,
        nodes as f64 / programs.max(1) as f64
    );
    Ok(())
}
