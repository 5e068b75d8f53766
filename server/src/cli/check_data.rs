//! `proglab check-data`: parse, execute and canonicalise every row of a programs.csv-format file.

use std::path::PathBuf;

use anyhow::Context;

use analysis::check::{CheckReport, Summary, check};
use dsl::Limits;

/// Arguments of `proglab check-data`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  proglab check-data --programs analysis/data/programs-dev.csv\n  \
proglab check-data --programs programs.csv --json | jq .per_task"
)]
pub struct CheckDataArgs {
    /// A programs.csv-format file (the published columns).
    #[arg(long)]
    pub programs: PathBuf,
    /// The experiment whose task list `mdp_idx` indexes: a bundled slug or a TOML file.
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    /// Print one JSON object to stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: CheckDataArgs) -> anyhow::Result<()> {
    let tasks = super::experiment_tasks(&args.experiment)?;
    let file = std::fs::File::open(&args.programs)
        .with_context(|| format!("cannot open {}", args.programs.display()))?;
    let rows = analysis::data::read_programs(file)
        .with_context(|| format!("cannot read {}", args.programs.display()))?;
    let report = check(&rows, &tasks, &Limits::default());
    if args.json {
        super::print_json(&report)
    } else {
        super::print_stdout(&format_report(&report))
    }
}

fn format_report(report: &CheckReport) -> String {
    let fmt = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let line = |name: &str, s: &Summary| {
        format!(
            "{name:<6} {:>5} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6}\n",
            s.rows,
            s.skipped,
            s.parsed,
            s.solved,
            s.canonical_matches,
            fmt(s.mean_length_raw),
            fmt(s.mean_length_canonical),
            fmt(s.mean_steps_raw),
            fmt(s.mean_steps_canonical),
            fmt(s.uses_subroutine_raw),
            fmt(s.uses_subroutine_canonical),
        )
    };
    let mut out = format!(
        "{:<6} {:>5} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6}\n",
        "task",
        "rows",
        "skip",
        "parsed",
        "solved",
        "canon",
        "len",
        "len_c",
        "steps",
        "steps_c",
        "sub",
        "sub_c"
    );
    for task in &report.per_task {
        out.push_str(&line(&task.task, &task.summary));
    }
    out.push_str(&line("all", &report.summary));
    for mismatch in &report.canonical_mismatch_examples {
        out.push_str(&format!(
            "mismatch, line {} (task {}): {} -> {} (file says {})\n",
            mismatch.line, mismatch.task, mismatch.program, mismatch.computed, mismatch.expected
        ));
    }
    for error in &report.errors {
        out.push_str(&format!("error, line {}: {}\n", error.line, error.message));
    }
    out
}
