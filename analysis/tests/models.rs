//! Program priors, the softmax likelihood, fitting, comparison, cross-validation and plots, on
//! small hand-made or synthetic choice sets (the real enumeration is exercised in
//! `recovery.rs`).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use analysis::StatKey;
use analysis::choice::{
    ChoiceSets, ObserveOptions, TaskCandidates, TaskChoiceSet, observed_programs,
};
use analysis::compare::{CompareOptions, bic, compare};
use analysis::cv::{CvOptions, cross_validate, folds};
use analysis::data::read_programs;
use analysis::fit::{FitOptions, fit, log_likelihood, profile_intervals, starts};
use analysis::models::gi::{GiParams, crp_log_probability, log_prior};
use analysis::models::likelihood::{Features, Weights, evaluate, log_mean_exp, simulate};
use analysis::models::{MODELS, Model, P_END_GRID};
use dsl::{Instr, Limits, Program};

fn program(text: &str) -> Program {
    dsl::compact::parse(text, &Limits::default()).expect("test program parses")
}

fn key(text: &str, s: u32) -> StatKey {
    StatKey::new(&program(text), s)
}

// ---------------------------------------------------------------- grammar-induction prior

#[test]
fn gi_prior_matches_the_worked_references_of_the_spec() {
    // docs/modelling.md §4.5: a = 0, b = 1, p_normal = 0.5, p_end = 0.1.
    let params = GiParams::default();
    let first = log_prior(&key("1LJL1RJR1|WWWS", 18), &params);
    let second = log_prior(&key("1WWW1RJJS|LJSR", 18), &params);
    assert!((first - -31.97).abs() < 0.005, "got {first}");
    assert!((second - -33.17).abs() < 0.005, "got {second}");
}

/// Distinct orderings of a multiset of call labels.
fn orderings(labels: &[u8]) -> Vec<Vec<u8>> {
    if labels.is_empty() {
        return vec![Vec::new()];
    }
    let mut distinct: Vec<u8> = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut out = Vec::new();
    for first in distinct {
        let mut rest = labels.to_vec();
        let at = rest
            .iter()
            .position(|&l| l == first)
            .expect("label present");
        rest.remove(at);
        for mut tail in orderings(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

/// log P of a program under the sequential generative story, with the call tokens arriving in
/// `order`: each token is a primitive (1 - p_call)/5 or a call p_call times the restaurant's
/// sequential probability; each non-empty routine pays its ending probabilities.
fn sequential_log_prior(program: &Program, order: &[u8], params: &GiParams) -> f64 {
    let GiParams {
        alpha: b,
        discount: a,
        p_call,
        p_end,
    } = *params;
    let mut total = 0.0;
    for body in program.routines.iter().filter(|body| !body.is_empty()) {
        for instr in body {
            total += match instr {
                Instr::Act(_) => ((1.0 - p_call) / 5.0).ln(),
                Instr::Call(_) => p_call.ln(),
            };
        }
        total += (body.len() as f64 - 1.0) * (1.0 - p_end).ln() + p_end.ln();
    }
    let mut tables: BTreeMap<u8, f64> = BTreeMap::new();
    for (seated, label) in order.iter().enumerate() {
        let seated = seated as f64;
        let probability = match tables.get(label) {
            Some(&count) => (count - a) / (seated + b),
            None => (b + tables.len() as f64 * a) / (seated + b),
        };
        total += probability.ln();
        *tables.entry(*label).or_default() += 1.0;
    }
    total
}

#[test]
fn gi_closed_form_equals_the_sequential_restaurant_for_every_call_order() {
    let programs = [
        "1LJL1RJR1|WWWS",
        "12LJL12RJR12|WW|WS",
        "1121S|2S|WW",
        "JS1J2|W1W|LJ",
        "1|W1",
        "WWS",
        "11JS|JJSRWLJ",
        "JSJJS1JWRWRJSLWSLLWLJ1JSLWSRJJSRWS",
        "1232|S|2W|LL",
    ];
    let settings = [
        GiParams::default(),
        GiParams {
            alpha: 2.5,
            discount: 0.0,
            p_call: 0.2,
            p_end: 0.3,
        },
        GiParams {
            alpha: 0.7,
            discount: 0.35,
            p_call: 0.4,
            p_end: 0.6,
        },
        GiParams {
            alpha: 0.01,
            discount: 0.9,
            p_call: 0.05,
            p_end: 0.9,
        },
    ];
    let mut checked = 0;
    for text in programs {
        let program = program(text);
        let calls: Vec<u8> = program
            .routines
            .iter()
            .flatten()
            .filter_map(|i| {
                if let Instr::Call(k) = i {
                    Some(*k)
                } else {
                    None
                }
            })
            .collect();
        let closed_key = StatKey::new(&program, 0);
        for params in &settings {
            let closed = log_prior(&closed_key, params);
            for order in orderings(&calls) {
                let sequential = sequential_log_prior(&program, &order, params);
                assert!(
                    (closed - sequential).abs() < 1e-9,
                    "{text} with {params:?}, order {order:?}: closed {closed} vs sequential {sequential}"
                );
                checked += 1;
            }
        }
    }
    // `12LJL12RJR12` alone has 6!/(3!3!) = 20 orders, so many orders were compared.
    assert!(checked > 100, "only {checked} orders checked");
}

/// All set partitions of n customers, as block sizes.
fn partitions(n: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let mut assignment = vec![0usize; n];
    fn go(i: usize, blocks: usize, assignment: &mut Vec<usize>, out: &mut Vec<Vec<u32>>) {
        if i == assignment.len() {
            let mut sizes = vec![0u32; blocks];
            for &b in assignment.iter() {
                sizes[b] += 1;
            }
            out.push(sizes);
            return;
        }
        for b in 0..=blocks {
            assignment[i] = b;
            go(i + 1, blocks.max(b + 1), assignment, out);
        }
    }
    go(0, 0, &mut assignment, &mut out);
    out
}

#[test]
fn restaurant_probabilities_over_all_seatings_sum_to_one() {
    for n in 1..=7 {
        let seatings = partitions(n);
        for (a, b) in [(0.0, 1.0), (0.0, 0.3), (0.4, 2.0), (0.8, 0.05)] {
            let total: f64 = seatings
                .iter()
                .map(|sizes| crp_log_probability(sizes.iter().copied(), a, b).exp())
                .sum();
            assert!(
                (total - 1.0).abs() < 1e-10,
                "n = {n}, a = {a}, b = {b}: total {total}"
            );
        }
    }
}

// ---------------------------------------------------------------- likelihood

/// One task: the enumeration holds A once and two programs with B's key; C is a participant
/// program the enumeration lacks. A is chosen twice (participants 0 and 1), C once (2).
fn tiny_choice_sets() -> ChoiceSets {
    let (a, b, c) = (key("WWS", 3), key("WJWLS", 5), key("WWJS", 4));
    let candidates = TaskCandidates {
        programs: 3,
        histogram: vec![(a, 1), (b, 2)],
        found: vec![true, false],
    };
    let unique = vec![("WWS||||".to_owned(), a), ("WWJS||||".to_owned(), c)];
    let task =
        TaskChoiceSet::new("tiny", &candidates, &unique, &[(0, 0), (1, 0), (2, 1)]).expect("valid");
    ChoiceSets { tasks: vec![task] }
}

#[test]
fn likelihood_of_a_tiny_choice_set_matches_the_hand_computation() {
    let sets = tiny_choice_sets();
    let features = Features::new(&sets);
    let weights = Weights::all(&sets);
    // MDL, β = 0.5: Z = e^-1.5 + 2 e^-2.5 + e^-2 = 0.522635;
    // LL = 2 (−1.5 − ln Z) + (−2 − ln Z) = −3.053387.
    let mdl = Model::by_name("mdl").unwrap();
    let ll = log_likelihood(&features, &weights, &mdl, &[0.5]);
    assert!((ll - -3.053_386_663).abs() < 1e-8, "got {ll}");
    // Null: four programs, three choices: 3 ln(1/4).
    let null = Model::by_name("null").unwrap();
    let ll = log_likelihood(&features, &weights, &null, &[]);
    assert!((ll - 3.0 * 0.25f64.ln()).abs() < 1e-12, "got {ll}");

    let coverage = &sets.coverage()[0];
    assert_eq!(coverage.observations, 3);
    assert_eq!(coverage.observations_in_enumeration, 2);
    assert_eq!(coverage.unique_programs, 2);
    assert_eq!(coverage.unique_in_enumeration, 1);
    assert_eq!(coverage.choice_set_size, 4);
    assert_eq!(sets.tasks[0].added, 1);
}

/// Random but plausible sufficient statistics.
fn random_key(rng: &mut ChaCha8Rng) -> StatKey {
    let k = rng.random_range(0..=4usize);
    let mut calls = [0u16; analysis::key::MAX_SLOTS];
    for slot in calls.iter_mut().take(k) {
        *slot = rng.random_range(1..=5);
    }
    calls.sort_unstable_by(|x, y| y.cmp(x));
    let n: u16 = calls.iter().sum();
    let r = 1 + k as u8 - u8::from(k > 0 && rng.random_bool(0.1));
    let p = rng.random_range(u16::from(r).max(3)..30);
    StatKey {
        p,
        n,
        calls,
        r,
        s: rng.random_range(10..35),
    }
}

/// Synthetic choice sets: `tasks` tasks of `keys` random keys with random multiplicities, and
/// `participants` participants each choosing one program per task, uniformly (the counts are
/// replaced by simulation where it matters).
fn synthetic_choice_sets(seed: u64, tasks: usize, keys: usize, participants: u32) -> ChoiceSets {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tasks = (0..tasks)
        .map(|t| {
            let mut histogram: Vec<(StatKey, u64)> = (0..keys)
                .map(|_| (random_key(&mut rng), rng.random_range(1..500)))
                .collect();
            histogram.sort();
            histogram.dedup_by(|x, y| x.0 == y.0);
            let unique: Vec<(String, StatKey)> = histogram
                .iter()
                .take(20)
                .enumerate()
                .map(|(i, &(k, _))| (format!("p{i}"), k))
                .collect();
            let candidates = TaskCandidates {
                programs: histogram.iter().map(|&(_, c)| c).sum(),
                histogram,
                found: vec![true; unique.len()],
            };
            let choices: Vec<(u32, usize)> = (0..participants)
                .map(|p| (p, rng.random_range(0..unique.len())))
                .collect();
            TaskChoiceSet::new(&format!("t{t}"), &candidates, &unique, &choices).expect("valid")
        })
        .collect();
    ChoiceSets { tasks }
}

/// The log-likelihood straight from the definitions: per task and p_end, Σ n(p) s(p) − N ln Z,
/// then a log-mean-exp over the grid.
fn direct_log_likelihood(
    sets: &ChoiceSets,
    weights: &Weights,
    model: &Model,
    values: &[f64],
) -> f64 {
    let theta = model.theta(values);
    let totals: Vec<f64> = P_END_GRID
        .iter()
        .map(|&p_end| {
            sets.tasks
                .iter()
                .zip(&weights.tasks)
                .map(|(task, chosen)| {
                    let logits: Vec<f64> = task
                        .keys
                        .iter()
                        .zip(&task.multiplicity)
                        .map(|(k, &m)| (m as f64).ln() + theta.score(k, p_end))
                        .collect();
                    let log_z = log_mean_exp(&logits) + (logits.len() as f64).ln();
                    let n: f64 = chosen.iter().map(|&(_, c)| c).sum();
                    chosen
                        .iter()
                        .map(|&(k, c)| c * theta.score(&task.keys[k], p_end))
                        .sum::<f64>()
                        - n * log_z
                })
                .sum()
        })
        .collect();
    log_mean_exp(&totals)
}

#[test]
fn tabulated_likelihood_equals_the_direct_definition_for_every_model() {
    let sets = synthetic_choice_sets(1, 3, 60, 40);
    let features = Features::new(&sets);
    let weights = Weights::all(&sets);
    let values = [0.3, 0.7, 2.2, 0.8, 0.15, 0.25];
    // The library model needs library features; analysis/tests/library_model.rs tests it.
    for model in MODELS.into_iter().filter(|m| !m.uses_library()) {
        let free: Vec<f64> = model.params.iter().map(|p| values[p.index()]).collect();
        let tabulated = log_likelihood(&features, &weights, &model, &free);
        let direct = direct_log_likelihood(&sets, &weights, &model, &free);
        assert!(
            (tabulated - direct).abs() < 1e-8 * direct.abs().max(1.0),
            "{}: {tabulated} vs {direct}",
            model.name
        );
    }
}

#[test]
fn analytic_gradient_matches_finite_differences() {
    let sets = synthetic_choice_sets(2, 2, 80, 50);
    let features = Features::new(&sets);
    let weights = Weights::all(&sets);
    let values = [0.4, 0.3, 1.7, 0.6, 0.2, 0.3];
    // The library model needs library features; analysis/tests/library_model.rs tests it.
    for model in MODELS.into_iter().filter(|m| !m.uses_library()) {
        let theta = model.theta(
            &model
                .params
                .iter()
                .map(|p| values[p.index()])
                .collect::<Vec<_>>(),
        );
        let gradient = evaluate(&features, &weights, &model, &theta, true).gradient();
        for param in model.params {
            let h = 1e-6;
            let mut plus = theta;
            let mut minus = theta;
            plus.values[param.index()] += h;
            minus.values[param.index()] -= h;
            let numeric = (evaluate(&features, &weights, &model, &plus, false).log_likelihood()
                - evaluate(&features, &weights, &model, &minus, false).log_likelihood())
                / (2.0 * h);
            let analytic = gradient[param.index()];
            assert!(
                (numeric - analytic).abs() < 1e-4 * analytic.abs().max(1.0),
                "{} {}: numeric {numeric} vs analytic {analytic}",
                model.name,
                param.name()
            );
        }
    }
}

// ---------------------------------------------------------------- fitting

#[test]
fn starts_are_the_default_then_seeded_draws_within_bounds() {
    let model = Model::by_name("gi-py+step").unwrap();
    let options = FitOptions {
        random_starts: 30,
        seed: 7,
        ..FitOptions::default()
    };
    let drawn = starts(&model, &options);
    assert_eq!(drawn.len(), 31);
    assert_eq!(drawn[0], model.default_start());
    assert_eq!(drawn, starts(&model, &options), "same seed, same starts");
    assert_ne!(drawn, starts(&model, &FitOptions { seed: 8, ..options }));
    for start in &drawn {
        for (param, &x) in model.params.iter().zip(start) {
            let (lower, upper) = param.bounds();
            assert!(x >= lower && x <= upper, "{} = {x}", param.name());
        }
    }
}

#[test]
fn fit_recovers_generating_parameters_on_synthetic_choice_sets() {
    // Arrange: simulate from GI + step on synthetic choice sets.
    let sets = synthetic_choice_sets(3, 6, 300, 1);
    let features = Features::new(&sets);
    let model = Model::by_name("gi+step").unwrap();
    let truth = [0.5, 3.0, 0.5, 0.1]; // beta_step, alpha, beta_gi, p_call
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let weights = simulate(
        &features,
        &model,
        &model.theta(&truth),
        &[1500; 6],
        &mut rng,
    );
    // Act
    let options = FitOptions {
        random_starts: 8,
        seed: 1,
        ..FitOptions::default()
    };
    let mut fitted = fit(&features, &weights, &model, &options, &|| {}).unwrap();
    let intervals = profile_intervals(&features, &weights, &mut fitted, &options);
    // Assert: the optimum beats the truth and lies inside its intervals. The step-cost weight is
    // well identified on any choice set, so its interval must cover the truth; the GI parameters
    // trade off against p_end on random keys, so their coverage is tested on the real choice sets
    // (recovery.rs).
    let at_truth = log_likelihood(&features, &weights, &model, &truth);
    assert!(
        fitted.log_likelihood >= at_truth - 1e-6,
        "{} < {at_truth}",
        fitted.log_likelihood
    );
    assert!(fitted.restarts_at_best >= 1 && fitted.restarts == 9);
    for ((param, interval), &value) in model.params.iter().zip(&intervals).zip(&fitted.params) {
        assert!(
            interval.lower < value && value < interval.upper,
            "{}: {value} outside {interval:?}",
            param.name()
        );
    }
    assert!(
        intervals[0].lower <= truth[0] && truth[0] <= intervals[0].upper,
        "{:?}",
        intervals[0]
    );
    // The interval ends are where the profile drops by χ²(1, 0.95)/2.
    let beta_step = intervals[0];
    for end in [beta_step.lower, beta_step.upper] {
        let objective = |x: f64| {
            let mut params = fitted.params.clone();
            params[0] = x;
            log_likelihood(&features, &weights, &model, &params)
        };
        assert!(
            objective(end) <= fitted.log_likelihood - 1.92 + 1e-3,
            "profile at {end} too high"
        );
    }
}

#[test]
fn fits_are_reproducible_with_a_seed() {
    let sets = synthetic_choice_sets(4, 3, 100, 60);
    let features = Features::new(&sets);
    let weights = Weights::all(&sets);
    let model = Model::by_name("gi").unwrap();
    let options = FitOptions {
        random_starts: 5,
        seed: 3,
        ..FitOptions::default()
    };
    let first = fit(&features, &weights, &model, &options, &|| {}).unwrap();
    let second = fit(&features, &weights, &model, &options, &|| {}).unwrap();
    assert_eq!(first.params, second.params);
    assert_eq!(first.log_likelihood, second.log_likelihood);
    assert_eq!(first.restarts, 6);
}

#[test]
fn unknown_models_are_refused_with_the_known_names() {
    let error = Model::parse_list("gi,nonsense").unwrap_err().to_string();
    assert!(
        error.contains("nonsense") && error.contains("gi+step"),
        "{error}"
    );
    let list = Model::parse_list("gi, step,gi").unwrap();
    assert_eq!(
        list.iter().map(|m| m.name).collect::<Vec<_>>(),
        ["gi", "step"]
    );
}

// ---------------------------------------------------------------- comparison, CV, plots

#[test]
fn comparison_reports_bic_and_tests_every_nested_pair() {
    let sets = synthetic_choice_sets(5, 4, 120, 1);
    let features = Features::new(&sets);
    let model = Model::by_name("mdl+step").unwrap();
    let weights = simulate(
        &features,
        &model,
        &model.theta(&[0.2, 0.4]),
        &[200; 4],
        &mut ChaCha8Rng::seed_from_u64(2),
    );
    let mut sets = sets;
    // Replace the uniform observations by the simulated ones (participant ids are irrelevant here).
    for (task, chosen) in sets.tasks.iter_mut().zip(&weights.tasks) {
        let template = task.observations[0].clone();
        task.observations = chosen
            .iter()
            .flat_map(|&(k, c)| std::iter::repeat_n(k, c as usize))
            .map(|k| analysis::choice::Observation {
                key: k,
                ..template.clone()
            })
            .collect();
    }
    let models = Model::parse_list("null,mdl,step,mdl+step").unwrap();
    let options = CompareOptions {
        fit: FitOptions {
            random_starts: 3,
            ..FitOptions::default()
        },
        intervals: true,
    };
    let comparison = compare(&sets, &features, &models, &options, &|_| {}).unwrap();
    assert_eq!(comparison.n_observations, 800);
    for result in &comparison.models {
        assert!((result.bic - bic(result.k, 800, result.log_likelihood)).abs() < 1e-9);
        assert_eq!(result.intervals.len(), result.k);
    }
    let pairs: Vec<(String, String)> = comparison
        .lrt
        .iter()
        .map(|t| (t.null_model.clone(), t.model.clone()))
        .collect();
    for expected in [
        ("null", "mdl"),
        ("null", "step"),
        ("null", "mdl+step"),
        ("mdl", "mdl+step"),
        ("step", "mdl+step"),
    ] {
        assert!(
            pairs.contains(&(expected.0.into(), expected.1.into())),
            "missing {expected:?}"
        );
    }
    assert_eq!(pairs.len(), 5, "mdl and step are not nested in each other");
    let full = comparison
        .lrt
        .iter()
        .find(|t| t.null_model == "null" && t.model == "mdl+step")
        .unwrap();
    assert_eq!(full.df, 2);
    assert!(
        full.p < 1e-6,
        "the generating model must beat the null: {full:?}"
    );
    // Per-task log-likelihoods add up to the total for models without p_end.
    for (m, result) in comparison.models.iter().enumerate() {
        let sum: f64 = comparison
            .per_task
            .iter()
            .map(|t| t.models[m].log_likelihood)
            .sum();
        assert!(
            (sum - result.log_likelihood).abs() < 1e-6,
            "{}",
            result.name
        );
    }
}

#[test]
fn folds_partition_participants_reproducibly() {
    let participants: Vec<u32> = (0..23).collect();
    let split = folds(&participants, 5, 9).unwrap();
    assert_eq!(split.len(), 5);
    let mut all: Vec<u32> = split.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, participants);
    assert!(split.iter().all(|f| f.len() == 4 || f.len() == 5));
    assert_eq!(split, folds(&participants, 5, 9).unwrap());
    assert_ne!(split, folds(&participants, 5, 10).unwrap());
    assert!(folds(&participants, 1, 0).is_err());
    assert!(folds(&participants[..3], 4, 0).is_err());
}

#[test]
fn cross_validation_scores_held_out_participants() {
    let sets = synthetic_choice_sets(6, 3, 80, 30);
    let features = Features::new(&sets);
    let models = Model::parse_list("null,step").unwrap();
    let options = CvOptions {
        folds: 3,
        seed: 1,
        fit: FitOptions {
            random_starts: 2,
            ..FitOptions::default()
        },
    };
    let result = cross_validate(&sets, &features, &models, &options, &|_, _| {}).unwrap();
    assert_eq!(result.fold_participants.iter().sum::<usize>(), 30);
    assert_eq!(result.fold_observations.iter().sum::<usize>(), 90);
    let null = &result.models[0];
    // The null model has no parameters: its held-out LL is Σ −ln |U_t| over all choices.
    let expected: f64 = sets
        .tasks
        .iter()
        .map(|t| -(t.observations.len() as f64) * (t.multiplicity.iter().sum::<u64>() as f64).ln())
        .sum();
    assert!((null.held_out_log_likelihood - expected).abs() < 1e-8);
    assert_eq!(result.models[1].per_fold.len(), 3);
}

#[test]
fn plots_are_written_as_svg_and_png_with_text() {
    let sets = tiny_choice_sets();
    let features = Features::new(&sets);
    let models = Model::parse_list("null,mdl").unwrap();
    let options = CompareOptions {
        fit: FitOptions {
            random_starts: 1,
            ..FitOptions::default()
        },
        intervals: false,
    };
    let comparison = compare(&sets, &features, &models, &options, &|_| {}).unwrap();
    let dir = std::env::temp_dir().join(format!("proglab-plots-{}", std::process::id()));
    let written = analysis::plots::write_plots(&dir, &comparison, None).unwrap();
    assert!(written.len() >= 6);
    for path in &written {
        let bytes = std::fs::read(path).unwrap();
        if path.extension().is_some_and(|e| e == "png") {
            assert_eq!(&bytes[1..4], b"PNG");
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.contains("<svg") && text.contains("mdl"),
                "{}",
                path.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------- observations from a file

#[test]
fn observations_use_canonical_programs_and_skip_skipped_trials() {
    let csv = "participant_idx,mdp_idx,skipped,elapsed_minutes,program_evaluations,program,preprocessed_program,programming_exp,programming_game_exp\n\
        0,2,False,1,1,12131|WWWS|LJL|RJR|,1LJL1RJR1|WWWS|||,None,No\n\
        1,2,False,1,1,12131|WWWS|LJL|RJR|,,None,No\n\
        2,2,True,1,1,,,None,No\n\
        3,2,False,1,1,WWWW,,None,No\n\
        4,42,False,1,1,WWWS,,None,No\n";
    let file = read_programs(csv.as_bytes()).unwrap();
    let tasks: Vec<&dsl::Task> = dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| &t.task)
        .collect();
    let (observed, errors) = observed_programs(&file.rows, &tasks, &ObserveOptions::default());
    // Row 2 is skipped; `WWWW` does not solve task c; task 42 does not exist.
    assert_eq!(observed.len(), 2, "{errors:?}");
    assert_eq!(errors.len(), 2);
    // The empty preprocessed column is filled by canonicalising: both rows are the same program.
    assert_eq!(observed[0].text, "1LJL1RJR1|WWWS|||");
    assert_eq!(observed[1].text, observed[0].text);
    assert_eq!(observed[0].key.s, 18);
    let raw = ObserveOptions {
        canonicalise: false,
        ..ObserveOptions::default()
    };
    let (observed, _) = observed_programs(&file.rows, &tasks, &raw);
    assert_eq!(observed[0].text, "12131|WWWS|LJL|RJR|");
}
