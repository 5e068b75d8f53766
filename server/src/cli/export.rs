//! `proglab export`: write a dataset of one experiment from the database.

use std::path::PathBuf;
use std::sync::Arc;

use crate::researcher::export::{ExportOptions, Exporter, Format, Sink};
use crate::researcher::{self, audit};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Formats: programs-csv (the published programs.csv columns plus order_position),
trials-csv, events-jsonl, questionnaire-csv, bonus-csv (needs --raw-ids), psych-ds (a folder).

Examples:
  proglab export --experiment correa2025 --format programs-csv --out programs.csv
  proglab export --experiment my-study.toml --format psych-ds --out dataset/
  proglab export --experiment correa2025 --format bonus-csv --raw-ids --out bonus.csv"
)]
pub struct ExportArgs {
    /// The experiment: a bundled slug or an experiment file (TOML).
    #[arg(long, default_value = "correa2025")]
    pub experiment: String,
    #[arg(long)]
    pub format: String,
    /// File to write (a folder for psych-ds); `-` writes to stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// Include recruiter IDs instead of only pseudonyms.
    #[arg(long)]
    pub raw_ids: bool,
    /// Include researchers' preview sessions (left out by default).
    #[arg(long)]
    pub include_preview: bool,
    /// Include participants a researcher excluded, with an `excluded` column (left out by
    /// default; bonus-csv pays them either way).
    #[arg(long)]
    pub include_excluded: bool,
    #[command(flatten)]
    pub database: super::DatabaseArgs,
}

/// The experiment named by a slug (bundled) or a file.
pub fn load_experiment(name: &str) -> anyhow::Result<crate::experiment::Experiment> {
    let path = std::path::Path::new(name);
    if name.ends_with(".toml") || path.is_file() {
        return Ok(crate::experiment::load_file(path)?);
    }
    crate::experiment::bundled()?
        .into_iter()
        .find(|e| e.slug.as_str() == name)
        .ok_or_else(|| anyhow::anyhow!("unknown experiment `{name}`: name a bundled slug (correa2025) or an experiment file"))
}

pub fn main(args: ExportArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)?;
    let experiment = Arc::new(load_experiment(&args.experiment)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let crate::store::Database { store, research } = args.database.connect().await?;
        let options = ExportOptions {
            raw_ids: args.raw_ids,
            include_preview: args.include_preview,
            include_excluded: args.include_excluded,
        };
        let exporter = Exporter::new(store, research.clone(), experiment.clone(), options).await?;
        let summary = if format == Format::PsychDs {
            exporter.write_psych_ds(&args.out).await?
        } else {
            let writer: Box<dyn std::io::Write + Send> = if args.out.as_os_str() == "-" {
                Box::new(std::io::stdout())
            } else {
                let file = std::fs::File::create(&args.out)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
                Box::new(std::io::BufWriter::new(file))
            };
            exporter.write(format, &mut Sink::Writer(writer)).await?
        };
        audit(
            research.as_ref(),
            &researcher::cli_actor(),
            "export",
            Some(experiment.slug.as_str()),
            format!(
                "{}{} to {}: {} rows",
                format.name(),
                if args.raw_ids { " with raw IDs" } else { "" },
                args.out.display(),
                summary.rows
            ),
            crate::clock::now(),
        )
        .await?;
        if summary.rows == 0 {
            eprintln!(
                "note: nothing to export yet ({}): the file holds only its header",
                exporter.empty_reason(format)
            );
        }
        eprintln!(
            "wrote {} rows of {} participants ({})",
            summary.rows,
            summary.participants,
            format.name()
        );
        Ok(())
    })
}
