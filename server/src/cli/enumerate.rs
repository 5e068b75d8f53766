//! `proglab enumerate`: the candidate traces and programs of a task (docs/modelling.md §4.1-4.3).
//!
//! Prints, per task, the number of candidate traces, their length range, the number of unique
//! programs and of distinct sufficient-statistic keys, and the time taken. Progress goes to stderr.

use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use analysis::enumerate::{Enumeration, enumerate_task_with_progress};
use dsl::tasks::NamedTask;

/// Arguments of `proglab enumerate`.
#[derive(Debug, clap::Args)]
pub struct EnumerateArgs {
    /// The task: an address such as `correa2025/b`, or a label of the experiment such as `b`.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub task: Option<String>,
    /// Enumerate every task of the experiment, in study order.
    #[arg(long)]
    pub all: bool,
    /// The experiment whose tasks are meant (a bundled task set for now).
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    /// Print one JSON object: the task's figures, or with `--all` every task's under `tasks`.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output for one task.
#[derive(Debug, Serialize)]
struct Report {
    task: String,
    traces: usize,
    programs: u64,
    min_trace_length: usize,
    max_trace_length: usize,
    /// Distinct sufficient-statistic keys.
    keys: usize,
    seconds: f64,
}

pub fn main(args: EnumerateArgs) -> anyhow::Result<()> {
    let tasks = resolve(&args)?;
    let started = Instant::now();
    let mut reports = Vec::with_capacity(tasks.len());
    for (address, named) in &tasks {
        let report = enumerate(address, named)?;
        if !args.json {
            super::print_stdout(&format!(
                "{}: {} traces (lengths {}-{}), {} programs, {} keys, {:.2} s\n",
                report.task,
                report.traces,
                report.min_trace_length,
                report.max_trace_length,
                report.programs,
                report.keys,
                report.seconds
            ))?;
        }
        reports.push(report);
    }
    let total_programs: u64 = reports.iter().map(|r| r.programs).sum();
    let seconds = started.elapsed().as_secs_f64();
    match (args.json, reports.len()) {
        // One task: its object. Several: one object holding them all, as `--json` promises.
        (true, 1) => super::print_json(&reports[0]),
        (true, _) => super::print_json(&serde_json::json!({
            "tasks": reports,
            "programs": total_programs,
            "seconds": seconds,
        })),
        (false, 1) => Ok(()),
        (false, n) => super::print_stdout(&format!(
            "total: {n} tasks, {total_programs} programs, {seconds:.2} s\n"
        )),
    }
}

/// The tasks named by the arguments, with their addresses.
fn resolve(args: &EnumerateArgs) -> anyhow::Result<Vec<(String, &'static NamedTask)>> {
    let sets = dsl::tasks::bundled_sets();
    let set = sets.iter().find(|set| set.name == args.experiment);
    let known = || {
        sets.iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let task = match (&args.task, args.all) {
        (Some(task), false) if task.contains('/') => task.as_str(),
        (_, all) => {
            let set = set.with_context(|| {
                format!(
                    "unknown experiment `{}` (bundled: {})",
                    args.experiment,
                    known()
                )
            })?;
            if all {
                return Ok(set
                    .tasks
                    .iter()
                    .map(|t| (format!("{}/{}", set.name, t.label), t))
                    .collect());
            }
            args.task.as_deref().context("give --task or --all")?
        }
    };
    let address = if task.contains('/') {
        task.to_owned()
    } else {
        format!("{}/{task}", args.experiment)
    };
    let named = dsl::tasks::lookup(&address).with_context(|| {
        let (set_name, _) = address.split_once('/').unwrap_or((&address, ""));
        match sets.iter().find(|s| s.name == set_name) {
            Some(set) => {
                let labels: Vec<&str> = set.tasks.iter().map(|t| t.label.as_str()).collect();
                format!(
                    "unknown task `{address}` (tasks of {set_name}: {})",
                    labels.join(" ")
                )
            }
            None => format!(
                "unknown task `{address}`: no experiment `{set_name}` (bundled: {})",
                known()
            ),
        }
    })?;
    Ok(vec![(address, named)])
}

/// Enumerates one task with a progress bar on stderr.
fn enumerate(address: &str, named: &NamedTask) -> anyhow::Result<Report> {
    let started = Instant::now();
    let bar = ProgressBar::new(0).with_message(address.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} traces ({elapsed})")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let enumeration: Enumeration =
        enumerate_task_with_progress(&named.task, &[], &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .with_context(|| format!("enumerating {address}"))?;
    bar.finish_and_clear();
    Ok(Report {
        task: address.to_owned(),
        traces: enumeration.traces,
        programs: enumeration.programs,
        min_trace_length: enumeration.min_trace_length,
        max_trace_length: enumeration.max_trace_length,
        keys: enumeration.histogram.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Prints one line to stdout; returns false when stdout was closed (`proglab ... | head`).
#[cfg(test)]
mod tests {
    use super::*;

    fn args(task: Option<&str>, all: bool, experiment: &str) -> EnumerateArgs {
        EnumerateArgs {
            task: task.map(str::to_owned),
            all,
            experiment: experiment.to_owned(),
            json: false,
        }
    }

    fn addresses(args: &EnumerateArgs) -> anyhow::Result<Vec<String>> {
        Ok(resolve(args)?
            .into_iter()
            .map(|(address, _)| address)
            .collect())
    }

    #[test]
    fn tasks_resolve_by_label_or_address() {
        assert_eq!(
            addresses(&args(Some("b"), false, "correa2025")).unwrap(),
            ["correa2025/b"]
        );
        assert_eq!(
            addresses(&args(Some("correa2025/j"), false, "correa2025")).unwrap(),
            ["correa2025/j"]
        );
        let all = addresses(&args(None, true, "correa2025")).unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0], "correa2025/a");
        assert_eq!(all[9], "correa2025/j");
    }

    #[test]
    fn unknown_tasks_and_experiments_are_named_in_the_error() {
        let error = addresses(&args(Some("zz"), false, "correa2025"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("correa2025/zz") && error.contains("a b c d e f g h i j"),
            "{error}"
        );
        let error = addresses(&args(Some("c"), false, "nope"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown experiment `nope`"), "{error}");
        let error = addresses(&args(None, true, "nope"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown experiment `nope`"), "{error}");
        let error = addresses(&args(Some("nope/c"), false, "correa2025"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no experiment `nope`"), "{error}");
    }

    #[test]
    fn a_small_task_is_enumerated() {
        let (address, named) = resolve(&args(Some("c"), false, "correa2025"))
            .unwrap()
            .remove(0);
        let report = enumerate(&address, named).unwrap();
        assert_eq!((report.traces, report.programs), (1502, 50_140));
        assert_eq!((report.min_trace_length, report.max_trace_length), (13, 21));
        assert!(report.keys > 100);
    }
}
