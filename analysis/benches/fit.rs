//! Benchmarks of the symbolic fit (docs/modelling.md §4.5-4.6) on the development data: the six
//! reference models with 51 starts each and profile-likelihood intervals (what `proglab fit`
//! does after building the choice sets), and one evaluation of the gi+step likelihood with its
//! gradient. The choice sets (the enumeration of the ten reference tasks plus the participants'
//! programs) are built once, outside the timed part.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use analysis::choice::{ChoiceSets, ObserveOptions, enumerated_candidates, observed_programs};
use analysis::compare::{CompareOptions, compare};
use analysis::data::read_programs;
use analysis::models::Model;
use analysis::models::likelihood::{Features, Weights, evaluate};

const DEV_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");

fn choice_sets() -> ChoiceSets {
    let file = std::fs::File::open(DEV_DATA).expect("dev data present");
    let rows = read_programs(file).expect("dev data reads");
    let set = dsl::tasks::correa2025();
    let tasks: Vec<&dsl::Task> = set.tasks.iter().map(|t| &t.task).collect();
    let labels: Vec<String> = set.tasks.iter().map(|t| t.label.clone()).collect();
    let (observed, _) = observed_programs(&rows.rows, &tasks, &ObserveOptions::default());
    ChoiceSets::build(
        &labels,
        &observed,
        |t, queries| enumerated_candidates(tasks[t], queries),
        &|_| {},
    )
    .expect("choice sets build")
}

fn fitting(c: &mut Criterion) {
    let sets = choice_sets();
    let features = Features::new(&sets);
    let weights = Weights::all(&sets);
    let models = Model::reference();

    let mut group = c.benchmark_group("fit");
    let gi_step = Model::by_name("gi+step").expect("known model");
    let theta = gi_step.theta(&[0.5, 3.0, 0.5, 0.1]);
    group.bench_function("evaluate_gi_step_with_gradient", |b| {
        b.iter(|| evaluate(&features, &weights, &gi_step, black_box(&theta), true))
    });
    // One iteration takes seconds: the fewest samples criterion allows.
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("reference_models_51_starts_with_profiles", |b| {
        b.iter(|| {
            compare(
                &sets,
                &features,
                black_box(&models),
                &CompareOptions::default(),
                &|_| {},
            )
            .expect("fits")
        })
    });
    group.finish();
}

criterion_group!(benches, fitting);
criterion_main!(benches);
