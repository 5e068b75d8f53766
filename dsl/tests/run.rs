//! The interpreter and step classes against docs/semantics.md §1 and §2.

use dsl::tasks::{MAPS_JSON, correa2025, lookup};
use dsl::{Effect, LightMode, Limits, Program, RunOptions, Task, compact, run, step_classes};

fn program(text: &str) -> Program {
    compact::parse(text, &Limits::default()).expect("test program parses")
}

/// docs/semantics.md §1.8 writes some programs with the internal letters A-E.
fn internal(text: &str) -> Program {
    let readable: String = text
        .chars()
        .map(|c| match c {
            'A' => 'S',
            'B' => 'J',
            'C' => 'W',
            'D' => 'R',
            'E' => 'L',
            other => other,
        })
        .collect();
    program(&readable)
}

fn task(label: &str) -> &'static Task {
    &lookup(&format!("correa2025/{label}"))
        .expect("bundled task")
        .task
}

#[test]
fn the_running_example_solves_task_c_in_18_steps() {
    let p = program("1LJL1RJR1|WWWS|||");
    let outcome = run(task("c"), &p, &RunOptions::default());
    assert!(outcome.solved);
    assert_eq!(outcome.steps, 18);
    assert_eq!(dsl::Metrics::of(&p).t, 13);
}

#[test]
fn the_running_example_calls_p1_from_the_three_documented_places() {
    let options = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let outcome = run(task("c"), &program("1LJL1RJR1|WWWS|||"), &options);
    let call_sites: Vec<(u8, u8)> = outcome
        .trace
        .iter()
        .filter(|step| step.effect == Effect::Call)
        .map(|step| (step.before.x, step.before.y))
        .collect();
    assert_eq!(call_sites, vec![(1, 4), (2, 1), (3, 4)]);
    // Subroutine bodies run one level deeper than main.
    assert!(
        outcome
            .trace
            .iter()
            .filter(|s| s.routine == 1)
            .all(|s| s.depth == 1)
    );
    assert!(
        outcome
            .trace
            .iter()
            .filter(|s| s.routine == 0)
            .all(|s| s.depth == 0)
    );
}

#[test]
fn step_classes_match_the_reference_table() {
    let maps0 = Task::from_level_file(MAPS_JSON, "maps.json", 0).unwrap();
    let cases = [
        (&maps0, internal("111E|CA"), (4, 2, 1, 0)),
        (&maps0, internal("1|CA1"), (4, 2, 0, 0)),
        (&maps0, internal("1|CADE1"), (8, 2, 2, 0)),
        (&maps0, internal("1|CABB1"), (4, 6, 0, 2)),
        (
            task("c"),
            program("JJJ1LJL1RJR1WLL|WWWS|LL|L"),
            (18, 3, 2, 1),
        ),
    ];
    for (map, p, expected) in cases {
        let classes = step_classes(map, &p).unwrap();
        assert_eq!(
            (
                classes.step,
                classes.step_noop,
                classes.step_post,
                classes.step_post_noop
            ),
            expected,
            "{p}"
        );
    }
    let last = step_classes(task("c"), &program("JJJ1LJL1RJR1WLL|WWWS|LL|L")).unwrap();
    assert_eq!(last.cost(), 21);
}

#[test]
fn endless_recursion_on_task_c_returns_promptly_as_unsolved() {
    // Regression (docs/semantics.md §1.8): these never light all three lights.
    for text in ["1|1", "1|11", "1|W1"] {
        let p = program(text);
        let outcome = run(task("c"), &p, &RunOptions::default());
        assert!(!outcome.solved, "{text}");
        assert!(outcome.budget_exhausted, "{text}");
        assert_eq!(outcome.tokens, 999, "{text}: the budget allows 999 tokens");
        assert_eq!(
            step_classes(task("c"), &p),
            Err(dsl::ExecError::Unsolved),
            "{text}"
        );
        assert_eq!(
            dsl::metrics::step_cost(task("c"), &p),
            Err(dsl::ExecError::Unsolved)
        );
    }
}

#[test]
fn execution_stops_at_the_goal_before_later_instructions() {
    // Light the last light, then keep walking: the walks after the goal are never executed.
    let p = program("1LJL1RJR1WWWWWW|WWWS|||");
    let outcome = run(task("c"), &p, &RunOptions::default());
    assert!(outcome.solved);
    assert_eq!(outcome.steps, 18);
}

#[test]
fn calls_to_empty_subroutines_are_valid_and_do_nothing() {
    let p = program("2WWWS|||");
    let outcome = run(
        task("c"),
        &p,
        &RunOptions {
            trace: true,
            ..RunOptions::default()
        },
    );
    assert_eq!(outcome.trace[0].effect, Effect::Call);
    assert_eq!(outcome.trace[1].depth, 0);
}

#[test]
fn toggle_mode_switches_a_lit_light_off_again() {
    // On task c, walk to the first light and press Light twice.
    let p = program("WWWSS||||");
    let idempotent = run(task("c"), &p, &RunOptions::default());
    let toggle = run(
        task("c"),
        &p,
        &RunOptions {
            light: LightMode::Toggle,
            ..RunOptions::default()
        },
    );
    assert_eq!(idempotent.final_state.lit.count_ones(), 1);
    assert_eq!(toggle.final_state.lit.count_ones(), 0);
    assert_eq!(idempotent.effective_steps, 4, "the second Light is a no-op");
    assert_eq!(toggle.effective_steps, 5);
}

#[test]
fn the_budget_counts_call_tokens() {
    // 1 calls 2 calls an empty 3: every call is a token, so 333 rounds of `12` use 999 tokens.
    let p = program("1|W21|3||");
    let outcome = run(
        task("c"),
        &p,
        &RunOptions {
            budget: 10,
            ..RunOptions::default()
        },
    );
    assert_eq!(outcome.tokens, 9);
    assert!(outcome.budget_exhausted);
}

#[test]
fn jumps_go_up_one_level_or_down_any_number() {
    // Task j starts at height 2 facing NE with heights 3, 4, 5 ahead: jump, jump, jump.
    let j = task("j");
    let outcome = run(j, &program("JJJ||||"), &RunOptions::default());
    assert_eq!((outcome.final_state.x, outcome.final_state.y), (3, 4));
    // Walking onto a higher tile is a no-op.
    let walk = run(j, &program("W||||"), &RunOptions::default());
    assert_eq!(walk.effective_steps, 0);
}

#[test]
fn every_task_has_the_documented_light_count_and_start() {
    let expected = [
        ("a", 3, (4, 1), 3),
        ("b", 8, (1, 3), 0),
        ("c", 3, (1, 4), 0),
        ("d", 6, (3, 4), 3),
        ("e", 3, (1, 3), 2),
        ("f", 7, (1, 3), 0),
        ("g", 8, (5, 1), 3),
        ("h", 6, (1, 4), 0),
        ("i", 4, (0, 2), 0),
        ("j", 3, (0, 4), 1),
    ];
    let set = correa2025();
    assert_eq!(set.tasks.len(), 10);
    for ((label, lights, start, direction), named) in expected.into_iter().zip(&set.tasks) {
        assert_eq!(named.label, label);
        assert_eq!(named.task.n_lights, lights, "{label}");
        assert_eq!((named.task.start_x, named.task.start_y), start, "{label}");
        assert_eq!(named.task.start_direction.index(), direction, "{label}");
    }
    assert_eq!(set.practice[0].task.n_lights, 2);
}
