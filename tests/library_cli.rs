//! `proglab library` on the development data as a researcher runs it (docs/modelling.md §4.10):
//! the library as one JSON object, the table, and the heat maps.

use serde_json::Value;

use crate::fit_cli::{PROGRAMS_DEV, proglab};
use crate::support::TempDir;

#[test]
fn library_reports_the_dev_data_library_as_json_and_draws_its_heat_maps() {
    // Arrange
    let dir = TempDir::new();
    let plots = dir.path().join("plots");
    let plots_arg = plots.display().to_string();

    // Act
    let json = proglab(&[
        "library",
        "--programs",
        PROGRAMS_DEV,
        "--json",
        "--plots",
        &plots_arg,
        "--top",
        "8",
    ]);

    // Assert: the shape of the report.
    let report: Value = serde_json::from_str(&json).expect("one JSON object");
    assert_eq!(report["experiment"], "correa2025");
    assert_eq!(report["holes"], true);
    assert_eq!(report["p_call"], 0.5);
    assert_eq!(report["p_end"], 0.1);
    let n_programs = report["n_programs"].as_u64().unwrap();
    assert!(n_programs > 1000, "{n_programs}");
    let tasks = report["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 10);
    assert_eq!(tasks[0]["task"], "a");
    let dl = &report["description_length"];
    let (before, after) = (
        dl["before"].as_f64().unwrap(),
        dl["after"].as_f64().unwrap(),
    );
    assert!(after < before, "{dl}");
    let bodies = report["bodies"].as_array().unwrap();
    assert!(bodies.len() >= 8, "{}", bodies.len());
    let saved: f64 = bodies.iter().map(|b| b["saved"].as_f64().unwrap()).sum();
    assert!((before - saved - after).abs() < 1e-6 * before, "{dl}");
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body["rank"].as_u64().unwrap() as usize, i + 1);
        assert!(!body["body"].as_str().unwrap().is_empty());
        let uses = body["uses"].as_u64().unwrap();
        assert!(uses >= 2, "{body}");
        let programs = body["programs"].as_u64().unwrap();
        assert!(programs >= 1 && programs <= uses, "{body}");
        assert!(body["participants"].as_u64().unwrap() <= programs);
        let per_task = body["per_task"].as_array().unwrap();
        assert_eq!(per_task.len(), tasks.len());
        let by_task: u64 = per_task.iter().map(|t| t["uses"].as_u64().unwrap()).sum();
        assert_eq!(by_task, uses, "{body}");
        for task in per_task {
            let share = task["participant_share"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&share), "{task}");
        }
    }

    // Assert: the figures exist and the report names them.
    for stem in ["library-uses", "library-participants"] {
        for extension in ["svg", "png"] {
            let path = plots.join(format!("{stem}.{extension}"));
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(size > 1000, "{} has {size} bytes", path.display());
        }
    }
    assert_eq!(report["plots"].as_array().unwrap().len(), 4);

    // The table shows the first eight bodies and says how many more there are.
    let table = proglab(&["library", "--programs", PROGRAMS_DEV, "--top", "8"]);
    let first_body = bodies[0]["body"].as_str().unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(first_body)),
        "{table}"
    );
    assert!(
        table.contains(&format!("... {} more", bodies.len() - 8)),
        "{table}"
    );
}
