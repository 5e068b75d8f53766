//! Held-out evaluation (docs/modelling.md §4.9): fold choice sets hold only the enumeration and
//! the training participants' programs, a held-out choice is scored in that set plus its own
//! program, leaving a task out keeps every one of its participants' programs out of every set,
//! and the per-observation shares and paired standard errors add up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use analysis::StatKey;
use analysis::choice::{ChoiceSets, ObserveOptions, SetRule, Split, TaskCandidates, TaskChoiceSet};
use analysis::compare::{
    clustered_standard_error, paired_difference, paired_differences, versus_best,
};
use analysis::cv::{
    CvOptions, cross_validate, cross_validate_with, folds, held_out_log_likelihoods,
    observation_shares, participant_splits,
};
use analysis::cv_tasks::{leave_one_task_out, task_splits};
use analysis::fit::{FitOptions, evaluation, fit};
use analysis::models::likelihood::{Features, Weights, log_mean_exp};
use analysis::models::{Model, P_END_GRID, Theta};
use dsl::Limits;

fn key(text: &str, s: u32) -> StatKey {
    let program = dsl::compact::parse(text, &Limits::default()).expect("test program parses");
    StatKey::new(&program, s)
}

/// The keys of the hand-made sets.
struct Keys {
    a: StatKey,
    b: StatKey,
    c: StatKey,
    d: StatKey,
    e: StatKey,
    f: StatKey,
    g: StatKey,
    h: StatKey,
    v: StatKey,
}

fn keys() -> Keys {
    Keys {
        a: key("WWS", 3),
        b: key("WJWLS", 5),
        // X = WWJS and Z = JWWS share this key.
        c: key("WWJS", 4),
        d: key("11|WJ", 4),
        e: key("WS", 2),
        f: key("1|WS", 2),
        g: key("WJS", 3),
        h: key("1W1|JJS", 9),
        v: key("11L|WJ", 7),
    }
}

/// Two tasks. Task t0 enumerates A once and B twice; participants 0 and 5 chose the enumerated
/// `WWS` (key A), 1 and 4 chose X, 2 chose Y and 3 chose Z, none of them enumerated (X and Z
/// share key C, Y has key D). Task t1 enumerates E three times and F once; participants chose the
/// enumerated `1|WS` (key F) or the unenumerated `WJS` (key G). `variant` changes participant 3:
/// 1 gives them the new program W (key H) on t0 instead of Z, 2 the new program V (key V) on t1.
fn hand_sets(variant: u8) -> ChoiceSets {
    let k = keys();
    let t0 = {
        let z = if variant == 1 {
            ("1W1|JJS||||", k.h)
        } else {
            ("JWWS||||", k.c)
        };
        let unique = vec![
            ("WWS||||".to_owned(), k.a),
            ("WWJS||||".to_owned(), k.c),
            ("11|WJ|||".to_owned(), k.d),
            (z.0.to_owned(), z.1),
        ];
        let candidates = TaskCandidates {
            programs: 3,
            histogram: vec![(k.a, 1), (k.b, 2)],
            found: vec![true, false, false, false],
        };
        let choices = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 1), (5, 0)];
        TaskChoiceSet::new("t0", &candidates, &unique, &choices).expect("valid")
    };
    let t1 = {
        let mut unique = vec![("1|WS|||".to_owned(), k.f), ("WJS||||".to_owned(), k.g)];
        let mut found = vec![true, false];
        let mut choices = vec![(0, 1), (1, 0), (2, 1), (3, 0), (4, 0), (5, 1)];
        if variant == 2 {
            unique.push(("11L|WJ|||".to_owned(), k.v));
            found.push(false);
            choices[3] = (3, 2);
        }
        let candidates = TaskCandidates {
            programs: 4,
            histogram: vec![(k.e, 3), (k.f, 1)],
            found,
        };
        TaskChoiceSet::new("t1", &candidates, &unique, &choices).expect("valid")
    };
    ChoiceSets {
        tasks: vec![t0, t1],
    }
}

/// A task's choice set as key → multiplicity.
fn multiplicities(task: &TaskChoiceSet) -> BTreeMap<StatKey, u64> {
    task.keys
        .iter()
        .copied()
        .zip(task.multiplicity.iter().copied())
        .collect()
}

/// log P of choosing a program with key `own` from the explicit list `programs` (own included)
/// under `model` at `theta` and `p_end`, straight from the definition.
fn brute_force(programs: &[StatKey], own: StatKey, theta: &Theta, p_end: f64) -> f64 {
    let scores: Vec<f64> = programs.iter().map(|k| theta.score(k, p_end)).collect();
    theta.score(&own, p_end) - log_mean_exp(&scores) - (programs.len() as f64).ln()
}

/// The programs of a task's fold set, one key per program, expanded from its multiplicities.
fn expanded(task: &TaskChoiceSet) -> Vec<StatKey> {
    task.keys
        .iter()
        .zip(&task.multiplicity)
        .flat_map(|(&k, &m)| std::iter::repeat_n(k, m as usize))
        .collect()
}

fn fit_options() -> FitOptions {
    FitOptions {
        random_starts: 2,
        ..FitOptions::default()
    }
}

#[test]
fn a_fold_set_holds_the_enumeration_and_the_training_participants_programs_only() {
    let k = keys();
    let sets = hand_sets(0);
    // The full-fit set keeps every participant program: X and Z on C, Y on D.
    assert_eq!(
        multiplicities(&sets.tasks[0]),
        BTreeMap::from([(k.a, 1), (k.b, 2), (k.c, 2), (k.d, 1)])
    );
    let fold = [vec![3, 4, 5], vec![0, 1, 2]];
    let splits = participant_splits(&sets, &fold, SetRule::Training).unwrap();
    let held_out_345 = &splits[0];
    // Training participants 0-2 wrote WWS, X and Y on t0: Z (participant 3's) is out.
    assert_eq!(
        multiplicities(&held_out_345.train.tasks[0]),
        BTreeMap::from([(k.a, 1), (k.b, 2), (k.c, 1), (k.d, 1)])
    );
    assert_eq!(
        multiplicities(&held_out_345.train.tasks[1]),
        BTreeMap::from([(k.e, 3), (k.f, 1), (k.g, 1)])
    );
    let participants: BTreeSet<u32> = held_out_345
        .train
        .tasks
        .iter()
        .flat_map(|t| t.observations.iter().map(|o| o.participant))
        .collect();
    assert_eq!(participants, BTreeSet::from([0, 1, 2]));
    // Held out: Z must be added to its own set, X (also written by participant 1) and WWS are in.
    let in_set: Vec<(u32, &str, bool)> = held_out_345
        .held_out
        .iter()
        .filter(|o| o.task == 0)
        .map(|o| (o.participant, o.program.as_str(), o.in_set))
        .collect();
    assert_eq!(
        in_set,
        [
            (3, "JWWS||||", false),
            (4, "WWJS||||", true),
            (5, "WWS||||", true)
        ]
    );
    // Participants 3-5 trained, 0-2 held out: only WWS on t0 (X, Y unwritten by 3-5 except X by 4).
    assert_eq!(
        multiplicities(&splits[1].train.tasks[0]),
        BTreeMap::from([(k.a, 1), (k.b, 2), (k.c, 2)])
    );
    // The full rule keeps the full-fit sets.
    let full = participant_splits(&sets, &fold, SetRule::Full).unwrap();
    assert_eq!(
        multiplicities(&full[0].train.tasks[0]),
        multiplicities(&sets.tasks[0])
    );
    assert!(full[0].held_out.iter().all(|o| o.in_set));
}

#[test]
fn other_held_out_participants_programs_change_neither_training_nor_a_held_out_score() {
    let fold = [vec![3, 4, 5], vec![0, 1, 2]];
    let split = |variant| -> Split {
        participant_splits(&hand_sets(variant), &fold, SetRule::Training)
            .unwrap()
            .remove(0)
    };
    let (base, replaced, added) = (split(0), split(1), split(2));
    // Participant 3 (held out) writing W instead of Z, or the new V, leaves the fold's training
    // sets and data exactly as they were.
    assert_eq!(base.train, replaced.train);
    assert_eq!(base.train, added.train);
    let model = Model::by_name("gi+step").unwrap();
    let fitted = |s: &Split| {
        fit(
            &Features::new(&s.train),
            &Weights::all(&s.train),
            &model,
            &fit_options(),
            &|| {},
        )
        .unwrap()
        .params
    };
    let params = fitted(&base);
    assert_eq!(params, fitted(&replaced));
    assert_eq!(params, fitted(&added));
    // Participants 4 and 5 score the same whatever participant 3 wrote.
    let theta = model.theta(&params);
    let score = |s: &Split| -> Vec<(u32, usize, Vec<f64>)> {
        let grid = held_out_log_likelihoods(&s.train, &s.held_out, &model, &theta);
        s.held_out
            .iter()
            .zip(grid)
            .filter(|(o, _)| o.participant != 3)
            .map(|(o, g)| (o.participant, o.task, g))
            .collect()
    };
    assert_eq!(score(&base), score(&replaced));
    assert_eq!(score(&base), score(&added));
}

#[test]
fn a_held_out_score_is_the_softmax_over_the_explicit_fold_set_plus_its_own_program() {
    let k = keys();
    let sets = hand_sets(0);
    let fold = [vec![3, 4, 5], vec![0, 1, 2]];
    let split = participant_splits(&sets, &fold, SetRule::Training)
        .unwrap()
        .remove(0);
    let model = Model::by_name("gi+step").unwrap();
    let theta = model.theta(&[0.3, 1.5, 0.8, 0.4]);
    let grid = held_out_log_likelihoods(&split.train, &split.held_out, &model, &theta);
    assert!(grid.iter().all(|g| g.len() == P_END_GRID.len()));
    // The fold set of t0 written out program by program: A, B, B, X (C), Y (D).
    let t0_fold = vec![k.a, k.b, k.b, k.c, k.d];
    assert_eq!(expanded(&split.train.tasks[0]).len(), t0_fold.len());
    for (obs, values) in split.held_out.iter().zip(&grid) {
        let mut programs = if obs.task == 0 {
            t0_fold.clone()
        } else {
            vec![k.e, k.e, k.e, k.f, k.g]
        };
        let own_added = obs.task == 0 && obs.program == "JWWS||||";
        assert_eq!(obs.in_set, !own_added, "{obs:?}");
        if own_added {
            programs.push(obs.key);
        }
        for (e, &p_end) in P_END_GRID.iter().enumerate() {
            let expected = brute_force(&programs, obs.key, &theta, p_end);
            assert!(
                (values[e] - expected).abs() < 1e-9,
                "{obs:?} at p_end {p_end}: {} vs {expected}",
                values[e]
            );
        }
    }
}

#[test]
fn cross_validation_fits_and_scores_in_the_fold_sets() {
    let sets = hand_sets(0);
    let models = Model::parse_list("null,mdl,gi").unwrap();
    let options = CvOptions {
        folds: 2,
        seed: 4,
        fit: fit_options(),
    };
    let features = Features::new(&sets);
    let result = cross_validate(&sets, &features, &models, &options, &|_, _| {}).unwrap();
    assert!(
        result
            .choice_sets
            .contains("training participants' programs")
    );
    let split_folds = folds(&sets.participants(), 2, 4).unwrap();
    for (f, fold) in split_folds.iter().enumerate() {
        let split = participant_splits(&sets, std::slice::from_ref(fold), SetRule::Training)
            .unwrap()
            .remove(0);
        for (model, cv) in models.iter().zip(&result.models) {
            let params = fit(
                &Features::new(&split.train),
                &Weights::all(&split.train),
                model,
                &options.fit,
                &|| {},
            )
            .unwrap()
            .params;
            let theta = model.theta(&params);
            let n_grid = if model.uses_gi() { P_END_GRID.len() } else { 1 };
            let totals: Vec<f64> = P_END_GRID[..n_grid]
                .iter()
                .map(|&p_end| {
                    split
                        .held_out
                        .iter()
                        .map(|obs| {
                            let mut programs = expanded(&split.train.tasks[obs.task]);
                            if !obs.in_set {
                                programs.push(obs.key);
                            }
                            brute_force(&programs, obs.key, &theta, p_end)
                        })
                        .sum()
                })
                .collect();
            let expected = log_mean_exp(&totals);
            assert!(
                (cv.per_fold[f] - expected).abs() < 1e-9,
                "{} fold {f}: {} vs {expected}",
                cv.name,
                cv.per_fold[f]
            );
        }
    }
    // The per-observation shares add up to each model's total.
    for (model, shares) in result
        .models
        .iter()
        .zip(&result.observation_log_likelihoods)
    {
        assert_eq!(shares.len(), sets.n_observations());
        let sum: f64 = shares.iter().sum();
        assert!((sum - model.held_out_log_likelihood).abs() < 1e-9);
    }
    assert_eq!(result.observations.len(), sets.n_observations());
    // The full-fit sets give the null model a different (larger) normaliser.
    let full = cross_validate_with(
        &sets,
        None,
        &models[..1],
        &options,
        SetRule::Full,
        &|_, _| {},
    );
    let full = full.unwrap();
    assert!(full.models[0].held_out_log_likelihood < result.models[0].held_out_log_likelihood);
}

#[test]
fn leaving_a_task_out_keeps_its_participants_programs_out_of_every_set() {
    let k = keys();
    let sets = hand_sets(0);
    let splits = task_splits(&sets).unwrap();
    assert_eq!(splits.len(), 2);
    for (out, split) in &splits {
        let held = &split.train.tasks[*out];
        assert!(held.observations.is_empty() && held.added_programs.is_empty());
        let enumeration = if *out == 0 {
            BTreeMap::from([(k.a, 1), (k.b, 2)])
        } else {
            BTreeMap::from([(k.e, 3), (k.f, 1)])
        };
        assert_eq!(multiplicities(held), enumeration);
        // Every held-out observation is of that task, and its program is in the set only when
        // the enumeration has it.
        assert_eq!(split.held_out.len(), 6);
        for obs in &split.held_out {
            assert_eq!(obs.task, *out);
            let enumerated = obs.program == "WWS||||" || obs.program == "1|WS|||";
            assert_eq!(obs.in_set, enumerated, "{obs:?}");
        }
        // The training task keeps its full-fit set.
        let other = 1 - out;
        assert_eq!(
            multiplicities(&split.train.tasks[other]),
            multiplicities(&sets.tasks[other])
        );
    }
    // The null model: t0's WWS choices (2) are one of 3 programs, the others one of 4.
    let null = Model::by_name("null").unwrap();
    let result = leave_one_task_out(&sets, None, &[null], &fit_options(), &|_, _| {}).unwrap();
    assert_eq!(result.tasks, ["t0", "t1"]);
    let expected = -2.0 * 3f64.ln() - 4.0 * 4f64.ln();
    assert!((result.models[0].per_task[0] - expected).abs() < 1e-12);
    // A single task cannot be left out.
    let one = ChoiceSets {
        tasks: vec![sets.tasks[0].clone()],
    };
    assert!(task_splits(&one).is_err());
}

#[test]
fn held_out_scores_in_the_full_sets_match_the_likelihood() {
    let sets = hand_sets(0);
    let split = sets.split(SetRule::Full, |_, _| false).unwrap();
    let model = Model::by_name("gi-py+step").unwrap();
    let params = [0.2, 1.3, 0.9, 0.3, 0.2];
    let grid =
        held_out_log_likelihoods(&split.train, &split.held_out, &model, &model.theta(&params));
    let eval = evaluation(&Features::new(&sets), &Weights::all(&sets), &model, &params);
    for e in 0..P_END_GRID.len() {
        let sum: f64 = grid.iter().map(|g| g[e]).sum();
        assert!((sum - eval.grid_log_likelihood(e)).abs() < 1e-8, "grid {e}");
    }
    let (total, shares) = observation_shares(&grid);
    assert!((total - eval.log_likelihood()).abs() < 1e-8);
    assert!((shares.iter().sum::<f64>() - total).abs() < 1e-9);
}

#[test]
fn paired_differences_have_the_textbook_standard_error() {
    let a = [1.0, 2.0, 4.0, 3.0];
    let b = [0.5, 2.5, 3.0, 1.0];
    // d = 0.5, −0.5, 1, 2: mean 0.75, sample variance 1.0833, SE = sqrt(1.0833 / 4).
    let (n, mean, se) = paired_difference(&a, &b);
    assert_eq!(n, 4);
    assert!((mean - 0.75).abs() < 1e-12);
    assert!((se - (13.0f64 / 12.0 / 4.0).sqrt()).abs() < 1e-12);
    let names = ["x", "y", "z"];
    let c = [0.0; 4];
    let values: [&[f64]; 3] = [&a, &b, &c];
    // One participant per observation: the clustered standard error is the paired one.
    let alone = [1, 2, 3, 4];
    let pairs = paired_differences(&names, &values, &alone);
    assert_eq!(pairs.len(), 3);
    assert_eq!(
        (pairs[0].model.as_str(), pairs[0].baseline.as_str()),
        ("x", "y")
    );
    assert_eq!(pairs[0].participants, 4);
    assert!((pairs[0].clustered_standard_error - se).abs() < 1e-12);
    let best = versus_best(&names, &values, &[10.0, 7.0, 0.0], &alone);
    assert!(best.iter().all(|d| d.baseline == "x"));
    assert_eq!(best[0].mean_difference, 0.0);
}

#[test]
fn clustered_standard_errors_count_each_participant_once() {
    // d = 1, 3 (participant 7) and 2, 6 (participant 9): mean 3, cluster sums −2 and 2, so
    // SE² = 2/(2 − 1) · (4 + 4) / 4² = 1; the paired SE, sqrt(14/3/4), treats the four as
    // independent.
    let a = [1.0, 3.0, 2.0, 6.0];
    let b = [0.0; 4];
    let (g, se) = clustered_standard_error(&a, &b, &[7, 7, 9, 9]);
    assert_eq!(g, 2);
    assert!((se - 1.0).abs() < 1e-12, "{se}");
    let (_, _, paired) = paired_difference(&a, &b);
    assert!((paired - (14.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
    // One participant: no spread between clusters to estimate from.
    let (g, se) = clustered_standard_error(&a, &b, &[7; 4]);
    assert_eq!(g, 1);
    assert!(se.is_nan());
    // Within-participant correlation widens the error: two copies of each participant's
    // difference are not twice the evidence.
    let twice = [1.0, 1.0, 4.0, 4.0, -2.0, -2.0];
    let (_, _, paired) = paired_difference(&twice, &[0.0; 6]);
    let (_, clustered) = clustered_standard_error(&twice, &[0.0; 6], &[1, 1, 2, 2, 3, 3]);
    assert!(clustered > paired, "{clustered} vs {paired}");
}

/// The development data of tasks a and c, with their real enumerations.
fn dev_sets() -> ChoiceSets {
    let tasks = dsl::tasks::correa2025().tasks.clone();
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/programs-dev.csv"
    ));
    let loaded =
        analysis::pipeline::load_observations(path, &tasks, &ObserveOptions::default()).unwrap();
    let observed: Vec<_> = loaded
        .observed
        .into_iter()
        .filter(|o| o.task == 0 || o.task == 2)
        .collect();
    analysis::pipeline::enumerated_choice_sets(&tasks, &observed, &|_| {}).unwrap()
}

#[test]
fn on_real_data_each_fold_set_is_the_enumeration_plus_its_training_programs() {
    let sets = dev_sets();
    let split_folds = folds(&sets.participants(), 5, 0).unwrap();
    let splits = participant_splits(&sets, &split_folds, SetRule::Training).unwrap();
    for task in sets.tasks.iter().filter(|t| !t.observations.is_empty()) {
        let unenumerated: BTreeSet<&str> = task
            .observations
            .iter()
            .filter(|o| !o.in_enumeration)
            .map(|o| o.program.as_str())
            .collect();
        let size: u64 = task.multiplicity.iter().sum();
        assert_eq!(size, task.enumerated + unenumerated.len() as u64);
    }
    let mut held_out_added = 0;
    for (fold, split) in split_folds.iter().zip(&splits) {
        for (full, train) in sets.tasks.iter().zip(&split.train.tasks) {
            let training: BTreeSet<&str> = full
                .observations
                .iter()
                .filter(|o| !o.in_enumeration && !fold.contains(&o.participant))
                .map(|o| o.program.as_str())
                .collect();
            let size: u64 = train.multiplicity.iter().sum();
            assert_eq!(
                size,
                full.enumerated + training.len() as u64,
                "{}",
                full.label
            );
            let kept: BTreeSet<&str> = train
                .added_programs
                .iter()
                .map(|(p, _)| p.as_str())
                .collect();
            assert_eq!(kept, training);
        }
        for obs in &split.held_out {
            assert!(fold.contains(&obs.participant));
            let full = &sets.tasks[obs.task];
            let enumerated = full
                .observations
                .iter()
                .any(|o| o.program == obs.program && o.in_enumeration);
            let by_training = full
                .observations
                .iter()
                .any(|o| o.program == obs.program && !fold.contains(&o.participant));
            assert_eq!(obs.in_set, enumerated || by_training, "{obs:?}");
            held_out_added += usize::from(!obs.in_set);
        }
    }
    // The data has programs only held-out participants wrote, so the rule matters here.
    assert!(held_out_added > 0);
}
