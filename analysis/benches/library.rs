//! Benchmarks of the corpus library by compression (docs/modelling.md §4.10) on the development
//! data (1,162 canonical programs): the whole greedy search, with and without bodies with a hole.
//! Reading and canonicalising the programs happens once, outside the timed part.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use analysis::choice::{ObserveOptions, ObservedProgram, observed_programs};
use analysis::data::read_programs;
use analysis::library::{LibraryConfig, build_library};

const DEV_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");

fn corpus() -> (Vec<ObservedProgram>, Vec<String>) {
    let file = std::fs::File::open(DEV_DATA).expect("dev data present");
    let rows = read_programs(file).expect("dev data reads");
    let set = dsl::tasks::correa2025();
    let tasks: Vec<&dsl::Task> = set.tasks.iter().map(|t| &t.task).collect();
    let labels = set.tasks.iter().map(|t| t.label.clone()).collect();
    let (observed, _) = observed_programs(&rows.rows, &tasks, &ObserveOptions::default());
    (observed, labels)
}

fn library(c: &mut Criterion) {
    let (observed, labels) = corpus();
    let mut group = c.benchmark_group("library");
    // One search takes up to seconds: the fewest samples criterion allows.
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for holes in [false, true] {
        let config = LibraryConfig {
            holes,
            ..LibraryConfig::default()
        };
        let name = if holes {
            "dev_data_with_holes"
        } else {
            "dev_data_without_holes"
        };
        group.bench_function(name, |b| {
            b.iter(|| build_library(black_box(&observed), &labels, &config))
        });
    }
    group.finish();
}

criterion_group!(benches, library);
criterion_main!(benches);
