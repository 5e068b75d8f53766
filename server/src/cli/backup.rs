//! `proglab backup` and `proglab restore`: a consistent copy of a SQLite database taken while
//! the server runs, and putting one back (docs/deploy.md, "Backups").

use std::path::PathBuf;

use secrecy::ExposeSecret;

use crate::store::backup::{self, Contents};

/// Arguments of `proglab backup`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab backup --database-url sqlite:///srv/proglab/proglab.db --out /backups/proglab-$(date +%F).db
      safe while the server runs: the copy holds everything committed when it began")]
pub struct BackupArgs {
    /// The file to write; it must not exist.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub database: super::DatabaseArgs,
}

/// Arguments of `proglab restore`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab restore --from /backups/proglab-2026-12-01.db --database-url sqlite:///srv/proglab/proglab.db --force
      with the server stopped: replaces the database (and its write-ahead log) with the backup")]
pub struct RestoreArgs {
    /// The backup file (written by `proglab backup`).
    #[arg(long)]
    pub from: PathBuf,
    /// Replace an existing database. Stop the server first.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub database: super::DatabaseArgs,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn describe(contents: Contents) -> String {
    format!(
        "{} sessions, {} trials, {} events",
        contents.sessions, contents.trials, contents.events
    )
}

pub fn backup_main(args: BackupArgs) -> anyhow::Result<()> {
    let url = args.database.database_url.expose_secret().to_owned();
    let contents = runtime()?.block_on(backup::backup(&url, &args.out))?;
    println!(
        "proglab: backup written to {} ({})",
        args.out.display(),
        describe(contents)
    );
    Ok(())
}

pub fn restore_main(args: RestoreArgs) -> anyhow::Result<()> {
    let url = args.database.database_url.expose_secret().to_owned();
    let contents = runtime()?.block_on(async {
        let contents = backup::restore(&args.from, &url, args.force).await?;
        // Opening it the way the server does brings its schema up to this version.
        let database = crate::store::connect(&url).await?;
        database.store.close().await;
        anyhow::Ok(contents)
    })?;
    println!(
        "proglab: restored {} ({})",
        args.from.display(),
        describe(contents)
    );
    Ok(())
}
