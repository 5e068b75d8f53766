//! Tests of experiment loading and validation, and of the bundled `correa2025` definition.

use std::collections::BTreeMap;
use std::time::Duration;

use dsl::LightMode;

use super::*;
use crate::domain::Phase;

fn correa() -> Experiment {
    bundled()
        .expect("the bundled experiments are valid")
        .into_iter()
        .find(|e| e.slug.as_str() == "correa2025")
        .unwrap()
}

/// A minimal valid definition, for tests to break one key at a time.
const MINIMAL: &str = r#"
slug = "mini"
title = "Mini"
light = "idempotent"
skip_delay_seconds = 5
[consent]
text = "Agree?"
[[tasks]]
task = "correa2025/c"
[completion]
code = "DONE"
"#;

fn parse_text(text: &str) -> Result<Experiment, ExperimentError> {
    parse(
        text,
        "test.toml",
        &EmbeddedFiles(&[(
            "levels.json",
            include_str!("../../experiments/tutorial-levels.json"),
        )]),
    )
}

#[test]
fn the_bundled_study_waits_210_seconds_before_a_skip_and_toggles_lights() {
    let experiment = correa();
    assert_eq!(experiment.skip_delay, Duration::from_secs(210));
    assert_eq!(experiment.light, LightMode::Toggle);
    assert_eq!(experiment.limits.subroutines, 4);
    assert!(!experiment.allow_repeats);
    assert_eq!(
        experiment.recruiter_id_params,
        vec!["PROLIFIC_PID".to_owned()]
    );
}

#[test]
fn the_bundled_study_has_the_ten_reference_tasks_in_study_order() {
    let experiment = correa();
    let labels: Vec<&str> = experiment.tasks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
    let set = dsl::tasks::correa2025();
    for (entry, named) in experiment.tasks.iter().zip(&set.tasks) {
        assert_eq!(entry.task, named.task, "task {}", entry.label);
    }
    assert_eq!(experiment.order, Order::Fixed);
    assert_eq!(experiment.practice.len(), 1);
    assert_eq!(
        experiment.practice[0].task,
        set.get("practice").unwrap().task
    );
}

#[test]
fn the_bundled_consent_is_a_marked_template() {
    assert!(correa().consent.text.markdown.contains("TEMPLATE"));
}

#[test]
fn the_bundled_questionnaire_uses_the_reference_wording() {
    let experiment = correa();
    let prompts: Vec<&str> = experiment
        .questionnaire
        .iter()
        .map(|i| i.prompt.as_str())
        .collect();
    assert_eq!(
        prompts,
        [
            "How much experience do you have with computer programming?",
            "Have you played Lightbot or another similar programming game before?",
            "What strategy did you use?",
            "Was anything confusing or hard to understand?",
            "Do you have any suggestions on how we can improve the instructions or interface?",
            "Describe any technical difficulties you might have encountered.",
            "Any other comments?",
        ]
    );
    assert_eq!(
        experiment.questionnaire[0].kind,
        ItemKind::Choice {
            options: vec![
                "None".into(),
                "Between 1 and 3 college courses (or equivalent)".into(),
                "More than 3 college courses (or equivalent)".into()
            ]
        }
    );
    assert!(experiment.questionnaire[..2].iter().all(|i| i.required));
    assert!(
        experiment.questionnaire[2..]
            .iter()
            .all(|i| !i.required && i.kind == ItemKind::Text)
    );
}

#[test]
fn every_tutorial_level_to_solve_has_a_solution_under_toggle_lights() {
    let experiment = correa();
    let solutions = ["S", "WWWWS", "JJJS", "WWLWWS"];
    let to_solve: Vec<&Screen> = experiment.tutorial.iter().filter(|s| s.solve).collect();
    assert_eq!(to_solve.len(), solutions.len());
    for (screen, solution) in to_solve.iter().zip(solutions) {
        let program = dsl::parse_program(solution, None, &experiment.limits).unwrap();
        let task = &screen.level.as_ref().unwrap().task;
        let outcome = dsl::run(
            task,
            &program,
            &dsl::RunOptions {
                light: LightMode::Toggle,
                ..Default::default()
            },
        );
        assert!(outcome.solved, "{solution} on {}", task.source);
    }
}

#[test]
fn tutorial_demonstrations_show_what_their_text_says() {
    let experiment = correa();
    let solved: Vec<(String, String, bool)> = experiment
        .tutorial
        .iter()
        .chain(&experiment.instructions)
        .filter_map(|screen| {
            let (level, demo) = (screen.level.as_ref()?, screen.demo.as_ref()?);
            let outcome = dsl::run(
                &level.task,
                demo,
                &dsl::RunOptions {
                    light: experiment.light,
                    ..Default::default()
                },
            );
            Some((level.source.clone(), demo.to_compact(), outcome.solved))
        })
        .collect();
    // Walking up a step fails, lighting twice switches the light off again, jumping two levels up
    // fails; every other demonstration solves its level.
    let failing = [
        ("tutorial-levels.json[2]", "WWS||||"),
        ("tutorial-levels.json[3]", "WSSWS||||"),
        ("tutorial-levels.json[5]", "JJS||||"),
    ];
    for (source, program, is_solved) in &solved {
        let expected = !failing.contains(&(source.as_str(), program.as_str()));
        assert_eq!(*is_solved, expected, "{program} on {source}");
    }
    // Ten tutorial demonstrations (screen 11 is the turning demonstration) and four instructions.
    assert_eq!(solved.len(), 14);
    assert!(
        solved
            .iter()
            .any(|(_, program, _)| program.contains('L') && program.contains('R'))
    );
}

#[test]
fn the_tutorial_palette_grows_with_each_instruction_taught() {
    let experiment = correa();
    assert_eq!(
        experiment.tutorial.len(),
        14,
        "the reference study's 14 screens"
    );
    let palettes: Vec<String> = experiment
        .tutorial
        .iter()
        .map(|screen| screen.palette.clone().unwrap().into_iter().collect())
        .collect();
    let expected = [
        "S", "S", "WS", "WS", "WS", "WS", "WJS", "WJS", "WJS", "WJS", "WJLRS", "WJLRS", "WJLRS1",
        "WJLRS1",
    ];
    assert_eq!(palettes, expected);
    // Every demonstration uses only what its screen has taught.
    for screen in &experiment.tutorial {
        if let Some(demo) = &screen.demo {
            let palette = screen.palette.as_ref().unwrap();
            assert!(
                demo.to_compact()
                    .chars()
                    .all(|c| c == '|' || palette.contains(&c)),
                "{}",
                demo.to_compact()
            );
        }
    }
    let solve: Vec<usize> = (0..14).filter(|&i| experiment.tutorial[i].solve).collect();
    assert_eq!(solve, [1, 5, 9, 11]);
}

#[test]
fn a_screen_palette_names_known_instructions_once_and_processes_without_gaps() {
    let screen = |palette: &str| {
        format!(
            "{MINIMAL}[[tutorial]]\ntext = \"Try\"\nmap = \"levels.json\"\nlevel = 0\nsolve = true\npalette = {palette}\n"
        )
    };
    // Names in any order and case come back in palette order.
    let experiment = parse_text(&screen("[\"Light\", \"p2\", \"walk\", \"P1\"]")).unwrap();
    assert_eq!(
        experiment.tutorial[0].palette,
        Some(vec!['W', 'S', '1', '2'])
    );
    for (palette, expected) in [
        (
            "[\"walk\", \"fly\"]",
            "tutorial[0].palette[1]: `fly` is not an instruction: use walk, jump, left, right, light or P1 to P4",
        ),
        (
            "[\"walk\", \"Walk\"]",
            "tutorial[0].palette[1]: `Walk` is listed twice",
        ),
        (
            "[\"walk\", \"P5\"]",
            "tutorial[0].palette[1]: `P5`: the experiment has 4 processes (`subroutines`), so there is no P5",
        ),
        (
            "[\"walk\", \"P2\"]",
            "tutorial[0].palette: processes must be P1 to Pk without gaps: P2 needs P1 to P1",
        ),
        (
            "[]",
            "tutorial[0].palette: a screen to solve needs at least one instruction in its palette",
        ),
    ] {
        let message = parse_text(&screen(palette)).unwrap_err().to_string();
        assert!(message.contains(expected), "{palette}: {message}");
    }
}

#[test]
fn a_demonstration_may_use_only_its_screens_palette() {
    let text = format!(
        "{MINIMAL}[[tutorial]]\ntext = \"Watch\"\nmap = \"levels.json\"\nlevel = 8\ndemo = \"1111|WS\"\npalette = [\"walk\"]\n"
    );
    let message = parse_text(&text).unwrap_err().to_string();
    assert!(
        message.contains(
            "tutorial[0].demo: the demonstration uses `P1`, `light`, which the screen's palette does not offer"
        ),
        "{message}"
    );
    // Without a palette, a tutorial screen offers every primitive and P1; an instruction screen
    // shows none.
    let text =
        format!("{MINIMAL}[[tutorial]]\ntext = \"Watch\"\n[[instructions]]\ntext = \"Read\"\n");
    let experiment = parse_text(&text).unwrap();
    assert_eq!(
        experiment.tutorial[0].palette,
        Some(vec!['W', 'J', 'L', 'R', 'S', '1'])
    );
    assert_eq!(experiment.instructions[0].palette, None);
}

#[test]
fn the_bundled_timeline_has_the_reference_flow() {
    let experiment = correa();
    let order: Vec<usize> = (0..10).collect();
    let timeline = experiment.timeline(&order);
    // consent, 14 tutorial screens, practice, 7 instruction screens, 10 tasks, questionnaire, complete
    assert_eq!(timeline.len(), 35);
    assert_eq!(timeline[0], Step::Consent);
    assert_eq!(
        timeline[15],
        Step::Task {
            phase: Phase::Practice,
            index: 0,
            task: 0
        }
    );
    assert_eq!(
        timeline[23],
        Step::Task {
            phase: Phase::Tasks,
            index: 0,
            task: 0
        }
    );
    assert_eq!(
        timeline[32],
        Step::Task {
            phase: Phase::Tasks,
            index: 9,
            task: 9
        }
    );
    assert_eq!(timeline[33], Step::Questionnaire);
    assert_eq!(timeline[34], Step::Complete);
    let phases: Vec<Phase> = timeline.iter().map(Step::phase).collect();
    assert_eq!(phases.iter().filter(|p| **p == Phase::Tutorial).count(), 14);
}

#[test]
fn the_version_is_stable_and_changes_with_the_definition() {
    let a = parse_text(MINIMAL).unwrap();
    let b = parse_text(MINIMAL).unwrap();
    let c = parse_text(&MINIMAL.replace("Mini", "Mini 2")).unwrap();
    assert_eq!(a.version, b.version);
    assert_ne!(a.version, c.version);
    assert_eq!(a.version.len(), 16);
}

#[test]
fn every_problem_names_the_file_and_the_key() {
    let broken = MINIMAL
        .replace("light = \"idempotent\"", "light = \"flicker\"")
        .replace("task = \"correa2025/c\"", "task = \"correa2025/z\"")
        + "[order]\nmode = \"random\"\n[[questionnaire]]\nid = \"q\"\nprompt = \"?\"\nkind = \"slider\"\n";
    let error = parse_text(&broken).unwrap_err();
    let message = error.to_string();
    for expected in [
        "test.toml: light: `flicker` is not a light mode",
        "test.toml: tasks[0].task: no bundled task `correa2025/z`",
        "test.toml: order.mode: `random` is not an order mode",
        "test.toml: questionnaire[0].kind: `slider` is not an item kind",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
    assert_eq!(error.problems.len(), 4, "{message}");
}

#[test]
fn unknown_keys_and_bad_toml_are_reported_with_the_file_name() {
    let message = parse_text(&MINIMAL.replace("skip_delay_seconds", "skip_delay"))
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("test.toml: "), "{message}");
    assert!(message.contains("skip_delay"), "{message}");
    let message = parse_text("slug = ").unwrap_err().to_string();
    assert!(message.starts_with("test.toml: "), "{message}");
}

#[test]
fn levels_from_map_files_are_checked() {
    let with_map = MINIMAL.replace(
        "task = \"correa2025/c\"",
        "map = \"levels.json\"\nlevel = 7",
    );
    let experiment = parse_text(&with_map).unwrap();
    assert_eq!(experiment.tasks[0].label, "levels-7");
    assert_eq!(experiment.tasks[0].source, "levels.json[7]");
    let message = parse_text(&MINIMAL.replace(
        "task = \"correa2025/c\"",
        "map = \"levels.json\"\nlevel = 99",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        message.contains(
            "test.toml: tasks[0].level: levels.json has 13 levels, so there is no level 99"
        ),
        "{message}"
    );
    let message =
        parse_text(&MINIMAL.replace("task = \"correa2025/c\"", "map = \"nope.json\"\nlevel = 0"))
            .unwrap_err()
            .to_string();
    assert!(
        message.contains("test.toml: tasks[0].map: no bundled file named `nope.json`"),
        "{message}"
    );
    let message = parse_text(&MINIMAL.replace("task = \"correa2025/c\"", "map = \"levels.json\""))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("tasks[0].level: `map` needs `level`"),
        "{message}"
    );
}

#[test]
fn balanced_orders_must_be_permutations_of_the_task_labels() {
    let two_tasks = MINIMAL.replace(
        "[[tasks]]\ntask = \"correa2025/c\"",
        "[[tasks]]\ntask = \"correa2025/c\"\n[[tasks]]\ntask = \"correa2025/d\"",
    );
    let good = format!(
        "{two_tasks}[order]\nmode = \"balanced\"\norders = [[\"c\", \"d\"], [\"d\", \"c\"]]\n"
    );
    assert_eq!(
        parse_text(&good).unwrap().order,
        Order::Balanced {
            orders: vec![vec![0, 1], vec![1, 0]]
        }
    );
    let bad = format!("{two_tasks}[order]\nmode = \"balanced\"\norders = [[\"c\", \"c\"]]\n");
    let message = parse_text(&bad).unwrap_err().to_string();
    assert!(
        message.contains("order.orders[0]: must list each of the 2 task labels exactly once"),
        "{message}"
    );
    let generated = format!("{two_tasks}[order]\nmode = \"balanced\"\n");
    assert_eq!(
        parse_text(&generated).unwrap().order.n_conditions(),
        Some(2)
    );
}

#[test]
fn a_screen_to_solve_needs_a_level() {
    let text = format!("{MINIMAL}[[tutorial]]\ntext = \"Solve it\"\nsolve = true\n");
    let message = parse_text(&text).unwrap_err().to_string();
    assert!(
        message.contains("tutorial[0].solve: a screen to solve needs a level"),
        "{message}"
    );
}

#[test]
fn redirect_urls_substitute_entry_parameters_and_the_code() {
    let completion = Completion {
        code: "C0DE".into(),
        redirect_url: Some(
            "https://example.org/done?cc=[COMPLETION_CODE]&pid=[PROLIFIC_PID]&x=[MISSING]&y=[a b]"
                .into(),
        ),
        text: None,
    };
    let params = BTreeMap::from([("PROLIFIC_PID".to_owned(), "p 1&2".to_owned())]);
    assert_eq!(
        completion.redirect_for(&params).unwrap(),
        "https://example.org/done?cc=C0DE&pid=p%201%262&x=&y=[a b]"
    );
}

#[test]
fn the_recruiter_id_is_the_first_listed_parameter_present() {
    let experiment = parse_text(&MINIMAL.replace(
        "skip_delay_seconds = 5",
        "skip_delay_seconds = 5\nrecruiter_id_params = [\"workerId\", \"PROLIFIC_PID\"]",
    ))
    .unwrap();
    let params = BTreeMap::from([
        ("PROLIFIC_PID".to_owned(), "p".to_owned()),
        ("workerId".to_owned(), " ".to_owned()),
    ]);
    assert_eq!(experiment.recruiter_id(&params), Some("p"));
    assert_eq!(experiment.recruiter_id(&BTreeMap::new()), None);
}

#[test]
fn the_bundled_study_draws_blocks_requires_the_prolific_id_and_a_large_window() {
    let experiment = correa();
    assert_eq!(experiment.board, BoardKind::Isometric);
    assert!(experiment.entry.require_recruiter_id);
    assert!(experiment.entry.resume);
    assert_eq!(experiment.entry.resume_params, ["SESSION_ID"]);
    assert_eq!(
        (experiment.device.min_width, experiment.device.touch),
        (Some(800), true)
    );
}

#[test]
fn entry_rules_default_from_whether_recruiter_params_are_named() {
    let minimal = parse_text(MINIMAL).unwrap();
    assert!(!minimal.entry.require_recruiter_id);
    assert_eq!(minimal.board, BoardKind::Isometric);
    assert_eq!(
        minimal.device,
        DeviceRules {
            touch: true,
            ..DeviceRules::default()
        }
    );
    let named = parse_text(&MINIMAL.replace(
        "skip_delay_seconds = 5",
        "skip_delay_seconds = 5\nrecruiter_id_params = [\"workerId\"]\nboard = \"flat\"",
    ))
    .unwrap();
    assert!(named.entry.require_recruiter_id);
    assert_eq!(named.board, BoardKind::Flat);
    let waived = parse_text(&format!(
        "{}[entry]\nrequire_recruiter_id = false\nresume = false\nresume_params = [\"assignmentId\"]\n",
        MINIMAL.replace(
            "skip_delay_seconds = 5",
            "skip_delay_seconds = 5\nrecruiter_id_params = [\"workerId\"]"
        )
    ))
    .unwrap();
    assert_eq!(
        waived.entry,
        EntryRules {
            require_recruiter_id: false,
            resume: false,
            resume_params: vec!["assignmentId".into()],
        }
    );
}

#[test]
fn a_bad_board_or_device_requirement_is_named() {
    let broken = format!(
        "{}[device]\nmin_width = 50\nmin_height = 20000\ntouch = false\n",
        MINIMAL.replace(
            "skip_delay_seconds = 5",
            "skip_delay_seconds = 5\nboard = \"3d\""
        )
    );
    let message = parse_text(&broken).unwrap_err().to_string();
    for expected in [
        "test.toml: board: `3d` is not a board view",
        "test.toml: device.min_width: 50 px is not between 200 and 10000",
        "test.toml: device.min_height: 20000 px is not between 200 and 10000",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
}

/// Two between-subject conditions for [`MINIMAL`]: one with toggling lights, one with its own
/// tasks, instruction screen and balanced order.
const TWO_CONDITIONS: &str = r#"
[[conditions]]
name = "toggle"
light = "toggle"

[[conditions]]
name = "short-list"
tasks = [{ task = "correa2025/d" }, { task = "correa2025/e", label = "e2" }]
instructions = [{ text = "Two problems follow." }]
[conditions.order]
mode = "balanced"
"#;

fn labels(tasks: &[TaskEntry]) -> Vec<&str> {
    tasks.iter().map(|t| t.label.as_str()).collect()
}

#[test]
fn conditions_put_their_light_tasks_instructions_and_order_in_place_of_the_top_levels() {
    let experiment = parse_text(&format!("{MINIMAL}{TWO_CONDITIONS}")).unwrap();
    assert_eq!(experiment.arm, None);
    let names: Vec<&str> = experiment
        .conditions
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["toggle", "short-list"]);

    let toggle = experiment.for_arm(Some("toggle"));
    assert_eq!(toggle.arm.as_deref(), Some("toggle"));
    assert_eq!(toggle.light, LightMode::Toggle);
    assert_eq!(labels(&toggle.tasks), ["c"]);
    assert_eq!(toggle.order, Order::Fixed);
    assert_eq!(toggle.version, experiment.version);
    assert!(toggle.conditions.is_empty());

    let short = experiment.for_arm(Some("short-list"));
    assert_eq!(short.light, LightMode::Idempotent, "the top level's");
    assert_eq!(labels(&short.tasks), ["d", "e2"]);
    assert_eq!(short.instructions.len(), 1);
    assert_eq!(
        short.order,
        Order::Balanced {
            orders: order::balanced_latin_square(2)
        }
    );
    let main_tasks = short
        .timeline(&[1, 0])
        .into_iter()
        .filter(|s| s.phase() == Phase::Tasks)
        .count();
    assert_eq!(main_tasks, 2);

    // The experiment as loaded for no or an unknown condition; a condition's for its own.
    assert!(std::ptr::eq(experiment.for_arm(None), &experiment));
    assert!(std::ptr::eq(experiment.for_arm(Some("nope")), &experiment));
    assert!(std::ptr::eq(short.for_arm(Some("short-list")), short));
    let shared = std::sync::Arc::new(experiment);
    let arm = shared.for_arm_shared(Some("toggle"));
    assert_eq!(arm.arm.as_deref(), Some("toggle"));
    assert!(std::sync::Arc::ptr_eq(
        &arm.for_arm_shared(Some("toggle")),
        &arm
    ));
    assert!(std::sync::Arc::ptr_eq(
        &shared.for_arm_shared(None),
        &shared
    ));
}

#[test]
fn an_experiment_without_conditions_has_none() {
    let experiment = parse_text(MINIMAL).unwrap();
    assert!(experiment.conditions.is_empty());
    assert!(correa().conditions.is_empty());
}

#[test]
fn condition_problems_are_named_under_their_condition() {
    let problems = |conditions: &str| -> String {
        parse_text(&format!("{MINIMAL}{conditions}"))
            .unwrap_err()
            .to_string()
    };
    let cases = [
        (
            "[[conditions]]\nname = \"only\"\n",
            "test.toml: conditions: one condition is no comparison",
        ),
        (
            "[[conditions]]\nname = \"A\"\n[[conditions]]\nname = \"b c\"\n",
            "conditions[0].name: `A` must be 1-64 lowercase letters, digits, `-` or `_`",
        ),
        (
            "[[conditions]]\nname = \"\"\n[[conditions]]\nname = \"b\"\n",
            "conditions[0].name: `` must be 1-64",
        ),
        (
            "[[conditions]]\nname = \"a\"\n[[conditions]]\nname = \"a\"\n",
            "conditions[1].name: the name `a` is used by an earlier condition",
        ),
        (
            "[[conditions]]\nname = \"a\"\nlight = \"dim\"\n[[conditions]]\nname = \"b\"\n",
            "conditions[0].light: `dim` is not a light mode",
        ),
        (
            "[[conditions]]\nname = \"a\"\ntasks = []\n[[conditions]]\nname = \"b\"\n",
            "conditions[0].tasks: a condition needs at least one task",
        ),
        (
            "[[conditions]]\nname = \"a\"\n[[conditions]]\nname = \"b\"\ntasks = [{ task = \"correa2025/z\" }]\n",
            "conditions[1].tasks[0].task: no bundled task `correa2025/z`",
        ),
        (
            "[[conditions]]\nname = \"a\"\n[[conditions]]\nname = \"b\"\ninstructions = [{ text = \"x\", solve = true }]\n",
            "conditions[1].instructions[0].solve: a screen to solve needs a level",
        ),
        (
            "[[conditions]]\nname = \"a\"\n[conditions.order]\nmode = \"random\"\n[[conditions]]\nname = \"b\"\n",
            "conditions[0].order.mode: `random` is not an order mode",
        ),
        (
            "[[conditions]]\nname = \"a\"\ntasks = [{ task = \"correa2025/d\" }]\n[conditions.order]\nmode = \"balanced\"\norders = [[\"c\"]]\n[[conditions]]\nname = \"b\"\n",
            "conditions[0].order.orders[0]: no task labelled `c`",
        ),
    ];
    for (conditions, expected) in cases {
        let message = problems(conditions);
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
    // A key a condition does not have is refused, as everywhere in the file.
    let message = problems("[[conditions]]\nname = \"a\"\nskip_delay_seconds = 1\n");
    assert!(
        message.contains("unknown field `skip_delay_seconds`"),
        "{message}"
    );
}

#[test]
fn a_condition_with_its_own_tasks_must_fit_the_top_level_order_or_give_its_own() {
    let two_tasks = MINIMAL.replace(
        "[[tasks]]\ntask = \"correa2025/c\"",
        "[[tasks]]\ntask = \"correa2025/c\"\n[[tasks]]\ntask = \"correa2025/d\"",
    );
    let order = "[order]\nmode = \"balanced\"\norders = [[\"c\", \"d\"], [\"d\", \"c\"]]\n";
    let misfit = format!(
        "{two_tasks}{order}[[conditions]]\nname = \"a\"\n[[conditions]]\nname = \"b\"\ntasks = [{{ task = \"correa2025/e\" }}]\n"
    );
    let message = parse_text(&misfit).unwrap_err().to_string();
    assert!(
        message.contains(
            "conditions[1].tasks: the top-level `order.orders[0]` does not fit this condition's tasks"
        ),
        "{message}"
    );
    // The same labels in another list fit; a condition's own order fits its own tasks.
    let relabelled = format!(
        "{two_tasks}{order}[[conditions]]\nname = \"a\"\n[[conditions]]\nname = \"b\"\ntasks = [{{ task = \"correa2025/e\", label = \"d\" }}, {{ task = \"correa2025/f\", label = \"c\" }}]\n"
    );
    let experiment = parse_text(&relabelled).unwrap();
    assert_eq!(
        experiment.for_arm(Some("b")).order,
        Order::Balanced {
            orders: vec![vec![1, 0], vec![0, 1]]
        }
    );
    let own = format!(
        "{two_tasks}{order}[[conditions]]\nname = \"a\"\n[[conditions]]\nname = \"b\"\ntasks = [{{ task = \"correa2025/e\" }}]\n[conditions.order]\nmode = \"fixed\"\n"
    );
    assert_eq!(
        parse_text(&own).unwrap().for_arm(Some("b")).order,
        Order::Fixed
    );
}

#[test]
fn a_condition_light_must_keep_every_demonstration_to_solve_solving() {
    // Level 3 has two lights: `WSSWS` lights both when Light is idempotent, but switches the
    // first off again when it toggles.
    let tutorial = "[[tutorial]]\ntext = \"Watch\"\nmap = \"levels.json\"\nlevel = 3\ndemo = \"WSSWS\"\nsolve = true\n";
    let idempotent = format!(
        "{MINIMAL}{tutorial}[[conditions]]\nname = \"same\"\n[[conditions]]\nname = \"also\"\nlight = \"idempotent\"\n"
    );
    assert!(parse_text(&idempotent).is_ok());
    let toggle = idempotent.replace(
        "name = \"also\"\nlight = \"idempotent\"",
        "name = \"also\"\nlight = \"toggle\"",
    );
    let message = parse_text(&toggle).unwrap_err().to_string();
    assert!(
        message.contains(
            "conditions[1].light: the demonstration of `tutorial[0]` does not solve its level, which the participant must solve, under toggle light"
        ),
        "{message}"
    );
}

#[test]
fn conditions_are_part_of_the_version() {
    let with = parse_text(&format!("{MINIMAL}{TWO_CONDITIONS}")).unwrap();
    let renamed =
        parse_text(&format!("{MINIMAL}{TWO_CONDITIONS}").replace("short-list", "short")).unwrap();
    assert_ne!(with.version, parse_text(MINIMAL).unwrap().version);
    assert_ne!(with.version, renamed.version);
}
