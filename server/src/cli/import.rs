//! `proglab import`: load a published programs.csv into an experiment.

use std::path::PathBuf;

use crate::researcher;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab import --experiment correa2025 --programs analysis/data/programs-dev.csv
      every participant of the file becomes a completed session, so the dashboard, the replay and
      the exports show the published data")]
pub struct ImportArgs {
    /// The experiment: a bundled slug or an experiment file (TOML).
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    /// A programs.csv-format file (docs/semantics.md §3.2).
    #[arg(long)]
    pub programs: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub database: super::DatabaseArgs,
}

pub fn main(args: ImportArgs) -> anyhow::Result<()> {
    let experiment = super::export::load_experiment(&args.experiment)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let research = args.database.connect().await?.research;
        let summary = researcher::import::import_programs(
            research.as_ref(),
            &experiment,
            &args.programs,
            &researcher::cli_actor(),
            crate::clock::now(),
        )
        .await?;
        if args.json {
            super::print_json(&summary)?;
        } else {
            eprintln!(
                "imported {} participants and {} trials into {}",
                summary.participants, summary.trials, experiment.slug
            );
        }
        Ok(())
    })
}
