//! The `proglab` binary's analysis subcommands, run as a user runs them.

use std::process::{Command, Output};

use serde_json::Value;

const PROGRAMS_DEV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../analysis/data/programs-dev.csv"
);

fn proglab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proglab"))
        .args(args)
        .output()
        .expect("proglab starts")
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

#[test]
fn run_reports_that_the_running_example_solves_task_c() {
    let output = proglab(&[
        "run",
        "--task",
        "correa2025/c",
        "--program",
        "1LJL1RJR1|WWWS|||",
        "--json",
    ]);
    let report = json(&output);
    assert_eq!(report["solved"], true);
    assert_eq!(report["steps"], 18);
    assert_eq!(report["length"], 13);

    let text = proglab(&[
        "run",
        "--task",
        "correa2025/c",
        "--program",
        "1LJL1RJR1|WWWS|||",
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("solved:   yes"), "{text}");
    assert!(text.contains("steps:    18"), "{text}");
}

#[test]
fn run_accepts_the_readable_form_and_prints_a_trace() {
    let program = "main { p1 left jump left p1 right jump right p1 }\np1 { walk walk walk light }";
    let report = json(&proglab(&[
        "run",
        "--task",
        "correa2025/c",
        "--program",
        program,
        "--trace",
        "--json",
    ]));
    assert_eq!(report["program"], "1LJL1RJR1|WWWS|||");
    let trace = report["trace"].as_array().unwrap();
    // 18 primitives and 3 call tokens.
    assert_eq!(trace.len(), 21);
    assert_eq!(trace[0]["effect"], "call");
    assert_eq!(trace[1]["routine"], 1);
    assert_eq!(trace[1]["depth"], 1);
}

#[test]
fn run_returns_promptly_on_endless_recursion() {
    // Regression (docs/semantics.md §1.8): unsolved recursive programs stop at the budget.
    for program in ["1|1", "1|11", "1|W1"] {
        let report = json(&proglab(&[
            "run",
            "--task",
            "correa2025/c",
            "--program",
            program,
            "--json",
        ]));
        assert_eq!(report["solved"], false, "{program}");
        assert_eq!(report["budget_exhausted"], true, "{program}");
        assert_eq!(report["step_cost"], Value::Null, "{program}");
    }
}

#[test]
fn run_rejects_a_malformed_program_with_its_position() {
    let output = proglab(&["run", "--task", "correa2025/c", "--program", "1LJX|WWWS"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1:4: unexpected `X`"), "{stderr}");

    let output = proglab(&["run", "--task", "correa2025/z", "--program", "W"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown task `correa2025/z`"));
}

#[test]
fn check_data_reproduces_the_published_programs() {
    let report = json(&proglab(&[
        "check-data",
        "--programs",
        PROGRAMS_DEV,
        "--json",
    ]));
    assert_eq!(report["rows"], 1200);
    assert_eq!(report["skipped"], 38);
    for key in ["parsed", "solved", "canonical_matches"] {
        assert_eq!(report[key], 1162, "{key}");
    }
    assert_eq!(report["canonical_mismatch_count"], 0);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    let per_task = report["per_task"].as_array().unwrap();
    let labels: Vec<&str> = per_task
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
    let task_rows: u64 = per_task.iter().map(|t| t["rows"].as_u64().unwrap()).sum();
    assert_eq!(task_rows, 1200);
    // Canonicalisation shortens programs on average and never lengthens the mean.
    let raw = report["mean_length_raw"].as_f64().unwrap();
    let canonical = report["mean_length_canonical"].as_f64().unwrap();
    assert!(canonical <= raw, "{canonical} > {raw}");
    for key in [
        "mean_steps_raw",
        "mean_steps_canonical",
        "uses_subroutine_raw",
        "uses_subroutine_canonical",
    ] {
        assert!(report[key].as_f64().is_some(), "{key}");
    }
}

#[test]
fn check_data_reports_malformed_rows_and_goes_on() {
    let dir = std::env::temp_dir().join(format!("proglab-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("programs.csv");
    std::fs::write(
        &path,
        "participant_idx,mdp_idx,skipped,elapsed_minutes,program_evaluations,program,preprocessed_program,programming_exp,programming_game_exp\n\
         0,2,False,1.0,3,1LJL1RJR1|WWWS|||,1LJL1RJR1|WWWS|||,None,No\n\
         0,2,False,1.0,3,1LJQ|WWWS|||,1LJL1RJR1|WWWS|||,None,No\n\
         0,42,False,1.0,3,W|||,W|||,None,No\n\
         0,2,maybe,1.0,3,W|||,W|||,None,No\n\
         1,2,True,4.0,3,,,None,No\n",
    )
    .unwrap();
    let report = json(&proglab(&[
        "check-data",
        "--programs",
        path.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(report["rows"], 3);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["parsed"], 1);
    assert_eq!(report["canonical_matches"], 1);
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5]);

    let missing = proglab(&[
        "check-data",
        "--programs",
        dir.join("absent.csv").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fit_prints_the_comparison_of_the_named_models_as_json() {
    let dir = std::env::temp_dir().join(format!("proglab-fit-{}", std::process::id()));
    let report = json(&proglab(&[
        "fit",
        "--programs",
        PROGRAMS_DEV,
        "--models",
        "null,mdl,step",
        "--restarts",
        "2",
        "--no-intervals",
        "--plots",
        dir.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(report["n_observations"], 1162);
    let models = report["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["null", "mdl", "step"]);
    let ll = |i: usize| models[i]["log_likelihood"].as_f64().unwrap();
    // The paper's order: step cost beats MDL, and both beat random choice.
    assert!(
        ll(2) > ll(1) && ll(1) > ll(0),
        "{} {} {}",
        ll(0),
        ll(1),
        ll(2)
    );
    assert_eq!(models[1]["k"], 1);
    assert!(models[1]["params"]["beta_mdl"].as_f64().unwrap() > 0.0);
    assert!(models[2]["params"]["beta_step"].as_f64().unwrap() > 0.0);
    // null is nested in both one-parameter models.
    let lrt = report["lrt"].as_array().unwrap();
    assert!(
        lrt.iter()
            .any(|t| t["null_model"] == "null" && t["model"] == "step" && t["df"] == 1)
    );
    let coverage = report["coverage"].as_array().unwrap();
    assert_eq!(coverage.len(), 10);
    assert!(report["per_task"].is_array() || report["per_task"].is_object());
    let figures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        figures
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "svg"))
    );
    assert!(
        figures
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "png"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
