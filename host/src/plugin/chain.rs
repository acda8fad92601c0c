//! A watched type's ordered list of plugins and how their verdicts combine:
//! the first drop wins, routes accumulate, and changes made by one plugin are
//! seen by the next.

use super::error::PluginError;
use super::event::EventData;
use super::instance::PluginInstance;
use super::settings::{OnError, Verdict};

/// Where an event goes after the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// To these sinks; empty means the watched type's default sinks.
    Deliver {
        /// Sinks named by route verdicts, in first-named order.
        routes: Vec<String>,
    },
    /// Dropped by a plugin (or by its `onError: drop` policy).
    Dropped {
        /// The plugin that dropped it.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// Sent to a dead-letter sink because a plugin failed on it.
    DeadLetter {
        /// The dead-letter sink.
        sink: String,
        /// The plugin that failed.
        plugin: String,
        /// What went wrong.
        error: PluginError,
    },
}

/// One event after the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOutcome {
    /// The event with every change plugins made to it.
    pub event: EventData,
    /// Where it goes.
    pub fate: Fate,
}

/// An ordered list of plugin instances.
pub struct Chain {
    plugins: Vec<PluginInstance>,
    metrics: Option<(crate::metrics::Metrics, String)>,
    /// Whether a failed call is logged (`herald plugin test` reports each
    /// failure itself).
    log_failures: bool,
}

impl Chain {
    /// A chain of these instances, run in order.
    pub fn new(plugins: Vec<PluginInstance>) -> Self {
        Chain {
            plugins,
            metrics: None,
            log_failures: true,
        }
    }

    /// A chain whose caller reports failed calls itself: they are not
    /// logged.
    pub(crate) fn without_failure_log(mut self) -> Self {
        self.log_failures = false;
        self
    }

    /// Counts and times every plugin call in `metrics`, labelled with `watch`.
    pub(crate) fn with_metrics(mut self, metrics: crate::metrics::Metrics, watch: &str) -> Self {
        self.metrics = Some((metrics, watch.to_string()));
        self
    }

    /// The instances, in order.
    pub fn plugins(&self) -> &[PluginInstance] {
        &self.plugins
    }

    /// Runs the batch through every plugin. Never fails: a failing plugin's
    /// `onError` policy decides the fate of the events of that call.
    pub fn run(&mut self, events: Vec<EventData>) -> Vec<ChainOutcome> {
        let n = events.len();
        let mut slots: Vec<Option<EventData>> = events.into_iter().map(Some).collect();
        let mut fates: Vec<Option<Fate>> = vec![None; n];
        let mut routes: Vec<Vec<String>> = vec![Vec::new(); n];
        for plugin in &mut self.plugins {
            let active: Vec<usize> = (0..n).filter(|i| fates[*i].is_none()).collect();
            if active.is_empty() {
                break;
            }
            let batch: Vec<EventData> = active.iter().filter_map(|i| slots[*i].take()).collect();
            let started = std::time::Instant::now();
            let out = plugin.handle(batch);
            if let Some((m, watch)) = &self.metrics {
                m.plugin_call(
                    plugin.name(),
                    watch,
                    started.elapsed(),
                    out.verdicts.is_err(),
                );
            }
            for (i, data) in active.iter().zip(out.events) {
                slots[*i] = Some(data);
            }
            match out.verdicts {
                Ok(verdicts) => {
                    for (i, v) in active.iter().zip(verdicts) {
                        match v {
                            Verdict::Pass => {}
                            Verdict::Drop(reason) => {
                                fates[*i] = Some(Fate::Dropped {
                                    plugin: plugin.name().to_string(),
                                    reason,
                                })
                            }
                            Verdict::Route(sinks) => {
                                for s in sinks {
                                    if !routes[*i].contains(&s) {
                                        routes[*i].push(s);
                                    }
                                }
                            }
                        }
                    }
                }
                Err(error) => {
                    if self.log_failures {
                        tracing::warn!(
                            plugin = plugin.name(),
                            events = active.len(),
                            policy = %plugin.settings().on_error,
                            "plugin failed, instance replaced: {error}"
                        );
                    }
                    for i in &active {
                        match &plugin.settings().on_error {
                            OnError::Pass => {}
                            OnError::Drop => {
                                fates[*i] = Some(Fate::Dropped {
                                    plugin: plugin.name().to_string(),
                                    reason: format!("plugin failed: {error}"),
                                })
                            }
                            OnError::Route(sink) => {
                                fates[*i] = Some(Fate::DeadLetter {
                                    sink: sink.clone(),
                                    plugin: plugin.name().to_string(),
                                    error: error.clone(),
                                })
                            }
                        }
                    }
                }
            }
        }
        slots
            .into_iter()
            .zip(fates)
            .zip(routes)
            .filter_map(|((slot, fate), routes)| {
                Some(ChainOutcome {
                    event: slot?,
                    fate: fate.unwrap_or(Fate::Deliver { routes }),
                })
            })
            .collect()
    }
}
