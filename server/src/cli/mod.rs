//! The `proglab` command line: one subcommand per file.

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

pub mod backup;
pub mod check_data;
pub mod enumerate;
pub mod experiment;
pub mod export;
pub mod fit;
pub mod import;
pub mod library;
mod neural_rows;
mod progress;
pub mod researcher;
pub mod run;
pub mod serve;
pub mod train_neural;
pub mod withdraw;

/// proglab: run online program-induction experiments and analyse them.
#[derive(Debug, Parser)]
#[command(name = "proglab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Host experiments over HTTP.
    Serve(serve::ServeArgs),
    /// Execute one program on one task and print the outcome.
    Run(run::RunArgs),
    /// Parse, execute and canonicalise every row of a programs.csv-format file.
    CheckData(check_data::CheckDataArgs),
    /// Enumerate the candidate programs of a task (docs/modelling.md §4.1-4.3).
    Enumerate(enumerate::EnumerateArgs),
    /// Fit and compare program-choice models on a programs.csv-format file.
    Fit(fit::FitArgs),
    /// Find the subroutine bodies that compress a programs.csv-format corpus best.
    Library(library::LibraryArgs),
    /// Train the neural program model, or cross-validate it beside the symbolic models (--cv).
    TrainNeural(train_neural::TrainNeuralArgs),
    /// Write a dataset of one experiment (programs.csv, trials, events, questionnaire, bonus, Psych-DS).
    Export(export::ExportArgs),
    /// Load a published programs.csv into an experiment as participants and trials.
    Import(import::ImportArgs),
    /// Delete one participant's data, by recruiter ID or pseudonym.
    Withdraw(withdraw::WithdrawArgs),
    /// Add, remove or list researcher accounts.
    Researcher(researcher::ResearcherArgs),
    /// Check an experiment file and its levels, or write a starting study.
    Experiment(experiment::ExperimentArgs),
    /// Write a consistent copy of a SQLite database, safe while the server runs.
    Backup(backup::BackupArgs),
    /// Replace a SQLite database with a backup (stop the server first).
    Restore(backup::RestoreArgs),
}

/// The database a subcommand opens; one definition shared by every subcommand, and secret: its
/// value (which may hold a password) is never printed, not even in `--help`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = crate::config::DEFAULT_DATABASE_URL,
        hide_env_values = true,
        global = true,
        value_parser = parse_secret
    )]
    pub database_url: SecretString,
}

fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

impl DatabaseArgs {
    /// Opens the database and brings its schema up to date.
    pub async fn connect(&self) -> anyhow::Result<crate::store::Database> {
        crate::store::connect(self.database_url.expose_secret()).await
    }
}

/// The task list (index = `mdp_idx`) of an experiment given as a bundled slug.
pub fn experiment_tasks(experiment: &str) -> anyhow::Result<Vec<dsl::tasks::NamedTask>> {
    dsl::tasks::bundled_sets()
        .into_iter()
        .find(|set| set.name == experiment)
        .map(|set| set.tasks.clone())
        .ok_or_else(|| anyhow::anyhow!("unknown experiment `{experiment}` (bundled: correa2025)"))
}

/// The experiment the analysis subcommands read by default.
pub const DEFAULT_EXPERIMENT: &str = "correa2025";

/// Reads the observations of a programs.csv-format file, canonical programs unless
/// `canonicalise` is false.
pub fn load_observations(
    path: &std::path::Path,
    tasks: &[dsl::tasks::NamedTask],
    canonicalise: bool,
) -> anyhow::Result<analysis::pipeline::Observations> {
    use anyhow::Context;
    let options = analysis::choice::ObserveOptions {
        canonicalise,
        ..analysis::choice::ObserveOptions::default()
    };
    analysis::pipeline::load_observations(path, tasks, &options)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `text` to stdout. A closed pipe (`proglab ... | head`) ends output quietly instead of
/// panicking as `println!` would.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Writes one JSON value to stdout, as `--json` promises.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn execute(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve::main(args),
            Command::Run(args) => run::main(args),
            Command::CheckData(args) => check_data::main(args),
            Command::Enumerate(args) => enumerate::main(args),
            Command::Fit(args) => fit::main(args),
            Command::Library(args) => library::main(args),
            Command::TrainNeural(args) => train_neural::main(args),
            Command::Export(args) => export::main(args),
            Command::Import(args) => import::main(args),
            Command::Withdraw(args) => withdraw::main(args),
            Command::Researcher(args) => researcher::main(args),
            Command::Experiment(args) => experiment::main(args),
            Command::Backup(args) => backup::backup_main(args),
            Command::Restore(args) => backup::restore_main(args),
        }
    }
}
