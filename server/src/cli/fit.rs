//! `proglab fit`: fit and compare program-choice models on a programs.csv-format file
//! (docs/modelling.md §4.4-4.7), with optional held-out evaluation (participant folds,
//! leave-one-task-out; §4.9) and figures.
//!
//! The analysis itself is `analysis::pipeline::symbolic`; this file parses the arguments, draws
//! the progress on stderr and prints a table or one JSON object. Neural models (`neural-...`
//! names, feature `neural`) are evaluated on the same held-out splits after the symbolic
//! analysis, which runs exactly as without them (`neural_rows.rs` adds their rows).

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use analysis::compare::{Comparison, PairedDifference};
use analysis::cv::CvResult;
use analysis::cv_tasks::TaskCvResult;
use analysis::data::RowError;
use analysis::models::{MODELS, Model, REFERENCE_MODELS};
use analysis::pipeline::neural::NeuralConfig;
use analysis::pipeline::symbolic::{FitConfig, HeldOut, StageSeconds, fit_and_hold_out};

use super::progress::Bars;
use super::{DEFAULT_EXPERIMENT, load_observations};

/// Arguments of `proglab fit`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
proglab fit --programs analysis/data/programs-dev.csv\n  \
proglab fit --programs programs.csv --models gi,gi+step --restarts 20 --seed 3 --json\n  \
proglab fit --programs programs.csv --cv 10 --plots figures/\n  \
proglab fit --programs programs.csv --cv-tasks --no-intervals\n\n\
Models: null, mdl, step, mdl+step, gi, gi+step (the reference six), gi-py, gi-py+step \
(a free Pitman-Yor discount) and lib+step (a shared subroutine library: own and population \
leaf bodies).\n\
Choice sets: each task's enumerated programs plus every participant program the enumeration \
lacks. Held-out scores use no held-out program to build a set: cross-validation folds split \
participants, and each fold's sets hold the enumeration plus the training participants' programs \
(a held-out program is added to its own set only); --cv-tasks fits on all tasks but one and \
scores the held-out task in its enumeration plus each held-out program.")]
pub struct FitArgs {
    /// A programs.csv-format file (the published columns).
    #[arg(long)]
    pub programs: PathBuf,
    /// The experiment whose task list `mdp_idx` indexes (a bundled task set for now).
    #[arg(long, default_value = DEFAULT_EXPERIMENT)]
    pub experiment: String,
    /// Comma-separated models to fit.
    #[arg(long, default_value_t = REFERENCE_MODELS.join(","))]
    pub models: String,
    /// Random starts per fit, in addition to the default start.
    #[arg(long, default_value_t = FitConfig::default().restarts)]
    pub restarts: usize,
    /// Seed of the random starts and of the cross-validation folds.
    #[arg(long, default_value_t = FitConfig::default().seed)]
    pub seed: u64,
    /// Also cross-validate with this many participant-level folds.
    #[arg(long, value_name = "K")]
    pub cv: Option<usize>,
    /// Also leave one task out at a time: fit on the other tasks, score the held-out one.
    #[arg(long)]
    pub cv_tasks: bool,
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
    /// Neural models (with --cv or --cv-tasks): train networks with this many seeds and report
    /// their mean and spread.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub neural_seeds: usize,
    /// Neural models: where the network runs (cpu or cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Neural models: keep each finished split (per network seed) in this folder, and load the
    /// ones it already holds from the same data and settings instead of evaluating them again,
    /// so that a long evaluation can stop and resume.
    #[arg(long, value_name = "DIR")]
    pub neural_splits_dir: Option<PathBuf>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    cv_tasks: Option<&'a TaskCvResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plots: Vec<String>,
    /// The neural models' evaluation (seeds, fits, hyperparameters); their rows are also in `cv`
    /// and `cv_tasks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    neural: Option<serde_json::Value>,
    seconds: Seconds,
}

#[derive(Debug, Serialize)]
struct Seconds {
    #[serde(flatten)]
    stages: StageSeconds,
    total: f64,
}

pub fn main(args: FitArgs) -> anyhow::Result<()> {
    run(args, NeuralConfig::default(), None)
}

/// `proglab fit` with the network settings `network`; `hyperparameters` says how they were
/// chosen when they are not the committed defaults.
pub(super) fn run(
    args: FitArgs,
    network: NeuralConfig,
    hyperparameters: Option<String>,
) -> anyhow::Result<()> {
    let began = Instant::now();
    let (symbolic, neural) = split_names(&args.models);
    if !neural.is_empty() {
        anyhow::ensure!(
            args.cv.is_some() || args.cv_tasks,
            "neural models are evaluated on held-out data only: add --cv K and/or --cv-tasks"
        );
        anyhow::ensure!(
            !args.no_canonicalise,
            "neural models use canonical programs: drop --no-canonicalise"
        );
        anyhow::ensure!(
            !symbolic.is_empty(),
            "list at least one symbolic model beside the neural ones"
        );
    }
    let config = FitConfig {
        models: Model::parse_list(&symbolic)?,
        restarts: args.restarts,
        seed: args.seed,
        intervals: !args.no_intervals,
        folds: args.cv,
    };
    if let Some(k) = args.cv {
        anyhow::ensure!(k >= 2, "--cv needs at least 2 folds");
    }
    let tasks = super::experiment_tasks(&args.experiment)?;
    let observations = load_observations(&args.programs, &tasks, !args.no_canonicalise)?;
    for error in &observations.excluded {
        eprintln!("warning: line {} left out: {}", error.line, error.message);
    }
    let bars = Bars::default();
    let held_out = HeldOut {
        tasks: args.cv_tasks,
    };
    let mut analysis = fit_and_hold_out(
        &tasks,
        &observations.observed,
        &config,
        held_out,
        &|event| bars.show(event),
    )?;
    let neural_rows = if neural.is_empty() {
        None
    } else {
        let request = super::neural_rows::NeuralRequest {
            models: &neural,
            folds: args.cv,
            fold_seed: args.seed,
            tasks: args.cv_tasks,
            seeds: args.neural_seeds,
            network,
            hyperparameters,
            device: &args.device,
            splits_dir: args.neural_splits_dir.as_deref(),
        };
        Some(super::neural_rows::add_neural_rows(
            &tasks,
            &observations.observed,
            &request,
            &mut analysis,
            &|event| bars.show(event),
        )?)
    };
    let plots = match &args.plots {
        Some(dir) => analysis::plots::write_plots(dir, &analysis.comparison, analysis.cv.as_ref())?
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
        n_observations: analysis.comparison.n_observations,
        n_participants: analysis.comparison.n_participants,
        excluded_rows: &observations.excluded,
        comparison: &analysis.comparison,
        cv: analysis.cv.as_ref(),
        cv_tasks: analysis.cv_tasks.as_ref(),
        plots,
        neural: neural_rows.as_ref().map(|(json, _)| json.clone()),
        seconds: Seconds {
            stages: analysis.seconds,
            total: began.elapsed().as_secs_f64(),
        },
    };
    if args.json {
        super::print_json(&report)
    } else {
        let mut text = format_report(&report);
        if let Some((_, section)) = &neural_rows {
            text.push_str(section);
        }
        super::print_stdout(&text)
    }
}

/// The symbolic names of a comma-separated model list (re-joined with commas) and the neural
/// ones (`neural-...`).
fn split_names(models: &str) -> (String, Vec<String>) {
    let (neural, symbolic): (Vec<&str>, Vec<&str>) = models
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .partition(|name| name.starts_with("neural-"));
    (
        symbolic.join(","),
        neural.into_iter().map(str::to_owned).collect(),
    )
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
                "  {:>10} vs {:<11} chi2 {:>10.2}  df {}  p {:.3e}{}\n",
                test.null_model,
                test.model,
                test.chi2,
                test.df,
                test.p,
                if test.reference.starts_with("chi2(") {
                    String::new()
                } else {
                    format!("  (boundary: {})", test.reference)
                }
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
            "\n{}-fold cross-validation by participant (seed {}); choice sets: {}\n",
            cv.folds, cv.seed, cv.choice_sets
        ));
        out.push_str(&format!(
            "  {:<11} {:>11} {:>10}  {}\n",
            "model",
            "held-out LL",
            "per choice",
            "vs best per choice (± paired SE, ± clustered by participant)"
        ));
        for model in &cv.models {
            out.push_str(&format!(
                "  {:<11} {:>11.2} {:>10.4}  {}\n",
                model.name,
                model.held_out_log_likelihood,
                model.per_observation,
                versus_best(&cv.versus_best, &model.name)
            ));
        }
    }
    if let Some(cv) = report.cv_tasks {
        out.push_str(&format_task_cv(cv));
    }
    for path in &report.plots {
        out.push_str(&format!("wrote {path}\n"));
    }
    out.push_str(&format!(
        "\ntime: choice sets {:.1} s, library groups {:.1} s, fits {:.1} s, cv {:.1} s, cv-tasks {:.1} s, total {:.1} s\n",
        report.seconds.stages.choice_sets,
        report.seconds.stages.library,
        report.seconds.stages.fits,
        report.seconds.stages.cv,
        report.seconds.stages.cv_tasks,
        report.seconds.total
    ));
    out
}

/// The leave-one-task-out table: held-out log-likelihood per choice of each task, then totals.
fn format_task_cv(cv: &TaskCvResult) -> String {
    let mut out = format!(
        "\nleave-one-task-out (fitted on the other tasks); choice sets: {}\n",
        cv.choice_sets
    );
    out.push_str("held-out log-likelihood per choice\n");
    out.push_str(&format!("{:<9} {:>5}", "task", "n"));
    for model in &cv.models {
        out.push_str(&format!(" {:>11}", model.name));
    }
    out.push('\n');
    for (t, (task, &n)) in cv.tasks.iter().zip(&cv.task_observations).enumerate() {
        out.push_str(&format!("{task:<9} {n:>5}"));
        for model in &cv.models {
            let ll = model.per_task.get(t).copied().unwrap_or(f64::NAN);
            out.push_str(&format!(" {:>11.4}", ll / n.max(1) as f64));
        }
        out.push('\n');
    }
    let n: usize = cv.task_observations.iter().sum();
    out.push_str(&format!("{:<9} {n:>5}", "all"));
    for model in &cv.models {
        out.push_str(&format!(" {:>11.4}", model.per_observation));
    }
    out.push('\n');
    out.push_str(&format!("{:<9} {:>5}", "total LL", ""));
    for model in &cv.models {
        out.push_str(&format!(" {:>11.2}", model.held_out_log_likelihood));
    }
    out.push('\n');
    out.push_str("vs best per choice (± paired SE, ± clustered by participant)\n");
    for model in &cv.models {
        out.push_str(&format!(
            "  {:<11} {}\n",
            model.name,
            versus_best(&cv.versus_best, &model.name)
        ));
    }
    out
}

/// A model's paired difference from the best, as `-0.1234 ± 0.0056 ± 0.0110 vs gi+step` (the
/// paired and the participant-clustered standard errors), or `best`.
fn versus_best(differences: &[PairedDifference], model: &str) -> String {
    match differences.iter().find(|d| d.model == model) {
        Some(d) if d.model == d.baseline => "best".to_owned(),
        Some(d) => format!(
            "{:+.4} ± {:.4} ± {:.4} vs {}",
            d.mean_difference, d.standard_error, d.clustered_standard_error, d.baseline
        ),
        None => String::new(),
    }
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
