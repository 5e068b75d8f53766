//! The level-file loader (`dsl::map`, JSON level files, docs/semantics.md §1.1-1.2) on arbitrary
//! UTF-8.
//!
//! Properties:
//! - loading returns `Ok` or a `MapError` with a message; it never panics;
//! - a loaded task keeps the documented limits: a grid of 1..=255 by 1..=255 cells, heights in
//!   1..=255, 1..=64 lights numbered 0.. in order, the start on the grid;
//! - `Task::from_level_file` agrees with `parse_level_file` for every index, and past the end it is
//!   `MapError::NoSuchLevel`;
//! - running a few fixed programs (moves, jumps, turns, lights, recursion, calls to empty slots)
//!   in both light modes, with a trace, and computing step classes, step cost and
//!   canonicalisation on the task, never panics.

#![no_main]

use dsl::canon::{CanonOptions, canonicalise};
use dsl::map::{MAX_LIGHTS, parse_level_file};
use dsl::{
    ExecError, LightMode, Limits, MapError, RunOptions, Task, compact, metrics, run, step_classes,
};
use libfuzzer_sys::fuzz_target;

/// Programs run on every loaded task: straight walks and jumps, every turn, recursion (direct,
/// indirect, after lighting) and calls to empty subroutines.
const PROGRAMS: &[&str] = &[
    "WWWS",
    "JJJS",
    "S",
    "1|WS1",
    "1|JS1",
    "1|SJLJ1",
    "12|SWR2|SJL1",
    "3|S|J|",
    "1LJL1RJR1|WWWS",
    "SSLLLLRRRRS|",
    "11111|JSWSRS",
];

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let tasks = match parse_level_file(json, "fuzz.json") {
        Ok(tasks) => tasks,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(matches!(
                Task::from_level_file(json, "fuzz.json", 0),
                Err(e) if e == error
            ));
            return;
        }
    };
    for (index, task) in tasks.iter().enumerate() {
        assert_eq!(
            Task::from_level_file(json, "fuzz.json", index).as_ref(),
            Ok(task)
        );
    }
    assert!(matches!(
        Task::from_level_file(json, "fuzz.json", tasks.len()),
        Err(MapError::NoSuchLevel { count, .. }) if count == tasks.len()
    ));

    let programs: Vec<_> = PROGRAMS
        .iter()
        .map(|text| compact::parse(text, &Limits::default()).expect("fixed program parses"))
        .collect();
    // Large files are as good as their first few levels for running programs.
    for task in tasks.iter().take(4) {
        check_task(task);
        let _ = task.to_ascii();
        for program in &programs {
            for light in [LightMode::Idempotent, LightMode::Toggle] {
                let outcome = run(
                    task,
                    program,
                    &RunOptions {
                        light,
                        trace: true,
                        ..RunOptions::default()
                    },
                );
                assert!(outcome.tokens < dsl::interp::DEFAULT_BUDGET);
                assert_eq!(outcome.trace.len(), outcome.tokens as usize);
                assert!(task.in_bounds(outcome.final_state.x as i64, outcome.final_state.y as i64));
            }
            let solved = run(task, program, &RunOptions::default()).solved;
            // Step classes are defined exactly for the programs that solve the task
            // (docs/semantics.md §1.8); a solving program may still walk too long after the goal.
            match step_classes(task, program) {
                Err(ExecError::Unsolved) => assert!(!solved),
                Ok(_) | Err(ExecError::TooLong(_)) => assert!(solved),
            }
            let _ = metrics::step_cost(task, program);
            if let Ok(canonical) = canonicalise(task, program, &CanonOptions::default()) {
                assert!(solved);
                assert_eq!(canonical.routines.len(), program.routines.len());
            }
        }
    }
});

fn check_task(task: &Task) {
    assert!((1..=255).contains(&task.width), "width {}", task.width);
    assert!((1..=255).contains(&task.height), "height {}", task.height);
    let cells = task.width * task.height;
    assert_eq!(task.heights.len(), cells);
    assert_eq!(task.lights.len(), cells);
    assert!(task.heights.iter().all(|&h| h >= 1));
    assert!((1..=MAX_LIGHTS).contains(&task.n_lights));
    let mut numbers: Vec<u8> = task.lights.iter().flatten().copied().collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..task.n_lights as u8).collect::<Vec<_>>());
    assert!(task.start_x < task.width && task.start_y < task.height);
    assert!(!task.is_terminal(&task.start_state()));
}
