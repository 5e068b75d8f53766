//! `proglab fit` evaluated on held-out data as a researcher runs it (docs/modelling.md §4.9):
//! participant folds and leave-one-task-out on two tasks of the development data, with the
//! choice-set rule in the table's header and in the JSON, and paired differences from the best.

use std::process::Command;

use serde_json::Value;

use crate::support::TempDir;

pub(crate) const PROGRAMS_DEV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../analysis/data/programs-dev.csv"
);

/// Runs the real `proglab` binary and returns its stdout; panics with stderr on failure.
pub(crate) fn proglab(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run proglab");
    assert!(
        output.status.success(),
        "proglab {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The rows of tasks a and c (`mdp_idx` 0 and 2) of the development data, as a file in `dir`.
fn tasks_a_and_c(dir: &TempDir) -> String {
    let text = std::fs::read_to_string(PROGRAMS_DEV).expect("read programs-dev.csv");
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().expect("a header"));
    for line in lines {
        if matches!(line.split(',').nth(1), Some("0" | "2")) {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = dir.path().join("programs-ac.csv");
    std::fs::write(&path, out).expect("write the subset");
    path.display().to_string()
}

const FAST: [&str; 5] = [
    "--models",
    "null,step,gi+step",
    "--restarts",
    "1",
    "--no-intervals",
];

#[test]
fn fit_reports_fold_and_task_held_out_tables_with_their_choice_sets() {
    let dir = TempDir::new();
    let programs = tasks_a_and_c(&dir);
    let mut args = vec![
        "fit",
        "--programs",
        programs.as_str(),
        "--cv",
        "2",
        "--cv-tasks",
    ];
    args.extend(FAST);

    let table = proglab(&args);
    assert!(
        table.contains("2-fold cross-validation by participant (seed 0); choice sets: enumeration + training participants' programs; each held-out program added to its own set"),
        "{table}"
    );
    assert!(
        table.contains("vs best per choice (± paired SE, ± clustered by participant)"),
        "{table}"
    );
    assert!(
        table.contains("leave-one-task-out (fitted on the other tasks); choice sets: held-out task: its enumeration"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("a ")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("c ")), "{table}");
    assert!(table.contains("best"), "{table}");

    args.push("--json");
    let report: Value = serde_json::from_str(&proglab(&args)).expect("one JSON object");
    let n = report["n_observations"].as_u64().unwrap();
    assert!(n > 200, "{n}");
    let cv = &report["cv"];
    assert_eq!(cv["folds"], 2);
    assert!(
        cv["choice_sets"]
            .as_str()
            .unwrap()
            .starts_with("enumeration + training participants' programs")
    );
    let models = cv["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    for model in models {
        let total = model["held_out_log_likelihood"].as_f64().unwrap();
        let folds: f64 = model["per_fold"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((total - folds).abs() < 1e-6, "{model}");
        assert!((model["per_observation"].as_f64().unwrap() - total / n as f64).abs() < 1e-9);
    }
    assert_eq!(cv["versus_best"].as_array().unwrap().len(), 3);
    assert_eq!(cv["paired"].as_array().unwrap().len(), 3);
    for pair in cv["versus_best"].as_array().unwrap() {
        assert!(
            pair["standard_error"].as_f64().is_some_and(|se| se >= 0.0),
            "{pair}"
        );
        assert!(
            pair["clustered_standard_error"]
                .as_f64()
                .is_some_and(|se| se >= 0.0),
            "{pair}"
        );
        assert!(
            pair["participants"]
                .as_u64()
                .is_some_and(|g| g > 1 && g < n),
            "{pair}"
        );
        assert_eq!(pair["n"], n);
    }
    assert_eq!(cv["observations"].as_array().unwrap().len() as u64, n);

    let tasks = &report["cv_tasks"];
    assert_eq!(tasks["tasks"], serde_json::json!(["a", "c"]));
    let per_task: Vec<u64> = tasks["task_observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(per_task.len(), 2);
    assert_eq!(per_task.iter().sum::<u64>(), n);
    assert!(
        tasks["choice_sets"]
            .as_str()
            .unwrap()
            .starts_with("held-out task: its enumeration")
    );
    for model in tasks["models"].as_array().unwrap() {
        assert_eq!(model["per_task"].as_array().unwrap().len(), 2);
        assert!(model["held_out_log_likelihood"].as_f64().unwrap() < 0.0);
    }
    let null = &tasks["models"][0];
    assert_eq!(null["name"], "null");
    assert!(report["seconds"]["cv_tasks"].as_f64().unwrap() > 0.0);
}

/// The symbolic rows of a report's in-sample table and participant cross-validation, for
/// comparing two runs.
fn symbolic_numbers(report: &Value) -> Vec<(String, f64, f64)> {
    let in_sample = report["models"].as_array().unwrap();
    let cv = report["cv"]["models"].as_array().unwrap();
    in_sample
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap().to_owned();
            let held_out = cv
                .iter()
                .find(|c| c["name"] == m["name"])
                .and_then(|c| c["held_out_log_likelihood"].as_f64())
                .unwrap();
            (name, m["log_likelihood"].as_f64().unwrap(), held_out)
        })
        .collect()
}

#[test]
fn fit_with_a_neural_model_adds_its_held_out_row_and_leaves_the_symbolic_numbers_alone() {
    let dir = TempDir::new();
    let programs = tasks_a_and_c(&dir);
    let base = [
        "fit",
        "--programs",
        programs.as_str(),
        "--cv",
        "2",
        "--restarts",
        "1",
        "--no-intervals",
        "--neural-seeds",
        "1",
    ];
    let run = |models: &str| {
        let mut args = base.to_vec();
        args.extend(["--models", models, "--json"]);
        proglab(&args)
    };
    let symbolic: Value = serde_json::from_str(&run("null,step,gi+step")).unwrap();
    let with_neural: Value = serde_json::from_str(&run("null,step,gi+step,neural-tf")).unwrap();
    assert_eq!(
        symbolic_numbers(&symbolic),
        symbolic_numbers(&with_neural),
        "listing a neural model changed a symbolic number"
    );

    // The neural row sits in the same held-out table, on the same observations.
    let cv = &with_neural["cv"];
    let names: Vec<&str> = cv["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["null", "step", "gi+step", "neural-tf"]);
    let n = with_neural["n_observations"].as_u64().unwrap();
    let values = cv["observation_log_likelihoods"].as_array().unwrap();
    assert_eq!(values.len(), 4);
    assert!(
        values
            .iter()
            .all(|v| v.as_array().unwrap().len() as u64 == n)
    );
    assert_eq!(cv["versus_best"].as_array().unwrap().len(), 4);
    assert_eq!(cv["paired"].as_array().unwrap().len(), 6);
    let neural_row = &cv["models"][3];
    assert!(neural_row["held_out_log_likelihood"].as_f64().unwrap() < 0.0);
    assert_eq!(neural_row["per_fold"].as_array().unwrap().len(), 2);

    // The neural evaluation says how it was made.
    let neural = &with_neural["neural"];
    assert_eq!(neural["seeds"], serde_json::json!([0]));
    assert!(
        neural["config"]["hyperparameters"]
            .as_str()
            .unwrap()
            .starts_with("fixed in advance")
    );
    assert!(
        neural["choice_sets"]
            .as_str()
            .unwrap()
            .starts_with("enumeration + training participants' programs")
    );
    let rows = &neural["participants"]["models"];
    assert_eq!(rows[0]["name"], "neural-tf");
    assert_eq!(rows[0]["per_seed"].as_array().unwrap().len(), 1);
    assert_eq!(
        neural["participants"]["fits"].as_array().unwrap().len(),
        2,
        "one fit per fold and seed"
    );
    // Every program of both tasks' full sets was scored in each fold.
    assert!(neural["scored_programs"].as_u64().unwrap() >= 2 * (39_650 + 50_140));

    // The table (through `train-neural --cv`, which runs `fit --cv` with its network
    // settings; a tiny network here, which the table records as not the defaults).
    let table = proglab(&[
        "train-neural",
        "--data",
        programs.as_str(),
        "--cv",
        "2",
        "--models",
        "null,step,neural-tf",
        "--random-starts",
        "1",
        "--seeds",
        "2",
        "--width",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--epochs",
        "1",
    ]);
    assert!(
        table.contains("2-fold cross-validation by participant (seed 0); choice sets: enumeration + training participants' programs"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("neural-tf ")),
        "{table}"
    );
    assert!(
        table.contains("neural models (rows above: means over network seeds 0, 1)"),
        "{table}"
    );
    assert!(table.contains("no approximation"), "{table}");
    assert!(
        table.contains("hyperparameters: set on the command line"),
        "{table}"
    );
}

/// The held-out rows of `model` in a report's participant and task tables.
fn held_out_rows(report: &Value, model: &str) -> (Value, Value) {
    let find = |table: &str| {
        report[table]["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == model)
            .cloned()
            .unwrap_or_else(|| panic!("{model} is not in {table}"))
    };
    (find("cv"), find("cv_tasks"))
}

#[test]
fn fit_holds_out_the_library_model_beside_the_others_without_moving_them() {
    let dir = TempDir::new();
    let programs = tasks_a_and_c(&dir);
    let run = |models: &str| -> Value {
        let args = [
            "fit",
            "--programs",
            programs.as_str(),
            "--models",
            models,
            "--cv",
            "2",
            "--cv-tasks",
            "--restarts",
            "1",
            "--no-intervals",
            "--json",
        ];
        serde_json::from_str(&proglab(&args)).unwrap()
    };
    let without = run("null,gi+step");
    let with_library = run("null,gi+step,lib+step");

    // Listing lib+step moves no other model's number, in-sample or held out.
    assert_eq!(
        symbolic_numbers(&without)[..],
        symbolic_numbers(&with_library)[..2]
    );
    for model in ["null", "gi+step"] {
        assert_eq!(
            held_out_rows(&without, model).1,
            held_out_rows(&with_library, model).1
        );
    }

    // lib+step has its held-out rows: two folds and both tasks, each on every observation.
    let n = with_library["n_observations"].as_u64().unwrap();
    let (folds, tasks) = held_out_rows(&with_library, "lib+step");
    let per_fold: Vec<f64> = serde_json::from_value(folds["per_fold"].clone()).unwrap();
    assert_eq!(per_fold.len(), 2);
    let per_task: Vec<f64> = serde_json::from_value(tasks["per_task"].clone()).unwrap();
    assert_eq!(per_task.len(), 2);
    assert!(per_fold.iter().chain(&per_task).all(|&l| l < 0.0));
    for table in ["cv", "cv_tasks"] {
        let values = with_library[table]["observation_log_likelihoods"]
            .as_array()
            .unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[2].as_array().unwrap().len() as u64, n);
        assert_eq!(with_library[table]["paired"].as_array().unwrap().len(), 3);
    }

    // In-sample, lib+step nests gi+step, and its test uses the boundary mixture.
    let ll = |name: &str| {
        with_library["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["log_likelihood"].as_f64())
            .unwrap()
    };
    assert!(ll("lib+step") >= ll("gi+step") - 1e-6);
    let lrt = with_library["lrt"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["null_model"] == "gi+step" && t["model"] == "lib+step")
        .expect("gi+step against lib+step");
    assert_eq!(lrt["reference"], "1/4 chi2(0) + 2/4 chi2(1) + 1/4 chi2(2)");
}
