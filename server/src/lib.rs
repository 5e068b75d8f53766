//! proglab's server crate: the `proglab` binary's command line, the experiment server and its storage.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod experiment;
pub mod http;
pub mod metrics;
pub mod researcher;
pub mod startup;
pub mod state;
pub mod store;
pub mod study;
pub mod telemetry;
