//! The library model `lib+step` (docs/modelling.md §4.5, "The library model"): its grouped
//! likelihood equals scoring every candidate directly, its analytic gradient equals finite
//! differences, it nests gi+step, a score never depends on what the participant wrote later,
//! and reuse of a cached body raises a program's score.
//!
//! The corpora are rows of `analysis/data/programs-dev.csv` on the two smallest reference tasks
//! (a and c, about 90,000 candidates), so that every candidate can be scored directly.

use std::collections::{BTreeMap, HashMap, HashSet};

use analysis::StatKey;
use analysis::choice::{
    ChoiceSets, ObserveOptions, ObservedProgram, SetRule, Split, enumerated_candidates,
    observed_programs,
};
use analysis::data::{ProgramRow, read_programs};
use analysis::fit::{FitOptions, fit, log_likelihood, n_starts, nested_starts};
use analysis::models::gi::{GiParams, log_prior};
use analysis::models::library::{HeldOutRule, LibraryData, LibraryFeatures, leaf_bodies};
use analysis::models::likelihood::{
    Evaluation, Features, GradientRows, Weights, evaluate, evaluate_with, log_mean_exp,
};
use analysis::models::{Model, P_END_GRID, Param, Theta};
use dsl::{Limits, Program, Task};

const DEV_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");
/// Tasks a and c of correa2025, the smallest enumerations.
const TASKS: [usize; 2] = [0, 2];

fn tasks() -> Vec<&'static Task> {
    dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| &t.task)
        .collect()
}

fn labels() -> Vec<String> {
    dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| t.label.clone())
        .collect()
}

fn dev_rows() -> Vec<(u64, ProgramRow)> {
    let file = std::fs::File::open(DEV_DATA).expect("dev data present");
    read_programs(file).expect("dev data reads").rows
}

/// The choice sets, library data and both views of a corpus of rows.
struct Corpus {
    observed: Vec<ObservedProgram>,
    sets: ChoiceSets,
    data: LibraryData,
    library: LibraryFeatures,
    features: Features,
}

fn corpus_of(rows: &[(u64, ProgramRow)]) -> Corpus {
    let tasks = tasks();
    let (observed, errors) = observed_programs(rows, &tasks, &ObserveOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let sets = ChoiceSets::build(
        &labels(),
        &observed,
        |t, queries| enumerated_candidates(tasks[t], queries),
        &|_| {},
    )
    .expect("choice sets build");
    let data = LibraryData::build(&tasks, &observed, &|_| {}).expect("library data builds");
    let library = data.in_sample(&sets).expect("library features");
    let features = Features::new(&sets).with_library(library.clone());
    Corpus {
        observed,
        sets,
        data,
        library,
        features,
    }
}

/// Rows of the first `participants` participants on tasks a and c.
fn small_rows(participants: u32) -> Vec<(u64, ProgramRow)> {
    dev_rows()
        .into_iter()
        .filter(|(_, r)| r.participant_idx < participants && TASKS.contains(&r.mdp_idx))
        .collect()
}

fn lib_step() -> Model {
    Model::by_name("lib+step").expect("known model")
}

fn gi_step() -> Model {
    Model::by_name("gi+step").expect("known model")
}

/// β_step, α, β_GI, p_call, w_o, w_p.
fn lib_theta(values: [f64; 6]) -> Theta {
    lib_step().theta(&values)
}

/// Every candidate of U_t (enumerated, then the added participant programs) with its key and
/// leaf bodies.
fn candidates_of(task: usize, sets: &ChoiceSets) -> Vec<(StatKey, Vec<String>)> {
    let mut all: Vec<(StatKey, Vec<String>)> = analysis::enumerate::candidates(tasks()[task])
        .expect("candidates stream")
        .map(|(program, key)| (key, leaf_bodies(&program)))
        .collect();
    let set = &sets.tasks[task];
    for (text, key) in &set.added_programs {
        let program = dsl::compact::parse(text, &Limits::default()).expect("added program parses");
        all.push((set.keys[*key], leaf_bodies(&program)));
    }
    all
}

/// log P(chosen) of every observation of `task` at every p_end, scoring every candidate of U_t
/// from the definition: shares of leaf-body strings counted here from the observed programs.
fn brute_force(corpus: &Corpus, task: usize, theta: &Theta) -> Vec<[f64; 9]> {
    let all = |_: u32, _: usize| true;
    let view = BruteView {
        sets: &corpus.sets,
        scored: &all,
        population: &all,
        cache: &all,
        added: &|_| false,
    };
    brute_force_in(corpus, task, theta, &view)
}

/// Which programs a brute-force evaluation uses (as the library model's views do).
struct BruteView<'a> {
    /// The choice sets whose candidates are scored.
    sets: &'a ChoiceSets,
    /// Observations scored, programs of the population library, programs a cache may hold.
    scored: &'a dyn Fn(u32, usize) -> bool,
    population: &'a dyn Fn(u32, usize) -> bool,
    cache: &'a dyn Fn(u32, usize) -> bool,
    /// Whether an observation's own program is added once more to its normaliser.
    added: &'a dyn Fn(&ObservedProgram) -> bool,
}

/// [`brute_force`] under `view`.
fn brute_force_in(
    corpus: &Corpus,
    task: usize,
    theta: &Theta,
    view: &BruteView<'_>,
) -> Vec<[f64; 9]> {
    let candidates = candidates_of(task, view.sets);
    let bodies_of: Vec<Vec<String>> = corpus
        .observed
        .iter()
        .map(|o| leaf_bodies(&o.program))
        .collect();
    // Each participant's shares of their leaf bodies; the library is the mean over the others
    // with at least one body.
    let mut per_participant: BTreeMap<u32, (HashMap<&str, f64>, f64)> = BTreeMap::new();
    for (obs, bodies) in corpus.observed.iter().zip(&bodies_of) {
        if !(view.population)(obs.participant, obs.task) {
            continue;
        }
        let (counts, total) = per_participant.entry(obs.participant).or_default();
        for b in bodies {
            *counts.entry(b.as_str()).or_default() += 1.0;
            *total += 1.0;
        }
    }
    let share_of = |participant: u32, body: &str| -> f64 {
        let others: Vec<f64> = per_participant
            .iter()
            .filter(|&(&j, (_, total))| j != participant && *total > 0.0)
            .map(|(_, (counts, total))| counts.get(body).copied().unwrap_or(0.0) / total)
            .collect();
        if others.is_empty() {
            0.0
        } else {
            others.iter().sum::<f64>() / others.len() as f64
        }
    };
    let all_bodies: HashSet<&str> = bodies_of.iter().flatten().map(String::as_str).collect();
    let libraries: HashMap<u32, HashMap<&str, f64>> = corpus
        .observed
        .iter()
        .map(|o| o.participant)
        .map(|i| (i, all_bodies.iter().map(|&b| (b, share_of(i, b))).collect()))
        .collect();
    let (beta_step, beta) = (theta.get(Param::BetaStep), theta.get(Param::BetaGi));
    let (w_own, w_pop) = (theta.get(Param::LibOwn), theta.get(Param::LibPop));
    let p_call = theta.get(Param::PCall);
    let mut results = Vec::new();
    for (o, obs) in corpus
        .observed
        .iter()
        .enumerate()
        .filter(|(_, o)| o.task == task && (view.scored)(o.participant, o.task))
    {
        let mut own: HashMap<&str, f64> = HashMap::new();
        let mut own_total = 0.0;
        for (p, other) in corpus.observed.iter().enumerate() {
            if other.participant != obs.participant || !(view.cache)(other.participant, other.task)
            {
                continue;
            }
            for b in &bodies_of[p] {
                if other.order_position < obs.order_position {
                    *own.entry(b.as_str()).or_default() += 1.0;
                    own_total += 1.0;
                }
            }
        }
        let w_own = if own_total > 0.0 { w_own } else { 0.0 };
        let mut row = [0.0; 9];
        for (e, &p_end) in P_END_GRID.iter().enumerate() {
            let params = GiParams {
                alpha: theta.get(Param::Alpha),
                discount: 0.0,
                p_call,
                p_end,
            };
            let score = |key: &StatKey, bodies: &[String]| -> f64 {
                let mut library = 0.0;
                for b in bodies {
                    let l = b.len() as f64;
                    let p_tok =
                        ((1.0 - p_call) / 5.0).powf(l) * (1.0 - p_end).powf(l - 1.0) * p_end;
                    let f_own = own.get(b.as_str()).map_or(0.0, |c| c / own_total);
                    let f_pop = libraries[&obs.participant]
                        .get(b.as_str())
                        .copied()
                        .unwrap_or(0.0);
                    let p = w_own * f_own + (1.0 - w_own) * (w_pop * f_pop + (1.0 - w_pop) * p_tok);
                    library += p.ln() - p_tok.ln();
                }
                beta * (log_prior(key, &params) + library) - beta_step * f64::from(key.s)
            };
            let mut scores: Vec<f64> = candidates.iter().map(|(k, b)| score(k, b)).collect();
            let chosen = score(&obs.key, &bodies_of[o]);
            if (view.added)(obs) {
                scores.push(chosen);
            }
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_z = max + scores.iter().map(|s| (s - max).exp()).sum::<f64>().ln();
            row[e] = chosen - log_z;
        }
        results.push(row);
    }
    results
}

#[test]
fn the_grouped_likelihood_equals_scoring_every_candidate_directly() {
    // Arrange: 30 participants on tasks a and c, weights that make every term matter.
    let corpus = corpus_of(&small_rows(30));
    let theta = lib_theta([0.3, 1.5, 0.7, 0.3, 0.4, 0.3]);
    // Act
    let fast = corpus.library.observation_scores(&theta);
    // Assert: the same log P(chosen) for every observation and p_end.
    for task in TASKS {
        let brute = brute_force(&corpus, task, &theta);
        assert_eq!(fast[task].len(), brute.len());
        assert!(!brute.is_empty());
        for (f, b) in fast[task].iter().zip(&brute) {
            for e in 0..9 {
                let error = (f.log_likelihood[e] - b[e]).abs();
                assert!(
                    error < 1e-8 * b[e].abs().max(1.0),
                    "task {task} participant {} p_end {}: fast {} brute {}",
                    f.participant,
                    P_END_GRID[e],
                    f.log_likelihood[e],
                    b[e]
                );
            }
        }
    }
}

#[test]
fn where_inclusion_exclusion_cannot_resolve_the_normaliser_the_likelihood_is_a_wall_not_a_wrong_number()
 {
    // Arrange: every participant on tasks a and c, and points far from any fit (large β_GI, a
    // library that nearly replaces fresh bodies), where a contributor's own bodies are taken
    // back out of a library they dominate.
    let corpus = corpus_of(&small_rows(u32::MAX));
    let points = [
        [0.6, 2.0, 3.0, 0.06, 0.6, 0.9],
        [2.5, 1.3, 2.4, 0.06, 0.88, 0.55],
        [1.0, 1.0, 6.0, 0.02, 0.5, 0.99],
        [1.0, 1.0, 10.0, 0.02, 0.9, 0.999],
        [1.0, 1.0, 15.0, 0.02, 0.9, 0.9999],
    ];
    let all = |_: u32, _: usize| true;
    let (mut walls, mut values) = (0, 0);
    for point in points {
        let theta = lib_theta(point);
        // Act
        let fast = corpus.library.observation_scores(&theta);
        // Assert: every finite value of the participants with a wall, and of the first ten, is
        // the definition's to 1e-6; where there is a wall the definition is finite (the wall is
        // numerical, not a point outside the model).
        let mut check: Vec<u32> = (0..10).collect();
        for task in TASKS {
            for f in &fast[task] {
                values += 9;
                let at_wall = f.log_likelihood.iter().filter(|x| !x.is_finite()).count();
                walls += at_wall;
                if at_wall > 0 {
                    check.push(f.participant);
                }
            }
        }
        let scored = |p: u32, _: usize| check.contains(&p);
        let view = BruteView {
            sets: &corpus.sets,
            scored: &scored,
            population: &all,
            cache: &all,
            added: &|_| false,
        };
        for task in TASKS {
            let brute = brute_force_in(&corpus, task, &theta, &view);
            let chosen = fast[task].iter().filter(|f| check.contains(&f.participant));
            for (f, b) in chosen.zip(&brute) {
                for e in 0..9 {
                    let value = f.log_likelihood[e];
                    assert!(b[e].is_finite());
                    assert!(
                        !value.is_finite() || (value - b[e]).abs() < 1e-6 * b[e].abs().max(1.0),
                        "{point:?} task {task} participant {} p_end {}: fast {value} brute {}",
                        f.participant,
                        P_END_GRID[e],
                        b[e]
                    );
                }
            }
        }
    }
    // The points reach a wall, and walls are rare even there.
    assert!(walls > 0, "no point reached a wall");
    assert!(walls * 100 < values, "{walls} walls in {values} values");
}

#[test]
fn library_fits_also_start_at_the_nested_optimum_and_end_no_lower() {
    // Arrange
    let corpus = corpus_of(&small_rows(30));
    let weights = Weights::all(&corpus.sets);
    let options = FitOptions {
        random_starts: 0,
        ..FitOptions::default()
    };
    assert_eq!(lib_step().without_library(), Some(gi_step()));
    assert_eq!(gi_step().without_library(), None);
    let nested = fit(&corpus.features, &weights, &gi_step(), &options, &|| {}).expect("fits");
    // Act
    let starts = nested_starts(&corpus.features, &weights, &lib_step(), &options).expect("starts");
    let fitted = fit(&corpus.features, &weights, &lib_step(), &options, &|| {}).expect("fits");
    // Assert: every nested start holds gi+step's optimum; the first is gi+step itself (library
    // weights at 0), so the fit ends at least as high as gi+step.
    assert_eq!(starts.len(), 10);
    for start in &starts {
        for (a, b) in start[..4].iter().zip(&nested.params) {
            assert!((a - b).abs() < 1e-12, "{start:?} vs {:?}", nested.params);
        }
    }
    assert_eq!(&starts[0][4..], &[0.0, 0.0]);
    let boundary = log_likelihood(&corpus.features, &weights, &lib_step(), &starts[0]);
    assert!((boundary - nested.log_likelihood).abs() < 1e-8);
    assert!(fitted.log_likelihood >= boundary - 1e-6);
    assert_eq!(fitted.restarts, n_starts(&lib_step(), &options));
    assert_eq!(fitted.restarts, 11);
}

/// log P of each held-out observation of `split` under `rule`, computed by brute force over the
/// split's training sets (plus the observation's own program where the split says so), keyed by
/// (task, participant).
fn brute_held_out(
    corpus: &Corpus,
    split: &Split,
    rule: &HeldOutRule,
    theta: &Theta,
) -> HashMap<(usize, u32), [f64; 9]> {
    let in_set: HashMap<(usize, u32), bool> = split
        .held_out
        .iter()
        .map(|h| ((h.task, h.participant), h.in_set))
        .collect();
    let added = |o: &ObservedProgram| !in_set[&(o.task, o.participant)];
    let view = BruteView {
        sets: &split.train,
        scored: &|p, t| !rule.is_training(p, t),
        population: &|p, t| rule.is_training(p, t),
        cache: &|p, t| rule.may_cache(p, t),
        added: &added,
    };
    let mut expected = HashMap::new();
    for task in TASKS {
        let scored = corpus
            .observed
            .iter()
            .filter(|o| o.task == task && !rule.is_training(o.participant, o.task));
        for (obs, row) in scored.zip(brute_force_in(corpus, task, theta, &view)) {
            expected.insert((task, obs.participant), row);
        }
    }
    expected
}

/// Asserts that `fast` (in the order of `split.held_out`) equals `expected`.
fn assert_held_out_equal(
    split: &Split,
    fast: &[Vec<f64>],
    expected: &HashMap<(usize, u32), [f64; 9]>,
) {
    assert_eq!(fast.len(), split.held_out.len());
    assert_eq!(expected.len(), split.held_out.len());
    for (h, row) in split.held_out.iter().zip(fast) {
        let brute = expected[&(h.task, h.participant)];
        for e in 0..9 {
            assert!(
                (row[e] - brute[e]).abs() < 1e-8 * brute[e].abs().max(1.0),
                "task {} participant {} p_end {}: fast {} brute {}",
                h.task,
                h.participant,
                P_END_GRID[e],
                row[e],
                brute[e]
            );
        }
    }
}

/// The training log-likelihood of `split` under `rule` at `theta`, per p_end.
fn training_log_likelihoods(
    corpus: &Corpus,
    split: &Split,
    rule: &HeldOutRule,
    theta: &Theta,
) -> Vec<f64> {
    let library = corpus
        .data
        .training(&split.train, rule)
        .expect("training view");
    let features = Features::new(&split.train).with_library(library);
    let evaluation = evaluate(
        &features,
        &Weights::all(&split.train),
        &lib_step(),
        theta,
        false,
    );
    (0..9).map(|e| evaluation.grid_log_likelihood(e)).collect()
}

/// The split of `corpus` that `rule` holds out, with fold sets.
fn split_of(corpus: &Corpus, rule: &HeldOutRule) -> Split {
    corpus
        .sets
        .split(SetRule::Training, |t, o| rule.is_training(o.participant, t))
        .expect("split")
}

/// Asserts that the training likelihood of a split is the same in two corpora.
fn assert_training_unchanged(
    (before, before_split): (&Corpus, &Split),
    (after, after_split): (&Corpus, &Split),
    rule: &HeldOutRule,
    theta: &Theta,
) {
    let before = training_log_likelihoods(before, before_split, rule, theta);
    let after = training_log_likelihoods(after, after_split, rule, theta);
    for (b, a) in before.iter().zip(&after) {
        assert!((b - a).abs() < 1e-9 * b.abs(), "training moved: {b} → {a}");
    }
}

/// `rows` with `participant`'s program on `task` replaced by `donor`'s.
fn swap_program(
    rows: &[(u64, ProgramRow)],
    participant: u32,
    task: usize,
    donor: u32,
) -> Vec<(u64, ProgramRow)> {
    let donor = rows
        .iter()
        .find(|(_, r)| r.participant_idx == donor && r.mdp_idx == task)
        .map(|(_, r)| r.clone())
        .expect("donor row");
    let mut changed = rows.to_vec();
    for (_, row) in &mut changed {
        if row.participant_idx == participant && row.mdp_idx == task {
            row.program = donor.program.clone();
            row.preprocessed_program = donor.preprocessed_program.clone();
            row.skipped = false;
        }
    }
    changed
}

#[test]
fn held_out_participants_are_scored_in_the_fold_sets_from_the_training_library_only() {
    // Arrange: 30 participants on tasks a and c; every third participant is held out.
    let rows = small_rows(30);
    let corpus = corpus_of(&rows);
    let held: Vec<u32> = (0..30).filter(|p| p % 3 == 0).collect();
    let rule = HeldOutRule::Participants(held);
    let split = split_of(&corpus, &rule);
    let theta = lib_theta([0.3, 1.5, 0.7, 0.3, 0.4, 0.3]);
    // Act
    let fast = corpus
        .data
        .held_out_log_likelihoods(&split.train, &rule, &split.held_out, &theta)
        .expect("held-out scores");
    // Assert: equal to scoring every candidate of the fold sets from the definition, with some
    // held-out program added to its own set.
    assert!(split.held_out.iter().any(|h| !h.in_set));
    assert_held_out_equal(
        &split,
        &fast,
        &brute_held_out(&corpus, &split, &rule, &theta),
    );
    // Assert: a held-out participant's program changes neither the training likelihood nor
    // another held-out participant's score.
    let changed = corpus_of(&swap_program(&rows, 3, 0, 4));
    let changed_split = split_of(&changed, &rule);
    assert_training_unchanged((&corpus, &split), (&changed, &changed_split), &rule, &theta);
    let rescored = changed
        .data
        .held_out_log_likelihoods(&changed_split.train, &rule, &changed_split.held_out, &theta)
        .expect("held-out scores");
    let others = |split: &Split, scores: &[Vec<f64>]| -> Vec<Vec<f64>> {
        split
            .held_out
            .iter()
            .zip(scores)
            .filter(|(h, _)| h.participant != 3)
            .map(|(_, row)| row.clone())
            .collect()
    };
    let (old, new) = (others(&split, &fast), others(&changed_split, &rescored));
    assert_eq!(old.len(), new.len());
    for (o, n) in old.iter().zip(&new) {
        for e in 0..9 {
            assert!((o[e] - n[e]).abs() < 1e-9 * o[e].abs().max(1.0));
        }
    }
}

#[test]
fn a_held_out_task_is_scored_in_its_enumeration_and_its_programs_reach_no_training_cache() {
    // Arrange: even participants see task a first, odd ones task c first, so that a cache of
    // task a can hold a task-c body. Task c is held out.
    let mut rows = small_rows(30);
    for (_, row) in &mut rows {
        let c_first = row.participant_idx % 2 == 1;
        row.order_position = Some(usize::from((row.mdp_idx == 2) != c_first));
    }
    let corpus = corpus_of(&rows);
    let rule = HeldOutRule::Task(2);
    let split = split_of(&corpus, &rule);
    let theta = lib_theta([0.3, 1.2, 0.8, 0.3, 0.5, 0.4]);
    // Act
    let fast = corpus
        .data
        .held_out_log_likelihoods(&split.train, &rule, &split.held_out, &theta)
        .expect("held-out scores");
    // Assert: equal to scoring every candidate of task c's enumeration from the definition,
    // with the even participants' task-a bodies in their caches.
    assert!(split.held_out.iter().all(|h| h.task == 2));
    assert_held_out_equal(
        &split,
        &fast,
        &brute_held_out(&corpus, &split, &rule, &theta),
    );
    // Assert: an odd participant's task-c program, seen before their task a, does not move the
    // training likelihood (task a's caches hold no held-out program).
    let changed = corpus_of(&swap_program(&rows, 5, 2, 8));
    let changed_split = split_of(&changed, &rule);
    assert_training_unchanged((&corpus, &split), (&changed, &changed_split), &rule, &theta);
    // The same change does move the in-sample likelihood, where the cache may hold it.
    let in_sample = |c: &Corpus| {
        evaluate(
            &c.features,
            &Weights::all(&c.sets),
            &lib_step(),
            &theta,
            false,
        )
        .grid_log_likelihood(0)
    };
    assert!((in_sample(&corpus) - in_sample(&changed)).abs() > 1e-6);
}

#[test]
fn the_direct_scorer_agrees_with_the_grouped_scores_of_chosen_programs() {
    let corpus = corpus_of(&small_rows(12));
    let theta = lib_theta([0.2, 0.8, 1.3, 0.2, 0.6, 0.5]);
    let fast = corpus.library.observation_scores(&theta);
    let scorer = corpus.data.direct_scorer(&|_, _| true);
    for task in TASKS {
        let observed: Vec<&ObservedProgram> =
            corpus.observed.iter().filter(|o| o.task == task).collect();
        for (f, obs) in fast[task].iter().zip(observed) {
            for (e, &p_end) in P_END_GRID.iter().enumerate() {
                let direct =
                    scorer.score(&theta, obs.participant, task, &obs.program, &obs.key, p_end);
                assert!((f.score[e] - direct).abs() < 1e-9 * direct.abs().max(1.0));
            }
        }
    }
}

fn total_log_likelihood(evaluation: &Evaluation, grid: usize) -> f64 {
    evaluation.grid_log_likelihood(grid)
}

#[test]
fn the_analytic_gradient_equals_central_differences() {
    let corpus = corpus_of(&small_rows(20));
    let weights = Weights::all(&corpus.sets);
    let model = lib_step();
    let values = [0.4, 1.2, 0.9, 0.25, 0.35, 0.45];
    let theta = lib_theta(values);
    let analytic = evaluate(&corpus.features, &weights, &model, &theta, true);
    for (i, param) in model.params.iter().enumerate() {
        let h = 1e-6 * values[i].abs().max(0.1);
        let mut up = values;
        up[i] += h;
        let mut down = values;
        down[i] -= h;
        let plus = evaluate(&corpus.features, &weights, &model, &lib_theta(up), false);
        let minus = evaluate(&corpus.features, &weights, &model, &lib_theta(down), false);
        for (e, p_end) in P_END_GRID.iter().enumerate() {
            let numeric =
                (total_log_likelihood(&plus, e) - total_log_likelihood(&minus, e)) / (2.0 * h);
            let exact = analytic.grid_gradient[e][param.index()];
            assert!(
                (numeric - exact).abs() < 1e-5 * numeric.abs().max(1.0),
                "{} at p_end {p_end}: numeric {numeric} analytic {exact}",
                param.name(),
            );
        }
    }
}

#[test]
fn the_averaged_gradient_needs_only_the_p_end_values_that_carry_the_average() {
    // Arrange: the whole of tasks a and c, where the p_end posterior is concentrated.
    let corpus = corpus_of(&small_rows(200));
    let weights = Weights::all(&corpus.sets);
    let theta = lib_theta([0.5, 2.0, 0.4, 0.1, 0.6, 0.2]);
    // Act
    let every = evaluate(&corpus.features, &weights, &lib_step(), &theta, true);
    let averaged = evaluate_with(
        &corpus.features,
        &weights,
        &lib_step(),
        &theta,
        GradientRows::Averaged,
    );
    // Assert: some rows were skipped, and the averaged gradient is the same.
    let skipped = (0..9)
        .filter(|&e| averaged.grid_gradient[e].iter().all(|&g| g == 0.0))
        .count();
    assert!(skipped > 0, "no p_end value was negligible");
    assert_eq!(every.log_likelihood(), averaged.log_likelihood());
    for (a, b) in every.gradient().iter().zip(averaged.gradient()) {
        assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn with_zero_library_weights_lib_step_is_gi_step() {
    // Arrange
    let corpus = corpus_of(&small_rows(30));
    let weights = Weights::all(&corpus.sets);
    let gi_values = [0.4, 1.2, 0.9, 0.25];
    let gi = gi_step().theta(&gi_values);
    let lib = lib_theta([0.4, 1.2, 0.9, 0.25, 0.0, 0.0]);
    // Act
    let gi_evaluation = evaluate(&corpus.features, &weights, &gi_step(), &gi, false);
    let lib_evaluation = evaluate(&corpus.features, &weights, &lib_step(), &lib, false);
    let scores = corpus.library.observation_scores(&lib);
    // Assert: equal scores of the chosen programs and equal log-likelihoods.
    for task in TASKS {
        let observed = corpus.observed.iter().filter(|o| o.task == task);
        for (score, obs) in scores[task].iter().zip(observed) {
            for (e, &p_end) in P_END_GRID.iter().enumerate() {
                assert!((score.score[e] - gi.score(&obs.key, p_end)).abs() < 1e-6);
            }
        }
    }
    for (e, p_end) in P_END_GRID.iter().enumerate() {
        let (a, b) = (
            gi_evaluation.grid_log_likelihood(e),
            lib_evaluation.grid_log_likelihood(e),
        );
        assert!((a - b).abs() < 1e-8 * a.abs(), "p_end {p_end}: {a} vs {b}");
    }
    assert!((gi_evaluation.log_likelihood() - lib_evaluation.log_likelihood()).abs() < 1e-8);
}

#[test]
fn a_score_does_not_change_when_later_programs_change() {
    // Arrange: participants see task c first and task a second (order_position), so the cache
    // of task a holds their task-c bodies; then participant 3's task-a program, seen later than
    // task c, is swapped for another participant's.
    let mut rows = small_rows(16);
    for (_, row) in &mut rows {
        row.order_position = Some(if row.mdp_idx == 2 { 0 } else { 1 });
    }
    let before = corpus_of(&rows);
    let donor = rows
        .iter()
        .find(|(_, r)| r.participant_idx == 9 && r.mdp_idx == 0)
        .map(|(_, r)| r.clone())
        .expect("donor row");
    let mut changed = rows.clone();
    for (_, row) in &mut changed {
        if row.participant_idx == 3 && row.mdp_idx == 0 {
            row.program = donor.program.clone();
            row.preprocessed_program = donor.preprocessed_program.clone();
            row.skipped = false;
        }
    }
    let after = corpus_of(&changed);
    let theta = lib_theta([0.3, 1.1, 0.8, 0.3, 0.5, 0.4]);
    // Act
    let score_of = |c: &Corpus| {
        c.library.observation_scores(&theta)[2]
            .iter()
            .find(|s| s.participant == 3)
            .copied()
            .expect("participant 3 chose on task c")
    };
    let (old, new) = (score_of(&before), score_of(&after));
    // Assert: participant 3's task-c score and log-likelihood stay; their task-a program did
    // change, and someone else's task-c likelihood moved with it (the population library).
    for e in 0..9 {
        assert!((old.score[e] - new.score[e]).abs() < 1e-9);
        assert!((old.log_likelihood[e] - new.log_likelihood[e]).abs() < 1e-9);
    }
    let programs = |c: &Corpus| -> Vec<String> {
        c.observed
            .iter()
            .filter(|o| o.participant == 3 && o.task == 0)
            .map(|o| o.text.clone())
            .collect()
    };
    assert_ne!(programs(&before), programs(&after));
    let moved = |c: &Corpus| -> Vec<f64> {
        c.library.observation_scores(&theta)[2]
            .iter()
            .filter(|s| s.participant != 3)
            .map(|s| s.log_likelihood[0])
            .collect()
    };
    assert!(
        moved(&before)
            .iter()
            .zip(moved(&after))
            .any(|(a, b)| (a - b).abs() > 1e-9)
    );
}

fn parse(text: &str) -> Program {
    dsl::compact::parse(text, &Limits::default()).expect("test program parses")
}

#[test]
fn a_program_that_reuses_a_cached_body_scores_higher_than_one_with_a_fresh_body() {
    // Arrange: a hand-built corpus. Participant 0 wrote `1L1|WWJS` on task a (seen first);
    // on task c, `1R1|WWJS` reuses that body and `1R1|JWWS` has a fresh one of the same length,
    // with the same statistics.
    let mut observed = Vec::new();
    let tasks = tasks();
    for (participant, text) in [(0u32, "1L1|WWJS"), (1, "1L1|WWJS"), (2, "WWS")] {
        let program = parse(text).with_slots(4);
        observed.push(ObservedProgram {
            line: u64::from(participant) + 2,
            participant,
            task: 0,
            order_position: 0,
            key: StatKey::new(&program, 9),
            text: program.to_compact(),
            program,
        });
    }
    let data = LibraryData::build(&tasks, &observed, &|_| {}).expect("library data builds");
    let scorer = data.direct_scorer(&|_, _| true);
    let reuse = parse("1R1|WWJS");
    let fresh = parse("1R1|JWWS");
    let key = StatKey::new(&reuse, 9);
    assert_eq!(key, StatKey::new(&fresh, 9));
    for (w_own, w_pop) in [(0.5, 0.0), (0.0, 0.5), (0.3, 0.3)] {
        let theta = lib_theta([0.3, 1.0, 1.0, 0.3, w_own, w_pop]);
        // Act
        let reused = scorer.score(&theta, 0, 2, &reuse, &key, 0.3);
        let novel = scorer.score(&theta, 0, 2, &fresh, &key, 0.3);
        // Assert: the reused body is preferred, and without library weights they tie.
        assert!(
            reused > novel + 0.1,
            "w_o {w_own} w_p {w_pop}: {reused} vs {novel}"
        );
    }
    let neutral = lib_theta([0.3, 1.0, 1.0, 0.3, 0.0, 0.0]);
    let (a, b) = (
        scorer.score(&neutral, 0, 2, &reuse, &key, 0.3),
        scorer.score(&neutral, 0, 2, &fresh, &key, 0.3),
    );
    assert!((a - b).abs() < 1e-12);
}

/// Rows of tasks a and c, taken in file order while none of their leaf bodies has been seen.
fn rows_without_repeated_bodies() -> Vec<(u64, ProgramRow)> {
    let tasks = tasks();
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    for (line, row) in dev_rows() {
        if !TASKS.contains(&row.mdp_idx) || row.skipped {
            continue;
        }
        let (observed, _) =
            observed_programs(&[(line, row.clone())], &tasks, &ObserveOptions::default());
        let Some(obs) = observed.first() else {
            continue;
        };
        let bodies = leaf_bodies(&obs.program);
        let distinct: HashSet<&String> = bodies.iter().collect();
        if distinct.len() == bodies.len() && bodies.iter().all(|b| !seen.contains(b)) {
            seen.extend(bodies);
            kept.push((line, row));
        }
    }
    kept
}

#[test]
fn without_repeated_bodies_the_library_weights_stay_at_zero_in_the_fit() {
    // Arrange
    let rows = rows_without_repeated_bodies();
    let corpus = corpus_of(&rows);
    let weights = Weights::all(&corpus.sets);
    let options = FitOptions {
        random_starts: 4,
        ..FitOptions::default()
    };
    // Act
    let gi = fit(&corpus.features, &weights, &gi_step(), &options, &|| {}).expect("gi+step fits");
    let lib =
        fit(&corpus.features, &weights, &lib_step(), &options, &|| {}).expect("lib+step fits");
    eprintln!(
        "{} observations; gi+step LL {:.4} {:?}; lib+step LL {:.4} {:?}",
        corpus.sets.n_observations(),
        gi.log_likelihood,
        gi.params,
        lib.log_likelihood,
        lib.params
    );
    // Assert
    assert!(lib.log_likelihood >= gi.log_likelihood - 1e-6);
    assert!((lib.log_likelihood - gi.log_likelihood).abs() < 1e-3);
}

#[test]
fn library_features_count_every_program_of_each_choice_set() {
    let corpus = corpus_of(&small_rows(10));
    let by_task: BTreeMap<usize, usize> = TASKS
        .iter()
        .map(|&t| (t, corpus.library.n_observations(t)))
        .collect();
    for (t, n) in by_task {
        assert_eq!(n, corpus.sets.tasks[t].observations.len());
        assert!(corpus.data.n_groups(t) > 0);
    }
    assert!(corpus.data.n_bodies() > 0);
    // Mean log P of a uniform choice is below the fitted-free evaluation's: a sanity bound.
    let weights = Weights::all(&corpus.sets);
    let evaluation = evaluate(
        &corpus.features,
        &weights,
        &lib_step(),
        &lib_theta([0.3, 1.0, 1.0, 0.3, 0.2, 0.2]),
        false,
    );
    let per_grid: Vec<f64> = (0..9).map(|e| evaluation.grid_log_likelihood(e)).collect();
    assert!(log_mean_exp(&per_grid).is_finite());
}

/// Prints the sizes and the time of one evaluation on the whole development data (about a
/// minute in release mode to build): `cargo test --release -p analysis --test library_model --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn print_the_evaluation_sizes_on_the_dev_data() {
    let rows = dev_rows();
    let began = std::time::Instant::now();
    let corpus = corpus_of(&rows);
    eprintln!("built in {:.1} s", began.elapsed().as_secs_f64());
    for (t, sizes) in corpus.library.sizes().iter().enumerate() {
        eprintln!("task {t}: {sizes:?}");
    }
    let weights = Weights::all(&corpus.sets);
    let theta = lib_theta([0.5, 2.3, 0.38, 0.09, 0.2, 0.2]);
    for (model, theta) in [
        (gi_step(), gi_step().theta(&[0.5, 2.3, 0.38, 0.09])),
        (lib_step(), theta),
    ] {
        // PROGLAB_EVALUATIONS evaluations each (5 unless set), for profiling.
        let n: u32 = std::env::var("PROGLAB_EVALUATIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(5);
        let began = std::time::Instant::now();
        for _ in 0..n {
            let evaluation = evaluate_with(
                &corpus.features,
                &weights,
                &model,
                &theta,
                GradientRows::Averaged,
            );
            assert!(evaluation.log_likelihood().is_finite());
        }
        eprintln!(
            "{}: {:.2} ms per evaluation with the p_end-averaged gradient",
            model.name,
            began.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
        );
    }
}
