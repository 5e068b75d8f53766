//! `proglab check-data` (not yet implemented).

/// Arguments of `proglab check-data`.
#[derive(Debug, clap::Args)]
pub struct CheckDataArgs {}

pub fn main(_args: CheckDataArgs) -> anyhow::Result<()> {
    anyhow::bail!("`proglab check-data` is not implemented yet")
}
