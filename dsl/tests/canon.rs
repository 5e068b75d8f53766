//! Canonicalisation (SPEC §3.3) against the published `preprocessed_program` column and the
//! SPEC's examples.

use dsl::canon::{CanonOptions, canonicalise, rename_by_first_use, rewrite_noops};
use dsl::tasks::{correa2025, lookup};
use dsl::{ExecError, Limits, Program, Task, compact};

fn program(text: &str) -> Program {
    compact::parse(text, &Limits::default()).expect("test program parses")
}

fn task(label: &str) -> &'static Task {
    &lookup(&format!("correa2025/{label}")).expect("bundled task").task
}

/// One non-skipped row of the development data.
struct Row {
    participant: String,
    mdp_idx: usize,
    program: String,
    preprocessed: String,
}

fn dev_rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../analysis/data/programs-dev.csv");
    let mut reader = csv::Reader::from_path(path).expect("programs-dev.csv opens");
    let headers = reader.headers().expect("header row").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("column {name}"));
    let (participant, mdp, skipped, raw, pre) = (
        column("participant_idx"),
        column("mdp_idx"),
        column("skipped"),
        column("program"),
        column("preprocessed_program"),
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.expect("csv row");
        if &record[skipped] == "True" {
            continue;
        }
        rows.push(Row {
            participant: record[participant].to_owned(),
            mdp_idx: record[mdp].parse().expect("mdp_idx is a number"),
            program: record[raw].to_owned(),
            preprocessed: record[pre].to_owned(),
        });
    }
    rows
}

#[test]
fn every_preprocessed_program_of_the_dev_data_is_reproduced() {
    let rows = dev_rows();
    let mut mismatches = Vec::new();
    for row in &rows {
        let task = &correa2025().tasks[row.mdp_idx].task;
        let got = canonicalise(task, &program(&row.program), &CanonOptions::default())
            .map(|p| p.to_compact())
            .unwrap_or_else(|e| format!("error: {e}"));
        if got != row.preprocessed {
            mismatches.push(format!(
                "participant {} task {}: {} -> {} (expected {})",
                row.participant, row.mdp_idx, row.program, got, row.preprocessed
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} rows match; mismatches:\n{}",
        rows.len() - mismatches.len(),
        rows.len(),
        mismatches.join("\n")
    );
    assert_eq!(rows.len(), 1162);
}
