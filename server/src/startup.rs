//! Start-up: loads the experiments, opens the store (running migrations), binds the listener and
//! builds the router. [`App::build`] returns an already-bound listener, so tests can listen on
//! port 0 and know the address before serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::experiment::{self, Experiment};
use crate::metrics::Metrics;
use crate::state::{AppState, Experiments};
use crate::store::group_commit::{EventWriter, GroupCommitConfig};
use crate::store::{self, Store};

/// Loads the experiment files, or the bundled experiments if there are none.
pub fn load_experiments(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<Experiment>> {
    if files.is_empty() {
        return Ok(experiment::bundled()?);
    }
    let mut experiments = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match experiment::load_file(file) {
            Ok(experiment) => experiments.push(experiment),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("invalid experiment definition:\n{}", errors.join("\n"));
    }
    Ok(experiments)
}

/// A server ready to run.
pub struct App {
    listener: TcpListener,
    router: Router,
    store: Arc<dyn Store>,
    address: SocketAddr,
    /// The `/metrics` listener and its router, when `--metrics-listen` asks for one.
    metrics: Option<(TcpListener, Router)>,
    metrics_linger: std::time::Duration,
    shutdown_delay: std::time::Duration,
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl App {
    /// Loads the configured experiments, then as [`App::build_with`].
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let experiments = load_experiments(&config.experiment_files)?;
        App::build_with(config, experiments).await
    }

    /// Opens the store, builds the router and binds the listener.
    pub async fn build_with(config: Config, experiments: Vec<Experiment>) -> anyhow::Result<App> {
        let experiments = Arc::new(Experiments::new(experiments)?);
        let store::Database { store, research } =
            store::connect(config.database_url.expose_secret()).await?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        for experiment in experiments.iter() {
            tracing::info!(
                experiment = %experiment.slug,
                version = %experiment.version,
                source = %experiment.source,
                "serving experiment"
            );
        }
        let events = if config.group_commit {
            EventWriter::spawn(
                store.clone(),
                GroupCommitConfig::for_backend(store.backend()),
            )
        } else {
            EventWriter::direct(store.clone())
        };
        let metrics = Arc::new(Metrics::default());
        let metrics_listener = match &config.metrics_listen {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {address}"))?;
                Some((
                    listener,
                    crate::metrics::router(metrics.clone(), store.clone()),
                ))
            }
            None => None,
        };
        let metrics_linger = config.metrics_linger;
        let shutdown_delay = config.shutdown_delay;
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = AppState {
            store: store.clone(),
            events,
            research,
            config: Arc::new(config),
            experiments,
            metrics,
            draining: draining.clone(),
        };
        let router = crate::http::router(state);
        Ok(App {
            listener,
            router,
            store,
            address,
            metrics: metrics_listener,
            metrics_linger,
            shutdown_delay,
            draining,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (their writes are
    /// committed before they answer) and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, backend = self.store.backend(), "listening");
        // The metrics listener outlives the public one by `metrics_linger`, so that a scrape
        // after the drain sees the final counts.
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                let stopped = async {
                    let _ = metrics_stopped.await;
                };
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        });
        // The peer address lets a trusted proxy's forwarded headers be believed (http/transport).
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Readiness fails first, so a load balancer moves new requests elsewhere while this
            // instance still answers; then the listener closes and in-flight requests finish.
            self.draining
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if !self.shutdown_delay.is_zero() {
                tracing::info!(delay = ?self.shutdown_delay, "draining: readiness fails before the listener closes");
                tokio::time::sleep(self.shutdown_delay).await;
            }
        })
        .await?;
        tracing::info!("shutting down: closing the database");
        if let Some(metrics) = metrics {
            tokio::time::sleep(self.metrics_linger).await;
            let _ = stop_metrics.send(());
            let _ = metrics.await;
        }
        self.store.close().await;
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
