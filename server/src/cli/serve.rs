//! `proglab serve` (not yet implemented).

/// Arguments of `proglab serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn main(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`proglab serve` is not implemented yet")
}
