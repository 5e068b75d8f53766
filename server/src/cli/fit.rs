//! `proglab fit` (not yet implemented).

/// Arguments of `proglab fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {}

pub fn main(_args: FitArgs) -> anyhow::Result<()> {
    anyhow::bail!("`proglab fit` is not implemented yet")
}
