//! Benchmarks of the candidate enumeration (docs/modelling.md §4.1-4.3): one mid-size task end to
//! end, its trace search alone, and the compression of the running example's trace.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use analysis::enumerate::{candidate_traces, compress_trace, enumerate_task};
use dsl::Action;

fn task(label: &str) -> &'static dsl::Task {
    &dsl::tasks::lookup(&format!("correa2025/{label}"))
        .expect("bundled task")
        .task
}

fn enumeration(c: &mut Criterion) {
    // Task i: 1809 traces, 193,022 programs.
    let task_i = task("i");
    let mut group = c.benchmark_group("enumerate");
    group.sample_size(20);
    group.bench_function("task_i", |b| {
        b.iter(|| enumerate_task(black_box(task_i), &[]).unwrap())
    });
    group.bench_function("traces_task_i", |b| {
        b.iter(|| candidate_traces(black_box(task_i)).unwrap())
    });
    let running_example: Vec<Action> = "WWWSLJLWWWSRJRWWWS"
        .chars()
        .filter_map(Action::from_letter)
        .collect();
    group.bench_function("compress_running_example", |b| {
        b.iter(|| compress_trace(black_box(&running_example)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, enumeration);
criterion_main!(benches);
