//! Inputs found by the fuzz targets in `fuzz/` (docs/fuzzing.md), kept as ordinary tests so that
//! `cargo test` checks them without the fuzzer.

use dsl::canon::{CanonOptions, canonicalise};
use dsl::compact;
use dsl::map::parse_level_file;
use dsl::tasks::correa2025;
use dsl::{Limits, Program, RunOptions, run, step_classes};

fn program(text: &str) -> Program {
    compact::parse(text, &Limits::default()).expect("test program parses")
}

/// `load_map`: a jump from a cell of height 255 overflowed `u8` while checking for a step up by
/// one, and panicked (in builds with overflow checks) instead of jumping down or failing.
#[test]
fn a_jump_from_height_255_does_not_overflow() {
    // As the fuzzer minimised it: the start cell has height 255 (written as a string), and the
    // fixed programs of the target turn towards the lower cells and jump.
    let found = r#"[{"direction":1,"position":{"x": 2,"y": 0},"map": [[{"h": 1, "t":"b" },{"h":1,"t":"l"},{"h":"255","t":"b"}]]}]"#;
    let task = &parse_level_file(found, "fuzz.json").unwrap()[0];
    for text in ["1|SJLJ1", "LLJ", "12|SWR2|SJL1"] {
        let _ = run(task, &program(text), &RunOptions::default());
    }

    // Down from 255 by any amount works; onto an equal height fails (docs/semantics.md §1.4).
    let level = r#"[{"direction": 3, "position": {"x": 1, "y": 0},
        "map": [[{"h": 1, "t": "l"}, {"h": 255, "t": "b"}, {"h": 255, "t": "b"}]]}]"#;
    let task = &parse_level_file(level, "test.json").unwrap()[0];
    let down = run(task, &program("JS"), &RunOptions::default());
    assert!(down.solved);
    assert_eq!((down.final_state.x, down.effective_steps), (0, 2));
    assert_eq!(step_classes(task, &program("JS")).unwrap().step, 2);

    let level = r#"[{"direction": 1, "position": {"x": 1, "y": 0},
        "map": [[{"h": 1, "t": "l"}, {"h": 255, "t": "b"}, {"h": 255, "t": "b"}]]}]"#;
    let task = &parse_level_file(level, "test.json").unwrap()[0];
    let level_jump = run(task, &program("J"), &RunOptions::default());
    assert_eq!(
        (level_jump.final_state.x, level_jump.effective_steps),
        (1, 0)
    );
}

/// `canonicalise`: pass 1 turned each `W` of this solving program into a chain of calls
/// (`4` → `3` → `2` → `W`), so the rewritten program ran out of the interpreter's budget, and
/// pass 2 checked the budget again and refused the program as unsolved. The answer depended on the
/// options, and the error was wrong: the program solves task b.
#[test]
fn a_solving_program_is_never_refused_as_unsolved_whatever_the_passes() {
    let task = &correa2025().get("b").unwrap().task;
    let raw = program(
        "1W1L1LWLLWRL1WLL1LLWSLWW1|WWRWWWWWWWWWWWWWWWWWWWLWLWRLLSWSWLSWLLWWWSLSWWRSWWWWLLWWLLLS|W|W|W",
    );
    let outcome = run(task, &raw, &RunOptions::default());
    assert!(outcome.solved);
    for bits in 0..128u8 {
        let bit = |i: u8| bits & (1 << i) != 0;
        let options = CanonOptions {
            maximise_reuse: bit(0),
            drop_dead: bit(1),
            remove_unused: bit(2),
            inline_single_use: bit(3),
            inline_length_one: bit(4),
            rewrite_noops: bit(5),
            rename: bit(6),
        };
        let canonical =
            canonicalise(task, &raw, &options).unwrap_or_else(|e| panic!("{options:?}: {e}"));
        let generous = RunOptions {
            budget: 1_000_000,
            ..RunOptions::default()
        };
        assert!(
            run(task, &canonical, &generous).solved,
            "{options:?}: {canonical}"
        );
    }
    // With every pass on, the canonical form also fits the budget again (334 tokens against 385).
    let canonical = canonicalise(task, &raw, &CanonOptions::default()).unwrap();
    assert_eq!(
        canonical.to_compact(),
        "1W1L1LWLLW1WLL1LLWSLWW1|WWRWWWWWWWWWWWWWWWWWWWLWLWLWSWSLWLLWWWLWWRWWWWLLWWSR|||"
    );
    assert!(run(task, &canonical, &RunOptions::default()).solved);
}
