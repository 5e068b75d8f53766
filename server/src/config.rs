//! The server's configuration: one documented struct, filled from `proglab serve`'s flags and
//! environment variables (see .env.sample).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Default database: a SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./proglab.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Events are sent in batches; 256 KiB holds far more than a browser sends at once.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a participant's session token is accepted, counted from entry; the session cookie's
/// `Max-Age` is the same, so a token lasts as long in the browser as on the server.
pub const DEFAULT_SESSION_LIFETIME_DAYS: u32 = 30;
/// Where the researcher's level editor saves level files, relative to the working directory.
pub const DEFAULT_LEVELS_DIR: &str = "levels";

#[derive(Clone)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://...`; may hold a password, so it is secret.
    pub database_url: SecretString,
    /// Address to listen on, `HOST:PORT` (port 0 picks a free port).
    pub listen: String,
    /// Experiment files to serve; empty means the bundled experiments.
    pub experiment_files: Vec<PathBuf>,
    /// Folder served at `/static`; `None` serves the copy built into the binary.
    pub static_dir: Option<PathBuf>,
    /// Largest request body accepted; larger requests get 413.
    pub body_limit: usize,
    /// Requests taking longer are answered with 408.
    pub request_timeout: Duration,
    /// Mark the session cookie `Secure` (set this when the server is behind HTTPS).
    pub secure_cookies: bool,
    /// A participant session's token is refused (401, like an unknown one) once the session is
    /// older than this; also the session cookie's `Max-Age`.
    pub session_lifetime: Duration,
    /// Commit the client events of concurrent requests together (`store::group_commit`); off,
    /// each request commits its own.
    pub group_commit: bool,
    /// Reverse proxies whose `X-Forwarded-Proto` is believed (docs/deploy.md); a request from
    /// any other address is taken as it arrived.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Send `Strict-Transport-Security` on requests that came over HTTPS.
    pub hsts: bool,
    /// Address of the Prometheus `/metrics` listener; `None` (the default) serves no metrics.
    pub metrics_listen: Option<String>,
    /// How long the metrics listener stays up after the server has drained on shutdown, so that
    /// a last scrape sees the final counts.
    pub metrics_linger: Duration,
    /// On SIGTERM, how long to keep serving with readiness failing before the listener closes,
    /// so that a load balancer's health checks move new requests elsewhere first.
    pub shutdown_delay: Duration,
    /// The folder the researcher's level editor saves level files into (created on first save).
    pub levels_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            database_url: SecretString::from(DEFAULT_DATABASE_URL),
            listen: DEFAULT_LISTEN.into(),
            experiment_files: Vec::new(),
            static_dir: None,
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            secure_cookies: false,
            session_lifetime: Duration::from_secs(
                u64::from(DEFAULT_SESSION_LIFETIME_DAYS) * 24 * 3600,
            ),
            group_commit: true,
            trusted_proxies: Vec::new(),
            hsts: false,
            metrics_listen: None,
            metrics_linger: Duration::ZERO,
            shutdown_delay: Duration::ZERO,
            levels_dir: PathBuf::from(DEFAULT_LEVELS_DIR),
        }
    }
}

impl Config {
    /// The database URL's scheme only, safe to log.
    pub fn database_kind(&self) -> &str {
        let url = self.database_url.expose_secret();
        url.split(':').next().unwrap_or("unknown")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &format_args!("{}://[redacted]", self.database_kind()),
            )
            .field("listen", &self.listen)
            .field("experiment_files", &self.experiment_files)
            .field("static_dir", &self.static_dir)
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_lifetime", &self.session_lifetime)
            .field("group_commit", &self.group_commit)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("hsts", &self.hsts)
            .field("metrics_listen", &self.metrics_listen)
            .field("metrics_linger", &self.metrics_linger)
            .field("shutdown_delay", &self.shutdown_delay)
            .field("levels_dir", &self.levels_dir)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_url() {
        let config = Config {
            database_url: SecretString::from("postgres://user:hunter2@db/x"),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://[redacted]"), "{shown}");
    }
}
