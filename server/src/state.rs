//! What every handler can reach: the shared, read-only state of a running server. Start-up
//! (`startup`) builds it; the HTTP layer (`http`) reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::experiment::Experiment;
use crate::store::group_commit::EventWriter;
use crate::store::{self, Store};

/// What every handler can reach. Nothing in here changes while the server runs: all state that
/// matters lives in the database.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The same database, seen through the researcher side's operations.
    pub research: Arc<dyn store::research::ResearchStore>,
    /// The group commit that client events are stored through.
    pub events: EventWriter,
    pub config: Arc<Config>,
    pub experiments: Arc<Experiments>,
    /// Counters and histograms for `/metrics` (recorded whether or not they are served).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set when shutdown has begun: readiness (`/api/v1/health`) then answers 503 so that a load
    /// balancer stops sending requests, while the server still answers those that come.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

/// The experiments being served, by slug.
#[derive(Debug, Default)]
pub struct Experiments(BTreeMap<String, Arc<Experiment>>);

impl Experiments {
    /// Fails if two experiments share a slug.
    pub fn new(list: Vec<Experiment>) -> anyhow::Result<Experiments> {
        let mut map = BTreeMap::new();
        for experiment in list {
            let slug = experiment.slug.to_string();
            if let Some(previous) = map.insert(slug.clone(), Arc::new(experiment)) {
                anyhow::bail!(
                    "two experiments have the slug `{slug}` (one is {})",
                    previous.source
                );
            }
        }
        Ok(Experiments(map))
    }

    pub fn get(&self, slug: &str) -> Option<&Arc<Experiment>> {
        self.0.get(slug)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Experiment>> {
        self.0.values()
    }
}
