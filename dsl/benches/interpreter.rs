//! Interpreter throughput over every human program of the bundled data (the raw `program` column of
//! programs-dev.csv, non-skipped rows), reported as executed tokens per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use dsl::tasks::correa2025;
use dsl::{Limits, Program, RunOptions, Task, compact, run};

fn human_programs() -> Vec<(&'static Task, Program)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../analysis/data/programs-dev.csv"
    );
    let mut reader = csv::Reader::from_path(path).expect("programs-dev.csv is bundled");
    let headers = reader.headers().expect("header row").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .expect("published column")
    };
    let (mdp, skipped, program) = (column("mdp_idx"), column("skipped"), column("program"));
    let tasks = &correa2025().tasks;
    reader
        .records()
        .map(|record| record.expect("well-formed row"))
        .filter(|record| &record[skipped] == "False")
        .map(|record| {
            let task = &tasks[record[mdp].parse::<usize>().expect("mdp_idx")].task;
            (
                task,
                compact::parse(&record[program], &Limits::default())
                    .expect("published program parses"),
            )
        })
        .collect()
}

fn interpreter(c: &mut Criterion) {
    let programs = human_programs();
    let options = RunOptions::default();
    let tokens: u64 = programs
        .iter()
        .map(|(task, p)| u64::from(run(task, p, &options).tokens))
        .sum();
    let mut group = c.benchmark_group("interpreter");
    group.throughput(Throughput::Elements(tokens));
    group.bench_function("all human programs", |b| {
        b.iter(|| {
            programs
                .iter()
                .filter(|(task, p)| run(task, p, &options).solved)
                .count()
        })
    });
    let traced = RunOptions {
        trace: true,
        ..options
    };
    group.bench_function("all human programs, traced", |b| {
        b.iter(|| {
            programs
                .iter()
                .map(|(task, p)| run(task, p, &traced).trace.len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, interpreter);
criterion_main!(benches);
