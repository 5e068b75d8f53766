//! Loading level files (docs/semantics.md §1.1-1.2) and the bundled task set
//! (docs/semantics.md §2).

mod common;

use dsl::map::parse_level_file;
use dsl::tasks::{CGC_MAPS_JSON, MAPS_JSON, correa2025};
use dsl::{MapError, Task};

#[test]
fn every_bundled_level_parses() {
    assert_eq!(parse_level_file(MAPS_JSON, "maps.json").unwrap().len(), 9);
    assert_eq!(
        parse_level_file(CGC_MAPS_JSON, "cgc-maps.json")
            .unwrap()
            .len(),
        16
    );
}

#[test]
fn bundled_tasks_match_the_ascii_maps_of_the_spec() {
    let set = correa2025();
    for (label, ascii) in common::ASCII {
        let named = set.get(label).unwrap_or_else(|| panic!("task {label}"));
        assert_eq!(named.task.to_ascii(), ascii, "task {label}");
    }
}

fn level(cells: &str, extra: &str) -> String {
    format!(r#"[{{"direction": 0, "position": {{"x": 0, "y": 0}}, "map": {cells}{extra}}}]"#)
}

fn error_of(json: &str) -> String {
    parse_level_file(json, "test.json").unwrap_err().to_string()
}

#[test]
fn heights_may_be_strings_or_integers() {
    let json = level(r#"[[{"h": "2", "t": "l"}, {"h": 3, "t": "b"}]]"#, "");
    let task = &parse_level_file(&json, "test.json").unwrap()[0];
    assert_eq!(task.heights, vec![2, 3]);
}

#[test]
fn the_outer_index_is_y_reversed() {
    // Two rows: the first row in the file is the top (y = 1).
    let json = level(r#"[[{"h": 5, "t": "b"}], [{"h": 1, "t": "l"}]]"#, "");
    let task = &parse_level_file(&json, "test.json").unwrap()[0];
    assert_eq!(task.height_at(0, 1), 5);
    assert_eq!(task.height_at(0, 0), 1);
    assert_eq!(task.light_at(0, 0), Some(0));
}

#[test]
fn malformed_levels_are_errors_that_name_the_level_and_cell() {
    let ragged = level(
        r#"[[{"h": 1, "t": "l"}, {"h": 1, "t": "b"}], [{"h": 1, "t": "b"}]]"#,
        "",
    );
    assert!(
        error_of(&ragged).contains("test.json[0]: ragged grid: row 1"),
        "{}",
        error_of(&ragged)
    );

    let unknown = level(r#"[[{"h": 1, "t": "l"}, {"h": 1, "t": "x"}]]"#, "");
    assert_eq!(
        error_of(&unknown),
        "test.json[0], cell (x = 1, y = 0): unknown tile type `x` (expected `b` or `l`)"
    );

    let bad_height = level(r#"[[{"h": "tall", "t": "l"}]]"#, "");
    assert!(error_of(&bad_height).starts_with("test.json[0], cell (x = 0, y = 0): height"));

    let missing = r#"[{"direction": 0, "map": [[{"h": 1, "t": "l"}]]}]"#;
    assert_eq!(error_of(missing), "test.json[0]: missing field `position`");

    let off_grid =
        r#"[{"direction": 0, "position": {"x": 3, "y": 0}, "map": [[{"h": 1, "t": "l"}]]}]"#;
    assert!(error_of(off_grid).contains("start position (3, 0) is off the 1x1 grid"));

    let direction =
        r#"[{"direction": 7, "position": {"x": 0, "y": 0}, "map": [[{"h": 1, "t": "l"}]]}]"#;
    assert!(error_of(direction).contains("`direction` must be an integer from 0 to 3"));

    assert!(matches!(
        parse_level_file("{not json", "test.json"),
        Err(MapError::Json { .. })
    ));
    assert!(matches!(
        Task::from_level_file(MAPS_JSON, "maps.json", 99),
        Err(MapError::NoSuchLevel { count: 9, .. })
    ));
}
