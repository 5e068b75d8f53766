//! The models on the real choice sets: the reference tasks' enumerations plus the participant
//! programs of `analysis/data/programs-dev.csv`. The choice sets are built once per test binary.

use std::sync::OnceLock;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use analysis::choice::{
    ChoiceSets, ObserveOptions, ObservedProgram, enumerated_candidates, observed_programs,
};
use analysis::compare::{CompareOptions, compare};
use analysis::data::read_programs;
use analysis::fit::{FitOptions, Interval, fit, profile_intervals};
use analysis::models::Model;
use analysis::models::library::LibraryData;
use analysis::models::likelihood::{Features, Weights, simulate};

const DEV_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");

/// The observed programs of the development data's rows on the tasks `keep` accepts, and their
/// choice sets.
fn observed_sets(keep: impl Fn(usize) -> bool) -> (Vec<ObservedProgram>, ChoiceSets) {
    let file = std::fs::File::open(DEV_DATA).expect("dev data present");
    let rows = read_programs(file).expect("dev data reads");
    assert!(rows.errors.is_empty(), "{:?}", rows.errors);
    let rows: Vec<_> = rows
        .rows
        .into_iter()
        .filter(|(_, r)| keep(r.mdp_idx))
        .collect();
    let tasks = reference_tasks();
    let labels: Vec<String> = dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| t.label.clone())
        .collect();
    let (observed, errors) = observed_programs(&rows, &tasks, &ObserveOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let sets = ChoiceSets::build(
        &labels,
        &observed,
        |t, queries| enumerated_candidates(tasks[t], queries),
        &|_| {},
    )
    .expect("choice sets build");
    (observed, sets)
}

fn reference_tasks() -> Vec<&'static dsl::Task> {
    dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| &t.task)
        .collect()
}

fn choice_sets() -> &'static (ChoiceSets, Features) {
    static SETS: OnceLock<(ChoiceSets, Features)> = OnceLock::new();
    SETS.get_or_init(|| {
        let began = Instant::now();
        let (_, sets) = observed_sets(|_| true);
        eprintln!(
            "choice sets built in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        let features = Features::new(&sets);
        (sets, features)
    })
}

/// Counts, per parameter, whether `intervals` contain the truth.
fn count_covered(covered: &mut [usize], intervals: &[Interval], truth: &[f64]) {
    for ((count, interval), &value) in covered.iter_mut().zip(intervals).zip(truth) {
        *count += usize::from(interval.lower <= value && value <= interval.upper);
    }
}

/// Asserts that each 95% interval contained the truth in at least 16 of 20 simulations.
fn assert_covered(model: &Model, covered: &[usize]) {
    for (param, &count) in model.params.iter().zip(covered) {
        assert!(
            count >= 16,
            "{}: truth covered in {count} of 20",
            param.name()
        );
    }
}

#[test]
fn models_rank_as_in_the_paper_on_the_dev_data() {
    // Arrange
    let (sets, features) = choice_sets();
    let options = CompareOptions {
        fit: FitOptions::default(),
        intervals: false,
    };
    // Act: the six reference models, 51 starts each.
    let began = Instant::now();
    let comparison = compare(sets, features, &Model::reference(), &options, &|_| {}).expect("fits");
    eprintln!("reference fits took {:.1} s", began.elapsed().as_secs_f64());
    for m in &comparison.models {
        eprintln!(
            "{:>9} LL {:>10.2} BIC {:>10.2} {:?} at best {}/{} ({:.1} s)",
            m.name,
            m.log_likelihood,
            m.bic,
            m.params,
            m.restarts_at_best,
            m.restarts,
            m.fit_seconds
        );
    }
    // Assert: GI+step > GI > MDL+step > step > MDL > null, by LL and by BIC.
    let expected = ["gi+step", "gi", "mdl+step", "step", "mdl", "null"];
    let mut by_ll = comparison.models.clone();
    by_ll.sort_by(|a, b| b.log_likelihood.total_cmp(&a.log_likelihood));
    let mut by_bic = comparison.models.clone();
    by_bic.sort_by(|a, b| a.bic.total_cmp(&b.bic));
    assert_eq!(
        by_ll.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        by_bic.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(comparison.n_observations, 1162);
}

#[test]
fn gi_step_parameters_are_recovered_on_the_real_choice_sets() {
    // Arrange: truth alpha 3, beta_gi 0.5, p_call 0.1, beta_step 0.5; 1668 choices per data set
    // (the paper's N), spread evenly over the ten tasks.
    let (_, features) = choice_sets();
    let model = Model::by_name("gi+step").expect("known model");
    let truth = model.theta(&[0.5, 3.0, 0.5, 0.1]);
    let truth_values: Vec<f64> = model.params.iter().map(|&p| truth.get(p)).collect();
    let choices: Vec<usize> = (0..10)
        .map(|t| 1668 / 10 + usize::from(t < 1668 % 10))
        .collect();
    let options = FitOptions {
        random_starts: 5,
        seed: 5,
        ..FitOptions::default()
    };
    let mut covered = vec![0usize; model.k()];
    let began = Instant::now();
    for simulation in 0..20u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + simulation);
        let weights = simulate(features, &model, &truth, &choices, &mut rng);
        assert_eq!(weights.total(), 1668.0);
        // Act
        let fit_began = Instant::now();
        let mut fitted = fit(features, &weights, &model, &options, &|| {}).expect("fit");
        let fit_seconds = fit_began.elapsed().as_secs_f64();
        let intervals = profile_intervals(features, &weights, &mut fitted, &options);
        count_covered(&mut covered, &intervals, &truth_values);
        eprintln!(
            "simulation {simulation}: {:?} LL {:.2} {intervals:?} (fit {fit_seconds:.1} s, total {:.1} s)",
            fitted.params,
            fitted.log_likelihood,
            fit_began.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "recovery took {:.1} s; covered {covered:?} of 20",
        began.elapsed().as_secs_f64()
    );
    // Assert: each 95% interval contains the truth in at least 16 of 20 simulations.
    assert_covered(&model, &covered);
}

/// The tasks of the library model's recovery: a and c, the two smallest enumerations (task c's
/// caches hold the task-a programs).
const LIBRARY_TASKS: [usize; 2] = [0, 2];

#[test]
fn lib_step_parameters_are_recovered_with_the_observed_caches_and_library() {
    // Arrange: the development data's choices on two tasks (236), whose design is kept: who
    // chose where, each cache and the population library are those of the observed programs,
    // and only the chosen programs are drawn from lib+step over the full choice sets. The truth
    // is near the fit to the whole development data.
    let began = Instant::now();
    let (observed, sets) = observed_sets(|task| LIBRARY_TASKS.contains(&task));
    let tasks = reference_tasks();
    let data = LibraryData::build(&tasks, &observed, &|_| {}).expect("library data builds");
    let base = Features::new(&sets);
    let weights = Weights::all(&sets);
    eprintln!("built in {:.1} s", began.elapsed().as_secs_f64());
    let model = Model::by_name("lib+step").expect("known model");
    let truth_values = [0.6, 2.2, 0.3, 0.06, 0.6, 0.2];
    let truth = model.theta(&truth_values);
    let options = FitOptions {
        random_starts: 1,
        seed: 7,
        ..FitOptions::default()
    };
    let mut covered = vec![0usize; model.k()];
    for simulation in 0..20u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(2000 + simulation);
        let (library, grid) = data.simulate(&sets, &truth, &mut rng).expect("simulates");
        let features = base.clone().with_library(library);
        // Act
        let fit_began = Instant::now();
        let mut fitted = fit(&features, &weights, &model, &options, &|| {}).expect("fit");
        let intervals = profile_intervals(&features, &weights, &mut fitted, &options);
        count_covered(&mut covered, &intervals, &truth_values);
        eprintln!(
            "simulation {simulation} (p_end grid {grid}): {:?} LL {:.2} {intervals:?} ({:.1} s)",
            fitted.params,
            fitted.log_likelihood,
            fit_began.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "recovery took {:.1} s; covered {covered:?} of 20",
        began.elapsed().as_secs_f64()
    );
    // Assert: each 95% interval contains the truth in at least 16 of 20 simulations.
    assert_covered(&model, &covered);
}
