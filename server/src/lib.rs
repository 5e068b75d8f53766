//! proglab's server crate: the `proglab` binary's command line, the experiment server and its storage.

pub mod cli;
