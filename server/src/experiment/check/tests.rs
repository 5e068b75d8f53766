//! Tests of `proglab experiment check`'s library: the search, the enumeration's limits.

use super::*;

fn level(json: &str) -> Task {
    Task::from_level_file(json, "test.json", 0).unwrap()
}

#[test]
fn a_row_is_solved_by_walking_to_the_light() {
    let task = level(
        r#"[{"direction":1,"position":{"x":0,"y":0},"map":[[{"h":1,"t":"b"},{"h":1,"t":"b"},{"h":1,"t":"l"}]]}]"#,
    );
    let report = check_level(&task, LightMode::Toggle, &CheckLimits::default());
    assert_eq!(report.solvable, Some(true));
    assert_eq!(report.solution.as_deref(), Some("WWS"));
    assert_eq!(report.optimal_steps, Some(3));
    // Three cells and four headings with the light off, and the light on under each heading.
    assert_eq!(report.reachable_states, 16);
    assert!(report.states_complete);
}

#[test]
fn a_light_out_of_reach_is_unsolvable_and_not_enumerated() {
    let task = level(
        r#"[{"direction":1,"position":{"x":0,"y":0},"map":[[{"h":1,"t":"b"},{"h":3,"t":"l"}]]}]"#,
    );
    let report = check_level(&task, LightMode::Idempotent, &CheckLimits::default());
    assert_eq!(report.solvable, Some(false));
    assert_eq!(report.optimal_steps, None);
    assert_eq!(report.enumeration.status, EnumerationStatus::Skipped);
}

#[test]
fn the_search_stops_at_its_state_limit_without_a_verdict() {
    // Nine cells and a light on each but the start's: 9 * 4 * 2^8 states, unsolved until
    // every light is on.
    let cell = |light: bool| format!("{{\"h\":1,\"t\":\"{}\"}}", if light { "l" } else { "b" });
    let rows: Vec<String> = (0..3)
        .map(|i| format!("[{},{},{}]", cell(true), cell(true), cell(i != 2)))
        .collect();
    let json = format!(
        r#"[{{"direction":1,"position":{{"x":2,"y":0}},"map":[{}]}}]"#,
        rows.join(",")
    );
    let task = level(&json);
    let cut = search(&task, LightMode::Toggle, 100);
    assert_eq!((cut.solvable, cut.states, cut.complete), (None, 100, false));
    let full = search(&task, LightMode::Toggle, MAX_STATES);
    assert_eq!(full.solvable, Some(true));
    assert!(full.complete);
}

#[test]
fn the_enumeration_stops_at_the_candidate_limit() {
    let task = dsl::tasks::lookup("correa2025/a").unwrap().task.clone();
    let limits = CheckLimits {
        time: Duration::from_secs(60),
        candidates: 500,
    };
    let report = check_level(&task, LightMode::Toggle, &limits);
    assert_eq!(report.enumeration.status, EnumerationStatus::CandidateLimit);
    assert_eq!(report.enumeration.candidates, 500);
}

#[test]
fn each_condition_s_levels_are_checked_under_its_light() {
    let dir = std::env::temp_dir().join(format!("proglab-check-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("arms.toml");
    let text = "slug = \"arms\"\ntitle = \"Arms\"\nlight = \"toggle\"\nskip_delay_seconds = 60\n\
        [consent]\ntext = \"Agree?\"\n[[tasks]]\ntask = \"correa2025/a\"\n\
        [[conditions]]\nname = \"same\"\n[[conditions]]\nname = \"other\"\nlight = \"idempotent\"\n\
        [[conditions.tasks]]\ntask = \"correa2025/b\"\n[completion]\ncode = \"X\"\n";
    std::fs::write(&path, text).unwrap();
    let limits = CheckLimits {
        time: Duration::from_secs(10),
        candidates: 10,
    };
    let report = check_file(&path, &limits, &mut |_| {});
    let _ = std::fs::remove_dir_all(&dir);
    let levels: Vec<(&str, LightMode, Option<usize>)> = report
        .levels
        .iter()
        .map(|l| (l.key.as_str(), l.light, l.line))
        .collect();
    assert_eq!(
        levels,
        [
            ("tasks[0]", LightMode::Toggle, Some(7)),
            ("conditions[1].tasks[0]", LightMode::Idempotent, Some(14)),
        ]
    );
}
