//! The `proglab` command line, built into the `tests` package so the end-to-end tests can run the
//! real server as a separate process (integration tests only see binaries of their own package).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    server::cli::Cli::parse().execute()
}
