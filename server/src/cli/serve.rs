//! `proglab serve`: host experiments over HTTP.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, Config};
use crate::startup::{App, shutdown_signal};

/// Arguments of `proglab serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab serve
      the bundled study correa2025 on http://127.0.0.1:8080, data in ./proglab.db
  proglab serve --experiment my-study.toml --listen 0.0.0.0:8080
  proglab serve --database-url postgres://user@localhost/proglab --experiment a.toml --experiment b.toml")]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: super::DatabaseArgs,
    /// Address to listen on (HOST:PORT).
    #[arg(long, env = "PROGLAB_LISTEN", default_value = config::DEFAULT_LISTEN)]
    pub listen: String,
    /// Experiment definition (TOML); repeat to serve several (in the environment: separated by
    /// commas). Default: the bundled experiments.
    #[arg(
        long = "experiment",
        value_name = "FILE",
        env = "PROGLAB_EXPERIMENTS",
        value_delimiter = ','
    )]
    pub experiments: Vec<PathBuf>,
    /// Folder served at /static instead of the browser code built into the binary (for
    /// working on the browser code without rebuilding).
    #[arg(long, env = "PROGLAB_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Largest request body in bytes; larger requests get 413.
    #[arg(long, env = "PROGLAB_BODY_LIMIT", default_value_t = config::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Seconds before a request is answered with 408.
    #[arg(long, env = "PROGLAB_REQUEST_TIMEOUT", default_value_t = config::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout: u64,
    /// Mark the session cookies Secure on every request (behind HTTPS without a trusted proxy;
    /// with --trusted-proxy they are Secure whenever the proxy says the request came over HTTPS).
    #[arg(long, env = "PROGLAB_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Address or network (CIDR) of a reverse proxy whose X-Forwarded-Proto is believed, e.g.
    /// 127.0.0.1 or 10.0.0.0/8; repeat or separate with commas.
    #[arg(long = "trusted-proxy", env = "PROGLAB_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Send Strict-Transport-Security (one year) on requests that came over HTTPS.
    #[arg(long, env = "PROGLAB_HSTS")]
    pub hsts: bool,
    /// Serve Prometheus metrics at /metrics on this separate address (HOST:PORT), never on the
    /// public one; off unless given.
    #[arg(long, env = "PROGLAB_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Seconds the metrics listener stays up after the server has drained on shutdown, so a last
    /// scrape sees the final counts.
    #[arg(long, env = "PROGLAB_METRICS_LINGER", default_value_t = 0)]
    pub metrics_linger: u64,
    /// Seconds to keep serving after SIGTERM with /api/v1/health answering 503, before the
    /// listener closes: behind a load balancer, set it above the health-check interval so that
    /// a rolling restart moves requests to the other instances first (docs/deploy.md).
    #[arg(long, env = "PROGLAB_SHUTDOWN_DELAY", default_value_t = 0)]
    pub shutdown_delay: u64,
    /// Days a participant's session token stays valid on the server, counted from entry; older
    /// sessions are refused with 401.
    #[arg(long, env = "PROGLAB_SESSION_LIFETIME_DAYS", default_value_t = config::DEFAULT_SESSION_LIFETIME_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_lifetime_days: u32,
    /// Store each request's client events in a transaction of its own instead of committing
    /// concurrent requests together (for measuring the group commit; docs/operations.md).
    #[arg(long, env = "PROGLAB_NO_GROUP_COMMIT")]
    pub no_group_commit: bool,
    /// Folder the researcher's level editor saves level files into (created on first save).
    #[arg(long, env = "PROGLAB_LEVELS_DIR", default_value = config::DEFAULT_LEVELS_DIR)]
    pub levels_dir: PathBuf,
}

impl ServeArgs {
    pub fn into_config(self) -> Config {
        Config {
            database_url: self.database.database_url,
            listen: self.listen,
            experiment_files: self.experiments,
            static_dir: self.static_dir,
            body_limit: self.body_limit,
            request_timeout: Duration::from_secs(self.request_timeout),
            secure_cookies: self.secure_cookies,
            session_lifetime: Duration::from_secs(
                u64::from(self.session_lifetime_days) * 24 * 3600,
            ),
            group_commit: !self.no_group_commit,
            trusted_proxies: self.trusted_proxies,
            hsts: self.hsts,
            metrics_listen: self.metrics_listen,
            metrics_linger: Duration::from_secs(self.metrics_linger),
            shutdown_delay: Duration::from_secs(self.shutdown_delay),
            levels_dir: self.levels_dir,
        }
    }
}

/// An address (a network of one) or a CIDR network.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR network"))
}

pub fn main(args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::init();
    let config = args.into_config();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = App::build(config).await?;
        // Printed for people and scripts: the address the server really listens on (port 0 picks
        // a free port).
        println!("proglab: listening on http://{}", app.address());
        if let Some(metrics) = app.metrics_address() {
            println!("proglab: metrics on http://{metrics}/metrics");
        }
        app.run_until(shutdown_signal()).await
    })
}
