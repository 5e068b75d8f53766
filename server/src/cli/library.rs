//! `proglab library`: the subroutine bodies that compress a programs.csv-format corpus best
//! (docs/modelling.md §4.10).
//!
//! The search is `analysis::library`; this file reads the canonical programs as `fit` does,
//! prints the library as a table or one JSON object, and draws its figures.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use analysis::library::{Library, LibraryBody, LibraryConfig, build_library, write_plots};

use super::{DEFAULT_EXPERIMENT, load_observations};

/// Arguments of `proglab library`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
proglab library --programs analysis/data/programs-dev.csv\n  \
proglab library --programs programs.csv --top 20 --plots library-plots/\n  \
proglab library --programs programs.csv --no-holes --p-call 0.3 --json\n\n\
Description length: the grammar-induction prior's token costs (a primitive -ln((1-p_call)/5), \
a call -ln p_call, a routine's ending terms); the library pays once for each body, each use \
costs one call token, and a use of a body with a hole also keeps its filler.")]
pub struct LibraryArgs {
    /// A programs.csv-format file (the published columns).
    #[arg(long)]
    pub programs: PathBuf,
    /// The experiment whose task list `mdp_idx` indexes (a bundled task set for now).
    #[arg(long, default_value = DEFAULT_EXPERIMENT)]
    pub experiment: String,
    /// Print one JSON object (every body) to stdout.
    #[arg(long)]
    pub json: bool,
    /// Write heat maps of the top bodies' use by task (SVG and PNG) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// How many bodies the table and the figures show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Only bodies without a hole.
    #[arg(long)]
    pub no_holes: bool,
    /// The probability that a token is a call.
    #[arg(long, default_value_t = LibraryConfig::default().p_call)]
    pub p_call: f64,
    /// The probability that a routine ends after each token.
    #[arg(long, default_value_t = LibraryConfig::default().p_end)]
    pub p_end: f64,
}

/// The `--json` output.
#[derive(Debug, Serialize)]
struct Report<'a> {
    experiment: &'a str,
    programs: String,
    #[serde(flatten)]
    library: &'a Library,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plots: Vec<String>,
    seconds: f64,
}

pub fn main(args: LibraryArgs) -> anyhow::Result<()> {
    let began = Instant::now();
    let tasks = super::experiment_tasks(&args.experiment)?;
    eprintln!("reading {}", args.programs.display());
    let observations = load_observations(&args.programs, &tasks, true)?;
    if !observations.excluded.is_empty() {
        eprintln!("{} rows left out", observations.excluded.len());
    }
    let config = LibraryConfig {
        p_call: args.p_call,
        p_end: args.p_end,
        holes: !args.no_holes,
    };
    eprintln!(
        "searching {} programs for a library{}",
        observations.observed.len(),
        if config.holes { " (with holes)" } else { "" }
    );
    let labels: Vec<String> = tasks.iter().map(|t| t.label.clone()).collect();
    let searching = Instant::now();
    let library = build_library(&observations.observed, &labels, &config)?;
    let seconds = began.elapsed().as_secs_f64();
    eprintln!(
        "found {} bodies in {:.2} s ({seconds:.2} s with reading)",
        library.bodies.len(),
        searching.elapsed().as_secs_f64()
    );
    let plots = match &args.plots {
        Some(dir) => write_plots(dir, &library, args.top)?
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        None => Vec::new(),
    };
    for path in &plots {
        eprintln!("wrote {path}");
    }
    if args.json {
        super::print_json(&Report {
            experiment: &args.experiment,
            programs: args.programs.display().to_string(),
            library: &library,
            plots,
            seconds,
        })
    } else {
        super::print_stdout(&format_table(&library, args.top, seconds))
    }
}

fn format_table(library: &Library, top: usize, seconds: f64) -> String {
    let dl = &library.description_length;
    let mut out = format!(
        "library of {} programs ({} participants), p_call {}, p_end {}, holes {}: \
         {} bodies; description length {:.1} -> {:.1} nats (library {:.1}), {seconds:.2} s\n",
        library.n_programs,
        library.n_participants,
        library.p_call,
        library.p_end,
        if library.holes { "on" } else { "off" },
        library.bodies.len(),
        dl.before,
        dl.after,
        dl.library,
    );
    let shown = &library.bodies[..top.min(library.bodies.len())];
    let width = |text: fn(&LibraryBody) -> &str, header: &str| {
        shown
            .iter()
            .map(|b| text(b).chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let body_width = width(|b| &b.body, "body");
    let expanded_width = width(|b| &b.expanded, "expanded");
    out.push_str(&format!(
        "{:>4} {:<body_width$} {:<expanded_width$} {:>5} {:>8} {:>5} {:>5}  uses by task:",
        "#", "body", "expanded", "uses", "saved", "progs", "parts"
    ));
    for task in &library.tasks {
        out.push_str(&format!(" {:>4}", task.task));
    }
    out.push('\n');
    for body in shown {
        out.push_str(&format!(
            "{:>4} {:<body_width$} {:<expanded_width$} {:>5} {:>8.1} {:>5} {:>5}{:15}",
            body.rank,
            body.body,
            body.expanded,
            body.uses,
            body.saved,
            body.programs,
            body.participants,
            "",
        ));
        for task in &body.per_task {
            out.push_str(&format!(" {:>4}", task.uses));
        }
        out.push('\n');
    }
    if library.bodies.len() > top {
        out.push_str(&format!(
            "... {} more (--top, --json)\n",
            library.bodies.len() - top
        ));
    }
    out
}
