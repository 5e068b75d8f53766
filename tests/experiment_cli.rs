//! `proglab experiment check` and `new` as a researcher runs them: a broken study is refused with
//! one message per problem naming the file, the line and the level (an unsolvable level, a
//! corrupt level file, a light mode that is not one, a file that is not TOML), and a new study
//! passes its own check and is never overwritten.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::TempDir;

/// Runs the real `proglab` binary: (exit status success, stdout, stderr).
fn proglab(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run proglab");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A row of `cells` (height, light) as a level of the game's JSON format, robot at x = 0 facing +x.
fn row_level(cells: &[(u8, bool)]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|(h, light)| {
            format!(
                "{{\"h\": {h}, \"t\": \"{}\"}}",
                if *light { "l" } else { "b" }
            )
        })
        .collect();
    format!(
        "{{\"direction\": 1, \"position\": {{\"x\": 0, \"y\": 0}}, \"map\": [[{}]]}}",
        cells.join(", ")
    )
}

const BROKEN_STUDY: &str = r#"slug = "broken"
title = "A broken study"
light = "blink"
skip_delay_seconds = 60

[consent]
text = "Do you agree?"

[[tasks]]
map = "levels.json"
level = 0

[[tasks]]
map = "broken.json"
level = 0

[[tasks]]
map = "levels.json"
level = 1

[completion]
code = "DONE"
"#;

/// The 1-based line of the first line of `text` that starts with `start`, at or after `from`.
fn line_of(text: &str, start: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, line)| line.starts_with(start))
        .map(|(i, _)| i + 1)
        .expect("the line is in the file")
}

fn write_broken_study(dir: &Path) -> std::path::PathBuf {
    // Level 0 is solved by walking; level 1's light is two levels up, out of any jump's reach.
    let levels = format!(
        "[\n{},\n{}\n]\n",
        row_level(&[(1, false), (1, false), (1, false), (1, false), (1, true)]),
        row_level(&[(1, false), (3, true)])
    );
    std::fs::write(dir.join("levels.json"), levels).unwrap();
    // A height of 0 at x = 1 (heights start at 1).
    std::fs::write(
        dir.join("broken.json"),
        format!("[{}]", row_level(&[(1, false), (0, true)])),
    )
    .unwrap();
    let path = dir.join("broken.toml");
    std::fs::write(&path, BROKEN_STUDY).unwrap();
    path
}

#[test]
fn check_names_the_unsolvable_level_the_corrupt_map_and_the_wrong_light_mode() {
    let dir = TempDir::new();
    let study = write_broken_study(dir.path());
    let file = study.display().to_string();
    let (ok, stdout, stderr) = proglab(&["experiment", "check", &file, "--time-limit", "5s"]);
    assert!(!ok, "a broken study passed:\n{stdout}\n{stderr}");

    let light_line = line_of(BROKEN_STUDY, "light =", 1);
    let broken_map = line_of(BROKEN_STUDY, "map = \"broken", 1);
    let broken_level_line = line_of(BROKEN_STUDY, "level = 0", broken_map);
    let third_task = line_of(BROKEN_STUDY, "[[tasks]]", broken_level_line);
    let expected = [
        format!(
            "{file}:{light_line}: light: `blink` is not a light mode: use `toggle` or `idempotent`"
        ),
        format!(
            "{file}:{broken_level_line}: tasks[1].level: broken.json[0], cell (x = 1, y = 0): height 0 is not an integer from 1 to 255"
        ),
        format!(
            "{file}:{third_task}: tasks[2]: level `levels.json[1]` cannot be solved: no sequence of actions lights every light"
        ),
    ];
    for message in &expected {
        assert!(
            stderr.contains(message.as_str()),
            "missing `{message}` in:\n{stderr}"
        );
    }
    // The table still reports on the levels that load: the first is solved in five steps, the
    // third is not, and the broken one is not a level.
    assert!(
        stdout.contains("light not valid (levels searched under idempotent)"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("tasks[")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[0].starts_with("tasks[0]") && rows[0].contains(" yes "),
        "{stdout}"
    );
    assert!(
        rows[1].starts_with("tasks[2]") && rows[1].contains(" NO "),
        "{stdout}"
    );

    // The same as JSON, for scripts.
    let (ok, stdout, _) = proglab(&["experiment", "check", &file, "--json", "--time-limit", "5s"]);
    assert!(!ok);
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["ok"], false);
    let problems: Vec<(String, i64)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().to_owned(),
                p["line"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            ("light".to_owned(), light_line as i64),
            ("tasks[1].level".to_owned(), broken_level_line as i64),
            ("tasks[2]".to_owned(), third_task as i64),
        ]
    );
    let levels = report["levels"].as_array().unwrap();
    assert_eq!(levels[0]["optimal_steps"], 5);
    assert_eq!(levels[0]["solution"], "WWWWS");
    assert_eq!(levels[0]["enumeration"]["status"], "complete");
    assert_eq!(levels[1]["solvable"], false);
}

#[test]
fn check_places_a_toml_error_and_a_bad_level_file_on_their_lines() {
    let dir = TempDir::new();
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "slug = \"typo\"\ntitle = \"unfinished\nlight = \"toggle\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = proglab(&["experiment", "check", &path.display().to_string()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{}:2: ", path.display())),
        "{stderr}"
    );

    // A level file that is not JSON at all is named, with the key that uses it.
    std::fs::write(dir.path().join("levels.json"), "[{\"direction\": 1,").unwrap();
    let study = BROKEN_STUDY
        .replace("light = \"blink\"", "light = \"toggle\"")
        .replace("broken.json", "levels.json");
    let path = dir.path().join("json.toml");
    std::fs::write(&path, study).unwrap();
    let (ok, _, stderr) = proglab(&["experiment", "check", &path.display().to_string()]);
    assert!(!ok);
    assert!(
        stderr.contains("tasks[0].level: levels.json: invalid JSON"),
        "{stderr}"
    );
}

#[test]
fn a_new_study_passes_check_and_is_never_overwritten() {
    let dir = TempDir::new();
    let folder = dir.path().display().to_string();
    let (ok, stdout, stderr) = proglab(&["experiment", "new", "lab-study", "--dir", &folder]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("lab-study.toml"), "{stdout}");
    for file in [
        "lab-study.toml",
        "lab-study-consent.md",
        "levels/lab-study.json",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} was not written");
    }
    let study = dir.path().join("lab-study.toml").display().to_string();
    let (ok, stdout, stderr) =
        proglab(&["experiment", "check", &study, "--candidate-limit", "20000"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ok: 4 levels checked, no problems"),
        "{stdout}"
    );
    let (ok, _, stderr) = proglab(&["experiment", "new", "lab-study", "--dir", &folder]);
    assert!(!ok && stderr.contains("not overwriting"), "{stderr}");
    let (ok, _, stderr) = proglab(&["experiment", "new", "Lab Study", "--dir", &folder]);
    assert!(
        !ok && stderr.contains("may contain only lowercase"),
        "{stderr}"
    );
}
