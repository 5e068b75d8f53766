//! Structured logs through `tracing`, to stderr. `RUST_LOG` filters them (default `info`);
//! `PROGLAB_LOG_FORMAT=json` writes one JSON object per line.
//!
//! What is never logged: IP addresses, recruiter IDs and other entry parameters, session tokens,
//! database URLs. Request spans carry the method and the route, not the query string.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let json = std::env::var("PROGLAB_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
