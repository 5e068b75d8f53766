//! `check-data`: parse, execute and canonicalise every row of a `programs.csv`-format file, and
//! summarise the programs.

use serde::Serialize;

use dsl::canon::{CanonOptions, canonicalise};
use dsl::tasks::NamedTask;
use dsl::{Limits, Metrics, Program, RunOptions, compact};

use crate::data::{ProgramsFile, RowError};

/// Up to this many canonicalisation mismatches are listed.
const MAX_EXAMPLES: usize = 20;

/// Figures over the non-skipped rows of one task or of the whole file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub rows: usize,
    pub skipped: usize,
    /// Non-skipped rows whose `program` parses.
    pub parsed: usize,
    /// Parsed programs that solve their task (analysis semantics).
    pub solved: usize,
    /// Solved programs whose canonical form equals the file's `preprocessed_program`.
    pub canonical_matches: usize,
    pub canonical_mismatch_count: usize,
    /// T of `program`, averaged over parsed rows.
    pub mean_length_raw: Option<f64>,
    /// T of `preprocessed_program`.
    pub mean_length_canonical: Option<f64>,
    /// S of `program`, over solved rows.
    pub mean_steps_raw: Option<f64>,
    /// S of `preprocessed_program`, over rows where it solves the task.
    pub mean_steps_canonical: Option<f64>,
    /// Fraction of parsed rows whose main calls a subroutine.
    pub uses_subroutine_raw: Option<f64>,
    pub uses_subroutine_canonical: Option<f64>,
}

/// A row whose canonical form differs from the file's.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub line: u64,
    pub participant_idx: u32,
    pub task: String,
    pub program: String,
    pub expected: String,
    pub computed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskSummary {
    pub task: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The whole report; `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    #[serde(flatten)]
    pub summary: Summary,
    pub canonical_mismatch_examples: Vec<Mismatch>,
    pub errors: Vec<RowError>,
    pub per_task: Vec<TaskSummary>,
}

#[derive(Default)]
struct Accumulator {
    summary: Summary,
    length_raw: Vec<f64>,
    length_canonical: Vec<f64>,
    steps_raw: Vec<f64>,
    steps_canonical: Vec<f64>,
    subroutine_raw: Vec<f64>,
    subroutine_canonical: Vec<f64>,
}

impl Accumulator {
    fn finish(mut self) -> Summary {
        let mean = |values: &[f64]| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        self.summary.mean_length_raw = mean(&self.length_raw);
        self.summary.mean_length_canonical = mean(&self.length_canonical);
        self.summary.mean_steps_raw = mean(&self.steps_raw);
        self.summary.mean_steps_canonical = mean(&self.steps_canonical);
        self.summary.uses_subroutine_raw = mean(&self.subroutine_raw);
        self.summary.uses_subroutine_canonical = mean(&self.subroutine_canonical);
        self.summary
    }
}

/// Checks every row of `file` against `tasks` (index = `mdp_idx`).
pub fn check(file: &ProgramsFile, tasks: &[NamedTask], limits: &Limits) -> CheckReport {
    let mut total = Accumulator::default();
    let mut per_task: Vec<Accumulator> = tasks.iter().map(|_| Accumulator::default()).collect();
    let mut errors = file.errors.clone();
    let mut examples = Vec::new();
    for (line, row) in &file.rows {
        let line = *line;
        let Some(named) = tasks.get(row.mdp_idx) else {
            errors.push(RowError {
                line,
                message: format!(
                    "mdp_idx {} is not a task of this experiment (0 to {})",
                    row.mdp_idx,
                    tasks.len().saturating_sub(1)
                ),
            });
            continue;
        };
        let task = &named.task;
        let task_acc = &mut per_task[row.mdp_idx];
        for acc in [&mut total, &mut *task_acc] {
            acc.summary.rows += 1;
            acc.summary.skipped += usize::from(row.skipped);
        }
        if row.skipped {
            continue;
        }
        let raw = match compact::parse(row.program.trim(), limits) {
            Ok(program) => program,
            Err(e) => {
                errors.push(RowError {
                    line,
                    message: format!("program `{}`: {e}", row.program),
                });
                continue;
            }
        };
        let raw_figures = figures(task, &raw);
        let canonical_column = compact::parse(row.preprocessed_program.trim(), limits);
        if let Err(e) = &canonical_column {
            errors.push(RowError {
                line,
                message: format!("preprocessed_program `{}`: {e}", row.preprocessed_program),
            });
        }
        let canonical_figures = canonical_column.as_ref().ok().map(|p| figures(task, p));
        let computed = canonicalise(task, &raw, &CanonOptions::default()).ok();
        let matches = match (&computed, &canonical_column) {
            (Some(computed), Ok(expected)) => computed == expected,
            _ => false,
        };
        if raw_figures.solved && !matches && examples.len() < MAX_EXAMPLES {
            examples.push(Mismatch {
                line,
                participant_idx: row.participant_idx,
                task: named.label.clone(),
                program: row.program.clone(),
                expected: row.preprocessed_program.clone(),
                computed: computed.map_or_else(|| "(unsolved)".to_owned(), |p| p.to_compact()),
            });
        }
        for acc in [&mut total, &mut *task_acc] {
            acc.summary.parsed += 1;
            acc.length_raw.push(raw_figures.length);
            acc.subroutine_raw.push(raw_figures.uses_subroutine);
            if raw_figures.solved {
                acc.summary.solved += 1;
                acc.steps_raw.extend(raw_figures.steps);
                if matches {
                    acc.summary.canonical_matches += 1;
                } else {
                    acc.summary.canonical_mismatch_count += 1;
                }
            }
            if let Some(canonical) = &canonical_figures {
                acc.length_canonical.push(canonical.length);
                acc.subroutine_canonical.push(canonical.uses_subroutine);
                acc.steps_canonical.extend(canonical.steps);
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    CheckReport {
        summary: total.finish(),
        canonical_mismatch_examples: examples,
        errors,
        per_task: tasks
            .iter()
            .zip(per_task)
            .map(|(named, acc)| TaskSummary {
                task: named.label.clone(),
                summary: acc.finish(),
            })
            .collect(),
    }
}

struct Figures {
    solved: bool,
    length: f64,
    steps: Option<f64>,
    uses_subroutine: f64,
}

fn figures(task: &dsl::Task, program: &Program) -> Figures {
    Figures {
        solved: dsl::run(task, program, &RunOptions::default()).solved,
        length: f64::from(Metrics::of(program).t),
        steps: dsl::metrics::step_cost(task, program).ok().map(f64::from),
        uses_subroutine: if Metrics::uses_subroutine(program) {
            1.0
        } else {
            0.0
        },
    }
}
