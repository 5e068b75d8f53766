//! `proglab fit`: fit and compare program-choice models on a programs.csv-format file
//! (SPEC §4.4-4.7), with optional participant-level cross-validation and figures.
//!
//! Steps: read the file, turn non-skipped rows into canonical programs, enumerate each task's
//! candidates and build the choice sets, fit every model with restarts, profile every parameter,
//! compare, then print a table or one JSON object. Progress goes to stderr.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use analysis::choice::{ChoiceSets, ObserveOptions, TaskCandidates, observed_programs};
use analysis::compare::{CompareOptions, Comparison, Progress, compare};
use analysis::cv::{CvOptions, CvResult, cross_validate};
use analysis::data::RowError;
use analysis::enumerate::enumerate_task_with_progress;
use analysis::fit::FitOptions;
use analysis::models::likelihood::Features;
use analysis::models::{MODELS, Model, REFERENCE_MODELS};

/// Arguments of `proglab fit`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
proglab fit --programs analysis/data/programs-dev.csv\n  \
proglab fit --programs programs.csv --models gi,gi+step --restarts 20 --seed 3 --json\n  \
proglab fit --programs programs.csv --cv 10 --plots figures/\n\n\
Models: null, mdl, step, mdl+step, gi, gi+step (the reference six) and gi-py, gi-py+step \
(a free Pitman-Yor discount).\n\
Choice sets: each task's enumerated programs plus every participant program the enumeration \
lacks. Cross-validation folds split participants; the choice sets stay those of the full fit.")]
pub struct FitArgs {
    /// A programs.csv-format file (the published columns).
    #[arg(long)]
    pub programs: PathBuf,
    /// The experiment whose task list `mdp_idx` indexes (a bundled task set for now).
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    /// Comma-separated models to fit.
    #[arg(long, default_value_t = REFERENCE_MODELS.join(","))]
    pub models: String,
    /// Random starts per fit, in addition to the default start (SPEC §4.6: 50).
    #[arg(long, default_value_t = 50)]
    pub restarts: usize,
    /// Seed of the random starts and of the cross-validation folds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also cross-validate with this many participant-level folds.
    #[arg(long, value_name = "K")]
    pub cv: Option<usize>,
    /// Print one JSON object to stdout.
    #[arg(long)]
    pub json: bool,
    /// Write comparison figures (SVG and PNG) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Use the raw `program` column instead of canonical programs.
    #[arg(long)]
    pub no_canonicalise: bool,
    /// Skip the profile-likelihood intervals (faster).
    #[arg(long)]
    pub no_intervals: bool,
}

/// The `--json` output.
#[derive(Debug, Serialize)]
struct Report<'a> {
    experiment: &'a str,
    programs: String,
    canonicalise: bool,
    seed: u64,
    restarts: usize,
    n_observations: usize,
    n_participants: usize,
    /// Rows left out, with why.
    excluded_rows: &'a [RowError],
    #[serde(flatten)]
    comparison: &'a Comparison,
    #[serde(skip_serializing_if = "Option::is_none")]
    cv: Option<&'a CvResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plots: Vec<String>,
    seconds: Seconds,
}

#[derive(Debug, Serialize)]
struct Seconds {
    choice_sets: f64,
    fits: f64,
    cv: f64,
    total: f64,
}

pub fn main(args: FitArgs) -> anyhow::Result<()> {
    if super::train_neural::lists_neural(&args.models) {
        return super::train_neural::fit_with_neural(neural_request(&args));
    }
    let began = Instant::now();
    let models = Model::parse_list(&args.models)?;
    if let Some(k) = args.cv {
        anyhow::ensure!(k >= 2, "--cv needs at least 2 folds");
    }
    let named = super::experiment_tasks(&args.experiment)?;
    let tasks: Vec<&dsl::Task> = named.iter().map(|t| &t.task).collect();
    let labels: Vec<String> = named.iter().map(|t| t.label.clone()).collect();

    let file = std::fs::File::open(&args.programs)
        .with_context(|| format!("cannot open {}", args.programs.display()))?;
    let rows = analysis::data::read_programs(file)
        .with_context(|| format!("cannot read {}", args.programs.display()))?;
    let options = ObserveOptions {
        canonicalise: !args.no_canonicalise,
        ..ObserveOptions::default()
    };
    let (observed, row_errors) = observed_programs(&rows.rows, &tasks, &options);
    let mut excluded = rows.errors.clone();
    excluded.extend(row_errors);
    for error in &excluded {
        eprintln!("warning: line {} left out: {}", error.line, error.message);
    }
    anyhow::ensure!(
        !observed.is_empty(),
        "{} has no usable non-skipped rows",
        args.programs.display()
    );

    let choice_sets = build_choice_sets(&labels, &tasks, &observed)?;
    let choice_seconds = began.elapsed().as_secs_f64();
    let features = Features::new(&choice_sets);

    let fit_options = FitOptions {
        random_starts: args.restarts,
        seed: args.seed,
        ..FitOptions::default()
    };
    let compare_options = CompareOptions {
        fit: fit_options,
        intervals: !args.no_intervals,
    };
    let fits_began = Instant::now();
    let comparison = compare_with_progress(&choice_sets, &features, &models, &compare_options)?;
    let fit_seconds = fits_began.elapsed().as_secs_f64();

    let cv_began = Instant::now();
    let cv = match args.cv {
        Some(folds) => {
            let options = CvOptions {
                folds,
                seed: args.seed,
                fit: fit_options,
            };
            let bar = bar(
                (models.len() * folds) as u64,
                &format!("{folds}-fold cross-validation"),
            );
            let result =
                cross_validate(&choice_sets, &features, &models, &options, &|model, _| {
                    bar.set_message(format!("cross-validating {model}"));
                    bar.inc(1);
                })?;
            bar.finish_and_clear();
            Some(result)
        }
        None => None,
    };
    let cv_seconds = cv_began.elapsed().as_secs_f64();

    let plots = match &args.plots {
        Some(dir) => analysis::plots::write_plots(dir, &comparison, cv.as_ref())?
            .into_iter()
            .map(|p| p.display().to_string())
            .collect(),
        None => Vec::new(),
    };

    let report = Report {
        experiment: &args.experiment,
        programs: args.programs.display().to_string(),
        canonicalise: !args.no_canonicalise,
        seed: args.seed,
        restarts: args.restarts,
        n_observations: comparison.n_observations,
        n_participants: comparison.n_participants,
        excluded_rows: &excluded,
        comparison: &comparison,
        cv: cv.as_ref(),
        plots,
        seconds: Seconds {
            choice_sets: choice_seconds,
            fits: fit_seconds,
            cv: cv_seconds,
            total: began.elapsed().as_secs_f64(),
        },
    };
    if args.json {
        super::print_json(&report)
    } else {
        super::print_stdout(&format_report(&report))
    }
}

/// Enumerates each task with observations and builds its choice set, showing progress.
fn build_choice_sets(
    labels: &[String],
    tasks: &[&dsl::Task],
    observed: &[analysis::choice::ObservedProgram],
) -> anyhow::Result<ChoiceSets> {
    let bar = bar(0, "enumerating");
    let sets = ChoiceSets::build(
        labels,
        observed,
        |t, queries| {
            bar.reset();
            bar.set_message(format!("enumerating task {}", labels[t]));
            let enumeration = enumerate_task_with_progress(tasks[t], queries, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            Ok(TaskCandidates::from(enumeration))
        },
        &|_| {},
    )?;
    bar.finish_and_clear();
    Ok(sets)
}

/// [`compare`] with one progress bar per model.
fn compare_with_progress(
    choice_sets: &ChoiceSets,
    features: &Features,
    models: &[Model],
    options: &CompareOptions,
) -> anyhow::Result<Comparison> {
    let current: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let comparison = compare(choice_sets, features, models, options, &|event| {
        let Ok(mut current) = current.lock() else {
            return;
        };
        match event {
            Progress::FitStarted { model, restarts } => {
                *current = Some(bar(restarts as u64, &format!("fitting {model}")));
            }
            Progress::RestartDone => {
                if let Some(bar) = current.as_ref() {
                    bar.inc(1);
                }
            }
            Progress::ProfileStarted { model } => {
                if let Some(bar) = current.as_ref() {
                    bar.set_message(format!("profiling {model}"));
                }
            }
            Progress::ModelDone { .. } => {
                if let Some(bar) = current.take() {
                    bar.finish_and_clear();
                }
            }
        }
    })?;
    Ok(comparison)
}

fn bar(length: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

fn format_report(report: &Report<'_>) -> String {
    let comparison = report.comparison;
    let mut out = format!(
        "{} observations from {} participants ({}; {} rows left out)\n\n",
        comparison.n_observations,
        comparison.n_participants,
        if report.canonicalise {
            "canonical programs"
        } else {
            "raw programs"
        },
        report.excluded_rows.len(),
    );
    out.push_str(&format!(
        "{:<11} {:>2} {:>11} {:>10} {:>9}  parameters [95% profile intervals]\n",
        "model", "k", "log-lik", "BIC", "at best"
    ));
    for model in &comparison.models {
        let params: Vec<String> = MODELS
            .iter()
            .find(|m| m.name == model.name)
            .map(|m| m.params)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let value = model.params.get(p.name()).copied().unwrap_or(f64::NAN);
                match model.intervals.get(p.name()) {
                    Some(i) => format!(
                        "{} {} [{}, {}]",
                        p.name(),
                        num(value),
                        num(i.lower),
                        num(i.upper)
                    ),
                    None => format!("{} {}", p.name(), num(value)),
                }
            })
            .collect();
        out.push_str(&format!(
            "{:<11} {:>2} {:>11.2} {:>10.2} {:>9}  {}\n",
            model.name,
            model.k,
            model.log_likelihood,
            model.bic,
            format!("{}/{}", model.restarts_at_best, model.restarts),
            params.join(", ")
        ));
    }
    if !comparison.lrt.is_empty() {
        out.push_str("\nlikelihood-ratio tests (nested pairs)\n");
        for test in &comparison.lrt {
            out.push_str(&format!(
                "  {:>10} vs {:<11} chi2 {:>10.2}  df {}  p {:.3e}\n",
                test.null_model, test.model, test.chi2, test.df, test.p
            ));
        }
    }
    out.push_str("\nper-task BIC (p_end averaged within the task)\n");
    out.push_str(&format!("{:<6} {:>4}", "task", "n"));
    for model in &comparison.models {
        out.push_str(&format!(" {:>10}", model.name));
    }
    out.push('\n');
    for task in &comparison.per_task {
        out.push_str(&format!("{:<6} {:>4}", task.task, task.n_observations));
        for model in &task.models {
            out.push_str(&format!(" {:>10.2}", model.bic));
        }
        out.push('\n');
    }
    out.push_str("\ncoverage by the enumeration\n");
    out.push_str(&format!(
        "{:<6} {:>5} {:>8} {:>7} {:>9} {:>11} {:>11}\n",
        "task", "obs", "obs_enum", "unique", "uniq_enum", "enumerated", "choice_set"
    ));
    for c in &comparison.coverage {
        out.push_str(&format!(
            "{:<6} {:>5} {:>8} {:>7} {:>9} {:>11} {:>11}\n",
            c.task,
            c.observations,
            c.observations_in_enumeration,
            c.unique_programs,
            c.unique_in_enumeration,
            c.enumerated_programs,
            c.choice_set_size
        ));
    }
    if let Some(cv) = report.cv {
        out.push_str(&format!(
            "\n{}-fold cross-validation by participant (seed {})\n",
            cv.folds, cv.seed
        ));
        for model in &cv.models {
            out.push_str(&format!(
                "  {:<11} held-out LL {:>11.2}  per choice {:>8.4}\n",
                model.name, model.held_out_log_likelihood, model.per_observation
            ));
        }
    }
    for path in &report.plots {
        out.push_str(&format!("wrote {path}\n"));
    }
    out.push_str(&format!(
        "\ntime: choice sets {:.1} s, fits {:.1} s, cv {:.1} s, total {:.1} s\n",
        report.seconds.choice_sets, report.seconds.fits, report.seconds.cv, report.seconds.total
    ));
    out
}

/// A parameter value or interval end for the table: 4 significant digits, ∞ for unbounded ends.
fn num(value: f64) -> String {
    if value.is_infinite() {
        "inf".to_owned()
    } else if value != 0.0 && (value.abs() >= 1e4 || value.abs() < 1e-3) {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

/// Hook of the neural baselines (`train_neural.rs`): a model list with `neural-...` names runs
/// the held-out comparison of symbolic and neural models on the same choice sets there.
fn neural_request(args: &FitArgs) -> super::train_neural::FitNeural {
    super::train_neural::FitNeural {
        programs: args.programs.clone(),
        experiment: args.experiment.clone(),
        models: args.models.clone(),
        cv: args.cv,
        restarts: args.restarts,
        seed: args.seed,
        canonicalise: !args.no_canonicalise,
        plots: args.plots.clone(),
        json: args.json,
    }
}
