//! The experiment definition loader and validator (`server::experiment::parse`, the entry point
//! that `load_file` and the bundled experiments also use) on arbitrary UTF-8 TOML.
//!
//! Properties:
//! - never a panic: the result is an `Experiment` or an `ExperimentError` that lists at least one
//!   problem, each with a message, and prints as text naming the file;
//! - a validated experiment can be served: every task order it can give (fixed, shuffled with a
//!   few seeds, every balanced condition) is a permutation of its task indices, its timeline can
//!   be built for each and names only existing tasks and screens, every demonstration program fits the experiment's limits, and the
//!   completion redirect can be built;
//! - parsing is deterministic (the same text gives the same version hash).
//!
//! Referenced files resolve to the bundled tutorial levels and the two bundled level files, under
//! the names `tutorial-levels.json`, `maps.json` and `cgc-maps.json`.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use server::experiment::{EmbeddedFiles, Step, parse};

const FILES: &[(&str, &str)] = &[
    (
        "tutorial-levels.json",
        include_str!("../../server/experiments/tutorial-levels.json"),
    ),
    ("maps.json", dsl::tasks::MAPS_JSON),
    ("cgc-maps.json", dsl::tasks::CGC_MAPS_JSON),
    ("intro.md", "# Hello\n\nSome *Markdown*."),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let experiment = match parse(text, "fuzz.toml", &EmbeddedFiles(FILES)) {
        Ok(experiment) => experiment,
        Err(error) => {
            assert_eq!(error.file, "fuzz.toml");
            assert!(!error.problems.is_empty(), "an error without a problem");
            assert!(
                error.problems.iter().all(|p| !p.message.trim().is_empty()),
                "a problem without a message: {error:?}"
            );
            assert!(error.to_string().starts_with("fuzz.toml: "));
            return;
        }
    };

    let again = parse(text, "fuzz.toml", &EmbeddedFiles(FILES)).expect("parses twice");
    assert_eq!(again.version, experiment.version);

    let n = experiment.tasks.len();
    assert!(n > 0, "an experiment without tasks was accepted");
    let mut orders = vec![
        experiment.order.task_order(n, None, 0),
        experiment.order.task_order(n, None, u64::MAX),
        experiment.order.task_order(n, None, 12345),
    ];
    for condition in 0..experiment.order.n_conditions().unwrap_or(0).min(64) {
        orders.push(experiment.order.task_order(n, Some(condition), 7));
    }
    for order in &orders {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..n).collect::<Vec<_>>(),
            "order {order:?} of {n} tasks"
        );
        for step in experiment.timeline(order) {
            match step {
                Step::Task { phase, task, .. } => assert!(
                    experiment.task_entry(phase, task).is_some(),
                    "{step:?} names no task"
                ),
                Step::Screen { phase, index } => assert!(
                    experiment.screen(phase, index).is_some(),
                    "{step:?} names no screen"
                ),
                _ => {}
            }
        }
    }
    for screen in experiment.tutorial.iter().chain(&experiment.instructions) {
        if let Some(demo) = &screen.demo {
            assert_eq!(demo.check(&experiment.limits), Ok(()));
        }
    }
    let mut params = BTreeMap::new();
    params.insert("PROLIFIC_PID".to_owned(), "a b&c".to_owned());
    let _ = experiment.completion.redirect_for(&params);
});
