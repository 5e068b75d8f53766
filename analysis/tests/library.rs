//! The corpus library by compression (docs/modelling.md §4.10) on synthetic corpora: a planted
//! body is found first with its uses, a corpus without repeated material gets no library, a body
//! with a hole is kept only when holes are on and it pays, and the description lengths add up.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use analysis::StatKey;
use analysis::choice::ObservedProgram;
use analysis::library::{Library, LibraryConfig, build_library};
use dsl::Limits;

fn observed(text: &str, participant: u32, task: usize) -> ObservedProgram {
    let limits = Limits::default();
    let program = dsl::compact::parse(text, &limits)
        .expect("test program parses")
        .with_slots(limits.subroutines);
    ObservedProgram {
        line: 0,
        participant,
        task,
        order_position: 0,
        text: program.to_compact(),
        key: StatKey::new(&program, 0),
        program,
    }
}

fn labels() -> Vec<String> {
    ('a'..='j').map(String::from).collect()
}

fn library(corpus: &[ObservedProgram], holes: bool) -> Library {
    let config = LibraryConfig {
        holes,
        ..LibraryConfig::default()
    };
    build_library(corpus, &labels(), &config).expect("valid settings")
}

/// The saving of each body, summed, is what the corpus plus its library lost.
fn assert_lengths_add_up(library: &Library) {
    let saved: f64 = library.bodies.iter().map(|b| b.saved).sum();
    let dl = &library.description_length;
    assert!(
        (dl.before - saved - dl.after).abs() < 1e-6 * dl.before.max(1.0),
        "before {} - saved {saved} != after {}",
        dl.before,
        dl.after
    );
    assert!(library.bodies.iter().all(|b| b.saved > 0.0));
}

/// Random material without `W` (so it never makes the planted body) of `n` tokens.
fn filler(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| ['J', 'R', 'S'][rng.random_range(0..3)])
        .collect()
}

#[test]
fn a_planted_body_used_across_programs_is_the_first_library_body_with_its_uses() {
    // Arrange: `WWL` inside 40 different programs of five tasks, in main and in subroutines,
    // twice in some routines, never as a subroutine of its own.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut corpus = Vec::new();
    let mut planted = 0;
    for i in 0..40 {
        let mut f = |n| filler(&mut rng, n);
        let text = match i % 3 {
            0 => format!("{}WWL{}", f(2), f(2)),
            1 => format!("{}1{}|{}WWL{}", f(2), f(1), f(1), f(2)),
            _ => format!("{}WWL{}WWL{}1|{}", f(1), f(2), f(1), f(3)),
        };
        planted += if i % 3 == 2 { 2 } else { 1 };
        corpus.push(observed(&text, i / 4, (i % 5) as usize));
    }

    // Act
    let library = library(&corpus, true);

    // Assert
    let first = &library.bodies[0];
    assert_eq!(first.body, "WWL");
    assert!(!first.hole);
    assert_eq!(first.uses, planted);
    assert_eq!(first.whole_subroutine_uses, 0);
    assert_eq!(first.programs, 40);
    assert_eq!(first.participants, 10);
    assert_eq!(first.per_task.len(), 5);
    assert_eq!(
        first.per_task.iter().map(|t| t.uses).sum::<usize>(),
        planted
    );
    for task in &first.per_task {
        assert_eq!(task.programs, 8, "{task:?}");
        assert!((task.participant_share - 1.0).abs() < 1e-12, "{task:?}");
    }
    assert_eq!(library.n_programs, 40);
    assert_lengths_add_up(&library);
}

#[test]
fn a_subroutine_body_shared_by_programs_replaces_the_subroutines_whole() {
    let mains = ["1J", "1R", "1S", "J1", "R1", "S1", "1L", "L1", "W1", "1W"];
    let corpus: Vec<_> = mains
        .iter()
        .enumerate()
        .map(|(i, main)| observed(&format!("{main}|WWWS"), i as u32, 3))
        .collect();

    let library = library(&corpus, true);

    let first = &library.bodies[0];
    assert_eq!(first.body, "WWWS");
    assert_eq!((first.uses, first.whole_subroutine_uses), (10, 10));
    assert_eq!(first.per_task[0].task, "d");
    assert_lengths_add_up(&library);
}

#[test]
fn a_corpus_without_repeated_material_has_an_empty_library() {
    // Every pair of adjacent tokens, and every pair two apart, occurs once.
    let corpus = [
        observed("WJL", 0, 0),
        observed("RSJ", 1, 0),
        observed("LWS", 2, 1),
        observed("JRW", 3, 1),
        observed("SLR|1J", 4, 2),
    ];
    for holes in [false, true] {
        let library = library(&corpus, holes);
        assert!(library.bodies.is_empty(), "{:?}", library.bodies);
        let dl = library.description_length;
        assert_eq!(dl.before, dl.after);
        assert!(dl.before > 0.0);
    }
}

/// Programs with `W x L` as main for each filler x, the subroutines holding unrepeated pairs.
fn hole_corpus(fillers: &[&str]) -> Vec<ObservedProgram> {
    let slots = ["", "|RJ", "||SR", "|||JS", "||||RS"];
    fillers
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let slot = x.parse::<usize>().map_or("", |k| slots[k]);
            observed(&format!("W{x}L{slot}"), i as u32, i % 3)
        })
        .collect()
}

#[test]
fn a_body_with_a_hole_is_found_only_with_holes_on_and_where_it_pays() {
    // Seven fillers, none twice: no fixed body repeats, so only the hole body can pay.
    let fillers = ["J", "R", "S", "1", "2", "3", "4"];
    let corpus = hole_corpus(&fillers);

    let with_holes = library(&corpus, true);
    let without = library(&corpus, false);

    assert_eq!(with_holes.bodies.len(), 1, "{:?}", with_holes.bodies);
    let body = &with_holes.bodies[0];
    assert_eq!(body.body, "W?L");
    assert!(body.hole);
    assert_eq!(body.uses, 7);
    assert_eq!(body.fillers.len(), 7);
    assert!(body.fillers.values().all(|&n| n == 1));
    assert_lengths_add_up(&with_holes);
    assert!(without.bodies.is_empty(), "{:?}", without.bodies);

    // Two uses do not pay for the body: with the defaults a hole use saves
    // 2 ln 10 − ln 2 − ln 0.9 ≈ 4.02 nats, and the body costs 4 ln 10 − 2 ln 0.9 ≈ 9.42.
    let two = library(&hole_corpus(&fillers[..2]), true);
    assert!(two.bodies.is_empty(), "{:?}", two.bodies);
    let three = library(&hole_corpus(&fillers[..3]), true);
    assert_eq!(three.bodies.len(), 1);
}

#[test]
fn a_hole_that_is_always_filled_alike_loses_to_the_fixed_body() {
    let corpus = hole_corpus(&["J"; 6]);

    let library = library(&corpus, true);

    assert_eq!(library.bodies.len(), 1);
    assert_eq!(library.bodies[0].body, "WJL");
    assert_eq!(library.bodies[0].uses, 6);
}

#[test]
fn later_bodies_call_earlier_ones_and_expand_to_their_tokens() {
    // `JS` is everywhere and found first; later bodies hold it as `[1]`.
    let mut corpus = Vec::new();
    for i in 0..30 {
        let text = if i % 2 == 0 { "RJSLJS" } else { "WJSRWJS" };
        corpus.push(observed(text, i, 0));
    }

    let library = library(&corpus, false);

    let names: Vec<_> = library.bodies.iter().map(|b| b.body.as_str()).collect();
    assert_eq!(names[0], "JS", "{names:?}");
    let nested = library
        .bodies
        .iter()
        .find(|b| b.body.contains("[1]"))
        .expect("a body that calls the first");
    assert!(nested.expanded.contains("JS"), "{nested:?}");
    assert!(!nested.expanded.contains('['), "{nested:?}");
    assert_lengths_add_up(&library);
}

#[test]
fn probabilities_outside_the_open_unit_interval_are_refused() {
    let corpus = [observed("WJL", 0, 0)];
    for (p_call, p_end) in [(0.0, 0.1), (1.0, 0.1), (0.5, 0.0), (0.5, f64::NAN)] {
        let config = LibraryConfig {
            p_call,
            p_end,
            holes: true,
        };
        assert!(build_library(&corpus, &labels(), &config).is_err());
    }
}
