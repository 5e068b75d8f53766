//! `proglab run` (not yet implemented).

/// Arguments of `proglab run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`proglab run` is not implemented yet")
}
