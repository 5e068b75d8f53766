//! `proglab withdraw`: delete one participant's data.

use std::sync::Arc;

use crate::researcher;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab withdraw --experiment correa2025 --participant 5f1e0c...     by recruiter ID
  proglab withdraw --experiment correa2025 --participant p-1a2b3c4d5e6f7a8b   by pseudonym")]
pub struct WithdrawArgs {
    /// The experiment: a bundled slug or an experiment file (TOML).
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    /// The participant's recruiter ID or pseudonym.
    #[arg(long)]
    pub participant: String,
    #[command(flatten)]
    pub database: super::DatabaseArgs,
}

pub fn main(args: WithdrawArgs) -> anyhow::Result<()> {
    let experiment = Arc::new(super::export::load_experiment(&args.experiment)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let crate::store::Database { store, research } = args.database.connect().await?;
        let withdrawn = researcher::withdraw::withdraw(
            store,
            research,
            experiment,
            &args.participant,
            &researcher::cli_actor(),
            crate::clock::now(),
        )
        .await?;
        eprintln!(
            "deleted {} session(s) ({} rows) of {}",
            withdrawn.sessions,
            withdrawn.rows,
            withdrawn.pseudonyms.join(", ")
        );
        Ok(())
    })
}
