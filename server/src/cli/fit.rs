//! `proglab fit`: fit and compare program-choice models on a programs.csv-format file
//! (docs/modelling.md §4.4-4.7), with optional participant-level cross-validation and figures.
//!
//! The analysis itself is `analysis::pipeline::symbolic`; this file parses the arguments, draws
//! the progress on stderr and prints a table or one JSON object. A model list with `neural-...`
//! names goes to the held-out table of `train_neural.rs` instead.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use analysis::compare::Comparison;
use analysis::cv::CvResult;
use analysis::data::RowError;
use analysis::models::{MODELS, Model, REFERENCE_MODELS};
use analysis::pipeline::neural::{NeuralConfig, NeuralTableConfig};
use analysis::pipeline::symbolic::{FitConfig, StageSeconds, fit_and_cross_validate};

use super::progress::Bars;
use super::{DEFAULT_EXPERIMENT, load_observations};

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
    #[serde(flatten)]
    stages: StageSeconds,
    total: f64,
}

pub fn main(args: FitArgs) -> anyhow::Result<()> {
    if lists_neural(&args.models) {
        return fit_with_neural(&args);
    }
    let began = Instant::now();
    let config = FitConfig {
        models: Model::parse_list(&args.models)?,
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
    let analysis = fit_and_cross_validate(&tasks, &observations.observed, &config, &|event| {
        bars.show(event)
    })?;
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
        plots,
        seconds: Seconds {
            stages: analysis.seconds,
            total: began.elapsed().as_secs_f64(),
        },
    };
    if args.json {
        super::print_json(&report)
    } else {
        super::print_stdout(&format_report(&report))
    }
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
        report.seconds.stages.choice_sets,
        report.seconds.stages.fits,
        report.seconds.stages.cv,
        report.seconds.total
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

/// Whether a comma-separated model list names a neural model (`neural-...`).
fn lists_neural(models: &str) -> bool {
    models
        .split(',')
        .any(|name| name.trim().starts_with("neural-"))
}

/// `proglab fit` with neural models in its list: the symbolic models are fitted and
/// cross-validated on the same choice sets as the neural ones (on the CPU, the reduced sets), and
/// every model appears in one held-out table, JSON object and set of figures. Everything `fit`
/// does not name keeps the defaults of `train-neural --cv`.
fn fit_with_neural(fit: &FitArgs) -> anyhow::Result<()> {
    let folds = fit.cv.ok_or_else(|| {
        anyhow::anyhow!("neural models are compared on held-out participants only: add --cv K")
    })?;
    anyhow::ensure!(
        !fit.no_canonicalise,
        "neural models use canonical programs: drop --no-canonicalise"
    );
    let config = NeuralTableConfig {
        models: fit.models.clone(),
        random_starts: fit.restarts,
        network: NeuralConfig {
            seed: fit.seed,
            ..NeuralConfig::default()
        },
        plots: fit.plots.clone(),
        ..NeuralTableConfig::default()
    };
    super::train_neural::table_main(
        &fit.programs,
        &fit.experiment,
        "cpu",
        folds,
        &config,
        fit.json,
    )
}
