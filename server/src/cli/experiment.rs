//! `proglab experiment check|new`: studies of the lab's own design. `check` validates an
//! experiment file and reports on every level it uses (`experiment::check`); `new` writes a
//! commented starting study from the templates in `experiment/new/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::domain::ExperimentSlug;
use crate::experiment::check::{
    self, CheckLimits, EnumerationStatus, FileReport, LevelEntry, format_duration,
};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab experiment new my-study                 my-study.toml, my-study-consent.md, levels/my-study.json
  proglab experiment check my-study.toml
  proglab experiment check my-study.toml --time-limit 5s --candidate-limit 100000 --json")]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ExperimentCommand {
    /// Validate an experiment file and report on every level it uses (exit status 1 on any
    /// problem or unsolvable level).
    Check(CheckArgs),
    /// Write a commented starting study that `check` accepts and `serve` runs.
    New(NewArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// Stop enumerating one level's candidate programs after this long (`30s`, `2m`, `500ms`).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub time_limit: Duration,
    /// Stop enumerating one level's candidate programs after this many.
    #[arg(long, default_value_t = check::DEFAULT_CANDIDATE_LIMIT)]
    pub candidate_limit: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The study's slug (its address /e/NAME): lowercase letters, digits and `-`.
    pub name: String,
    /// Folder to write into (created if missing); existing files are never overwritten.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub fn main(args: ExperimentArgs) -> anyhow::Result<()> {
    match args.command {
        ExperimentCommand::Check(args) => check_main(args),
        ExperimentCommand::New(args) => new_main(args),
    }
}

/// `30s`, `2m`, `500ms`, `1.5s`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 2m or 500ms"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit `{other}`: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

fn check_main(args: CheckArgs) -> anyhow::Result<()> {
    let limits = CheckLimits {
        time: args.time_limit,
        candidates: args.candidate_limit,
    };
    let report = check::check_file(&args.file, &limits, &mut |level| {
        eprintln!("checking {level}");
    });
    if args.json {
        super::print_json(&report)?;
    } else {
        super::print_stdout(&table(&report))?;
    }
    if report.ok {
        return Ok(());
    }
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    anyhow::bail!(
        "{} is not ready ({} problem{}):\n{}",
        report.file,
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("\n")
    )
}

/// The report as a readable table.
fn table(report: &FileReport) -> String {
    let Some(slug) = &report.slug else {
        return format!(
            "{}: not read as an experiment file, so no level was checked (problems on stderr)\n",
            report.file
        );
    };
    let light = match report.light {
        Some(dsl::LightMode::Toggle) => "toggle".to_owned(),
        Some(dsl::LightMode::Idempotent) => "idempotent".to_owned(),
        None => "not valid (levels searched under idempotent)".to_owned(),
    };
    let mut out = format!(
        "{} (experiment {slug}, light {light})\nenumeration limits per level: {} and {} candidates\n\n",
        report.file,
        format_duration(Duration::from_secs_f64(report.time_limit_seconds)),
        report.candidate_limit
    );
    let header = [
        "level",
        "label",
        "source",
        "size",
        "lights",
        "solvable",
        "steps",
        "states",
        "candidates",
        "time",
    ];
    let rows: Vec<[String; 10]> = report.levels.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    let notes: Vec<String> = report
        .levels
        .iter()
        .filter_map(|level| {
            let message = level.report.enumeration.message.as_ref()?;
            (level.report.solvable != Some(false))
                .then(|| format!("  {} ({}): {message}", level.key, level.source))
        })
        .collect();
    if !notes.is_empty() {
        out.push_str("\nenumeration:\n");
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&if report.ok {
        format!("ok: {} levels checked, no problems\n", report.levels.len())
    } else {
        format!(
            "{} problem{} (listed on stderr)\n",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        )
    });
    out
}

fn row(level: &LevelEntry) -> [String; 10] {
    let r = &level.report;
    let enumeration = &r.enumeration;
    let candidates = match enumeration.status {
        EnumerationStatus::Complete => enumeration.candidates.to_string(),
        EnumerationStatus::TimeLimit => format!("{}+ (time limit)", enumeration.candidates),
        EnumerationStatus::CandidateLimit => {
            format!("{}+ (candidate limit)", enumeration.candidates)
        }
        EnumerationStatus::Failed => "failed (see below)".into(),
        EnumerationStatus::Skipped if r.solvable == Some(false) => "-".into(),
        EnumerationStatus::Skipped => "not run (see below)".into(),
    };
    [
        level.key.clone(),
        level.label.clone(),
        level.source.clone(),
        format!("{}x{}", r.width, r.height),
        r.lights.to_string(),
        match r.solvable {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => "unknown".into(),
        },
        r.optimal_steps.map_or("-".into(), |s| s.to_string()),
        format!(
            "{}{}",
            r.reachable_states,
            if r.states_complete { "" } else { "+" }
        ),
        candidates,
        format!("{:.2}s", enumeration.seconds),
    ]
}

/// The templates of `proglab experiment new`; in the study, `__SLUG__`, `__LEVELS__` and
/// `__CONSENT__` are replaced by the slug and the two other files' paths.
const STUDY_TEMPLATE: &str = include_str!("../experiment/new/study.toml");
const LEVELS_TEMPLATE: &str = include_str!("../experiment/new/levels.json");
const CONSENT_TEMPLATE: &str = include_str!("../experiment/new/consent.md");

/// Writes a starting study named `name` into `dir`: `NAME.toml`, `NAME-consent.md` and
/// `levels/NAME.json`. Refuses (before writing anything) if any of them exists.
pub fn write_new_study(name: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let slug = ExperimentSlug::parse(name).map_err(|e| anyhow::anyhow!("the name {e}"))?;
    let levels = format!("levels/{slug}.json");
    let consent = format!("{slug}-consent.md");
    let study = STUDY_TEMPLATE
        .replace("__SLUG__", slug.as_str())
        .replace("__LEVELS__", &levels)
        .replace("__CONSENT__", &consent);
    let files = [
        (dir.join(format!("{slug}.toml")), study),
        (dir.join(&consent), CONSENT_TEMPLATE.to_owned()),
        (dir.join(&levels), LEVELS_TEMPLATE.to_owned()),
    ];
    let existing: Vec<String> = files
        .iter()
        .filter(|(path, _)| path.exists())
        .map(|(path, _)| path.display().to_string())
        .collect();
    anyhow::ensure!(
        existing.is_empty(),
        "not overwriting {}: choose another name or --dir",
        existing.join(", ")
    );
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

fn new_main(args: NewArgs) -> anyhow::Result<()> {
    let written = write_new_study(&args.name, &args.dir)?;
    let mut out = String::from("wrote\n");
    for path in &written {
        out.push_str(&format!("  {}\n", path.display()));
    }
    let study = written[0].display();
    out.push_str(&format!(
        "next:\n  proglab experiment check {study}\n  proglab serve --experiment {study}\n\
         then open /e/{} (or preview it from /researcher); draw levels at /researcher/levels/editor\n",
        args.name
    ));
    super::print_stdout(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn the_new_study_passes_its_own_check() {
        let dir = std::env::temp_dir().join(format!("proglab-new-{}", uuid::Uuid::new_v4()));
        let written = write_new_study("my-study", &dir).unwrap();
        let limits = CheckLimits {
            time: Duration::from_secs(20),
            candidates: 20_000,
        };
        let report = check::check_file(&written[0], &limits, &mut |_| {});
        let _ = std::fs::remove_dir_all(&dir);
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!(report.levels.len(), 4);
        assert!(
            report
                .levels
                .iter()
                .all(|l| l.report.solvable == Some(true))
        );
    }

    #[test]
    fn new_refuses_bad_names_and_existing_files() {
        let dir = std::env::temp_dir().join(format!("proglab-new-{}", uuid::Uuid::new_v4()));
        assert!(write_new_study("My Study", &dir).is_err());
        write_new_study("again", &dir).unwrap();
        let error = write_new_study("again", &dir).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(error.contains("not overwriting"), "{error}");
    }
}
