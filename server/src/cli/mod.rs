//! The `proglab` command line: one subcommand per file.

use clap::{Parser, Subcommand};

pub mod check_data;
pub mod enumerate;
pub mod fit;
pub mod run;
pub mod serve;

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
    /// Enumerate the candidate programs of a task (SPEC §4.1-4.3).
    Enumerate(enumerate::EnumerateArgs),
    /// Fit and compare program-choice models on a programs.csv-format file.
    Fit(fit::FitArgs),
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
        }
    }
}
