//! `proglab enumerate` (not yet implemented).

/// Arguments of `proglab enumerate`.
#[derive(Debug, clap::Args)]
pub struct EnumerateArgs {}

pub fn main(_args: EnumerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("`proglab enumerate` is not implemented yet")
}
