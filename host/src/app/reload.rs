//! Hot reload: applies a changed config file or plugin directory to the
//! running parts, or rejects it whole and keeps what runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::api::{ApiError, WatchRequest};
use crate::metrics::Metrics;
use crate::pipeline::{Delivery, Routes, WorkerChains};
use crate::plugin::{BreakerSettings, Chain, Runtime};
use crate::sink::Sinks;
use crate::source::{Sources, WatchSpec, WatchStatus};

use super::config::{Config, parse_config};
use super::files::Change;

/// `chains` counted in `metrics`, behind breakers, one copy per worker.
pub(super) fn instrumented(
    chains: BTreeMap<String, Chain>,
    metrics: &Metrics,
    breaker: BreakerSettings,
    workers: usize,
) -> Result<WorkerChains> {
    let chains = chains
        .into_iter()
        .map(|(w, c)| {
            let c = c.with_metrics(metrics.clone(), &w).with_breaker(breaker);
            (w, c)
        })
        .collect();
    Ok(crate::pipeline::replicate(chains, workers)?)
}

/// What a reload changes: the running config and the parts it configures.
pub(super) struct Live {
    pub(super) path: Option<PathBuf>,
    pub(super) text: String,
    pub(super) config: Config,
    pub(super) runtime: Runtime,
    pub(super) metrics: Metrics,
    pub(super) sources: Sources,
    pub(super) sinks: Sinks,
    pub(super) chains: std::sync::mpsc::Sender<WorkerChains>,
    /// Chain workers per watch (`pipeline.workers`, fixed at start).
    pub(super) workers: usize,
    pub(super) delivery: Delivery,
    /// The decisions ring (`decisions.maxBytes` applies at a reload).
    pub(super) decisions: crate::decisions::Decisions,
    /// Watches added over the admin API (kept across config reloads).
    pub(super) admin: BTreeSet<String>,
}

impl Live {
    pub(super) fn into_config(self) -> Config {
        self.config
    }

    pub(super) async fn reload(&mut self, change: Change) {
        match change {
            Change::Plugins => match self.config.chains(&self.runtime).and_then(|c| {
                instrumented(c, &self.metrics, self.config.plugins.breaker, self.workers)
            }) {
                Ok(chains) => {
                    let _ = self.chains.send(chains);
                    self.metrics.reload("plugins", true);
                    tracing::info!(dir = %self.config.plugins.dir.display(), "plugins reloaded");
                }
                Err(e) => {
                    self.metrics.reload("plugins", false);
                    tracing::error!(
                        dir = %self.config.plugins.dir.display(),
                        "plugin reload rejected; the loaded versions keep running: {e:#}"
                    );
                }
            },
            Change::Config => {
                let Some(path) = self.path.clone() else {
                    return;
                };
                let Ok(text) = std::fs::read_to_string(&path) else {
                    // Mid-swap (a ConfigMap's symlinks) or removed: the next
                    // event tells.
                    return;
                };
                if text == self.text {
                    return;
                }
                match parse_config(&text, &path) {
                    Ok(new) => match self.apply(new).await {
                        Ok(()) => {
                            self.text = text;
                            self.metrics.reload("config", true);
                            tracing::info!(file = %path.display(), "config reloaded");
                        }
                        Err(e) => {
                            self.metrics.reload("config", false);
                            tracing::error!(
                                "config reload rejected; the previous config keeps running: {e:#}"
                            );
                        }
                    },
                    Err(e) => {
                        self.metrics.reload("config", false);
                        tracing::error!(
                            "config reload rejected; the previous config keeps running: {e:#}"
                        );
                    }
                }
            }
        }
    }

    /// Answers a change asked over the admin API.
    pub(super) async fn admin(&mut self, request: WatchRequest) {
        match request {
            WatchRequest::Add { spec, reply } => {
                let _ = reply.send(self.add_watch(*spec).await);
            }
            WatchRequest::Remove { id, reply } => {
                let _ = reply.send(self.remove_watch(&id));
            }
        }
    }

    /// A watch added over the admin API gets what a configured one gets: its
    /// chain and its sinks are in place before its first event.
    async fn add_watch(&mut self, spec: WatchSpec) -> Result<WatchStatus, ApiError> {
        spec.validate()?;
        let id = spec.id();
        if let Some(missing) = spec
            .sinks
            .iter()
            .find(|s| !self.config.sinks.iter().any(|c| c.name() == *s))
        {
            return Err(ApiError::Rejected {
                reason: format!("no sink is named {missing:?}"),
            });
        }
        let mut watches = self.config.watch.clone();
        watches.push(spec.clone());
        let chains = self
            .config
            .chains_for(&watches, &self.runtime)
            .and_then(|c| instrumented(c, &self.metrics, self.config.plugins.breaker, self.workers))
            .map_err(|e| ApiError::Rejected {
                reason: format!("watch {id}: {e:#}"),
            })?;
        let mut routes = self.config.watch_sinks();
        routes.insert(id.clone(), spec.sinks.clone());
        self.delivery
            .set_routes(Routes::new(&self.config.sinks, routes));
        let _ = self.chains.send(chains);
        match self.sources.add(spec.clone()).await {
            Ok(status) => {
                tracing::info!(watch = %status.id, state = ?status.state, "watch added over the admin API");
                self.config.watch.push(spec);
                self.admin.insert(id);
                Ok(status)
            }
            Err(e) => {
                // Its chain and routes stay unused until the next change.
                Err(e.into())
            }
        }
    }

    fn remove_watch(&mut self, id: &str) -> Result<WatchSpec, ApiError> {
        let spec = self.sources.remove(id)?;
        self.config.watch.retain(|w| w.id() != id);
        self.admin.remove(id);
        self.delivery
            .set_routes(Routes::new(&self.config.sinks, self.config.watch_sinks()));
        tracing::info!(watch = id, "watch removed over the admin API");
        Ok(spec)
    }

    /// Applies a valid new config: plugins and sinks first (either can fail,
    /// and then nothing changed), then the watches. Watches added over the
    /// admin API stay, unless the new config has one with the same id.
    async fn apply(&mut self, mut new: Config) -> Result<()> {
        for w in &self.config.watch {
            let id = w.id();
            if self.admin.contains(&id) && !new.watch.iter().any(|n| n.id() == id) {
                new.watch.push(w.clone());
            }
        }
        let old = &self.config;
        let fixed = [
            ("cluster", old.cluster != new.cluster),
            ("kubeconfig", old.kubeconfig != new.kubeconfig),
            ("api", old.api != new.api),
            ("metrics", old.metrics != new.metrics),
            ("plugins.dir", old.plugins.dir != new.plugins.dir),
            (
                "plugins.cacheDir",
                old.plugins.cache_dir != new.plugins.cache_dir,
            ),
            ("source", old.source != new.source),
            ("stateDir", old.state_dir != new.state_dir),
            ("dedup", old.dedup != new.dedup),
            ("resyncInterval", old.resync_interval != new.resync_interval),
            ("ha", old.ha != new.ha),
            ("pipeline", old.pipeline != new.pipeline),
            // The log is set up once, before the config is read again.
            ("log", old.log != new.log),
        ];
        for (field, changed) in fixed {
            if changed {
                tracing::warn!(
                    field,
                    "this field changed in the config; it takes effect at the next restart"
                );
            }
        }
        let chains = new
            .chains(&self.runtime)
            .and_then(|c| instrumented(c, &self.metrics, new.plugins.breaker, self.workers))
            .context("plugins")?;
        self.sinks.reconfigure(&new.sinks).context("sinks")?;
        self.decisions
            .set_max_bytes(new.decisions.max_bytes.as_u64());
        self.delivery
            .set_routes(Routes::new(&new.sinks, new.watch_sinks()));
        let _ = self.chains.send(chains);
        for w in &old.watch {
            let id = w.id();
            let kept = new.watch.iter().any(|n| n.id() == id && n == w);
            if !kept {
                match self.sources.remove(&id) {
                    Ok(_) => tracing::info!(watch = id, "watch removed"),
                    Err(e) => tracing::warn!(watch = id, "removing watch: {e}"),
                }
            }
        }
        for w in &new.watch {
            if old.watch.iter().any(|o| o == w) {
                continue;
            }
            match self.sources.add(w.clone()).await {
                Ok(status) => {
                    tracing::info!(watch = %status.id, state = ?status.state, "watch added")
                }
                Err(e) => tracing::error!(watch = w.id(), "adding watch: {e}"),
            }
        }
        self.config = new;
        Ok(())
    }
}
