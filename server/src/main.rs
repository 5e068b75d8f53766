use clap::Parser;

fn main() -> anyhow::Result<()> {
    server::cli::Cli::parse().execute()
}
