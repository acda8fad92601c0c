//! Hot reload: applies a changed config file or plugin directory to the
//! running parts, or rejects it whole and keeps what runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::metrics::Metrics;
use crate::plugin::{Chain, Runtime};
use crate::sink::Sinks;
use crate::source::Sources;

use super::config::{Config, parse_config};
use super::files::Change;

pub(super) fn instrumented(
    chains: BTreeMap<String, Chain>,
    metrics: &Metrics,
) -> BTreeMap<String, Chain> {
    chains
        .into_iter()
        .map(|(w, c)| {
            let c = c.with_metrics(metrics.clone(), &w);
            (w, c)
        })
        .collect()
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
    pub(super) chains: std::sync::mpsc::Sender<BTreeMap<String, Chain>>,
}

impl Live {
    pub(super) fn into_config(self) -> Config {
        self.config
    }

    pub(super) async fn reload(&mut self, change: Change) {
        match change {
            Change::Plugins => match self.config.chains(&self.runtime) {
                Ok(chains) => {
                    let _ = self.chains.send(instrumented(chains, &self.metrics));
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

    /// Applies a valid new config: plugins and sinks first (either can fail,
    /// and then nothing changed), then the watches.
    async fn apply(&mut self, new: Config) -> Result<()> {
        let old = &self.config;
        let fixed = [
            ("cluster", old.cluster != new.cluster),
            ("kubeconfig", old.kubeconfig != new.kubeconfig),
            (
                "api",
                old.api.as_ref().map(|a| a.listen) != new.api.as_ref().map(|a| a.listen),
            ),
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
        ];
        for (field, changed) in fixed {
            if changed {
                tracing::warn!(
                    field,
                    "this field changed in the config; it takes effect at the next restart"
                );
            }
        }
        let chains = new.chains(&self.runtime).context("plugins")?;
        self.sinks
            .reconfigure(&new.sinks, new.watch_sinks())
            .context("sinks")?;
        let _ = self.chains.send(instrumented(chains, &self.metrics));
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
