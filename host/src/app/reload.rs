//! Hot reload: applies a changed config file or plugin directory to the
//! running parts, or rejects it whole and keeps what runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::api::{ApiError, WatchRequest};
use crate::metrics::Metrics;
use crate::pipeline::{ChainUpdate, Delivery, Routes, WorkerChains};
use crate::plugin::{BreakerSettings, Chain, Runtime};
use crate::sink::Sinks;
use crate::source::{Sources, WatchSpec, WatchStatus};
use crate::sync::off_the_runtime;

use super::config::{Config, parse_config};
use super::files::Change;
use super::plugin_files::PluginFiles;

/// How long a plugin file that failed to load may still be being written
/// (copied in more than one write) before the failure is reported.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

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
    pub(super) chains: std::sync::mpsc::Sender<ChainUpdate>,
    /// The plugin files as last loaded.
    pub(super) plugin_files: PluginFiles,
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
            Change::Plugins => self.reload_plugins().await,
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

    /// The plugin files the config can use, now.
    pub(super) fn scan_plugins(config: &Config) -> PluginFiles {
        let named = config
            .watch
            .iter()
            .flat_map(|w| &w.plugins)
            .map(|p| config.plugin_file(p));
        PluginFiles::scan(&config.plugins.dir, named)
    }

    /// A change in the plugin directory: only the chains of watches whose
    /// plugin files changed restart; a changed file no watch uses is
    /// checked and reported; a file that fails to load while it is still
    /// changing (a copy in several writes) is waited for.
    async fn reload_plugins(&mut self) {
        let now = Self::scan_plugins(&self.config);
        let changed = self.plugin_files.changed(&now);
        if changed.is_empty() {
            return;
        }
        let mut used = BTreeSet::new();
        let (mut affected, mut keep) = (Vec::new(), BTreeSet::new());
        for w in &self.config.watch {
            let files: Vec<PathBuf> = w
                .plugins
                .iter()
                .map(|p| self.config.plugin_file(p))
                .collect();
            if files.iter().any(|f| changed.contains(f)) {
                affected.push(w.clone());
            } else {
                keep.insert(w.id());
            }
            used.extend(files);
        }
        for file in changed.iter().filter(|f| !used.contains(*f) && now.has(f)) {
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let allow = self
                .config
                .plugins
                .policy
                .get(&name)
                .map(|p| p.allow.clone())
                .unwrap_or_default();
            match off_the_runtime(|| self.runtime.load(&name, file, &allow)) {
                Ok(_) => {
                    tracing::info!(file = %file.display(), "plugin file changed; no watch uses it")
                }
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    "plugin file changed; no watch uses it, and it would not load: {e:#}"
                ),
            }
        }
        if affected.is_empty() {
            self.plugin_files = now;
            self.runtime.prune_cache(&self.plugin_files.hashes());
            return;
        }
        let ids: Vec<String> = affected.iter().map(WatchSpec::id).collect();
        let built = off_the_runtime(|| {
            self.config
                .chains_for(&affected, &self.runtime)
                .and_then(|c| {
                    instrumented(c, &self.metrics, self.config.plugins.breaker, self.workers)
                })
        });
        match built {
            Ok(chains) => {
                let _ = self.chains.send(ChainUpdate { chains, keep });
                self.plugin_files = now;
                self.runtime.prune_cache(&self.plugin_files.hashes());
                self.metrics.reload("plugins", true);
                tracing::info!(
                    dir = %self.config.plugins.dir.display(),
                    watches = ?ids,
                    "plugins reloaded (only these watches' chains restarted)"
                );
            }
            Err(e) => {
                tokio::time::sleep(SETTLE).await;
                if Self::scan_plugins(&self.config) != now {
                    // Still being written: the next change event reloads.
                    tracing::debug!("a plugin file is still changing; waiting for it");
                    return;
                }
                self.metrics.reload("plugins", false);
                tracing::error!(
                    dir = %self.config.plugins.dir.display(),
                    "plugin reload rejected; the loaded versions keep running: {e:#}"
                );
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
        let chains = off_the_runtime(|| {
            self.config
                .chains_for(&watches, &self.runtime)
                .and_then(|c| {
                    instrumented(c, &self.metrics, self.config.plugins.breaker, self.workers)
                })
        })
        .map_err(|e| ApiError::Rejected {
            reason: format!("watch {id}: {e:#}"),
        })?;
        let mut routes = self.config.watch_sinks();
        routes.insert(id.clone(), spec.sinks.clone());
        self.delivery.set_routes(
            Routes::new(&self.config.sinks, routes)
                .with_dead_letter(self.config.dead_letter.clone()),
        );
        let _ = self.chains.send(chains.into());
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
        self.delivery.set_routes(self.config.routes());
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
        let chains = off_the_runtime(|| {
            new.chains(&self.runtime)
                .and_then(|c| instrumented(c, &self.metrics, new.plugins.breaker, self.workers))
        })
        .context("plugins")?;
        self.sinks.reconfigure(&new.sinks).context("sinks")?;
        self.decisions
            .set_max_bytes(new.decisions.max_bytes.as_u64());
        self.delivery.set_routes(new.routes());
        let _ = self.chains.send(chains.into());
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
        self.plugin_files = Self::scan_plugins(&self.config);
        self.runtime.prune_cache(&self.plugin_files.hashes());
        Ok(())
    }
}
