//! A watched type's ordered list of plugins and how their verdicts combine:
//! the first drop wins, routes accumulate, and changes made by one plugin are
//! seen by the next. Each plugin may sit behind a circuit breaker
//! ([`Chain::with_breaker`]), shared by the chain's copies on every worker
//! ([`Chain::replicate`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::breaker::{Admit, Breaker, BreakerSettings, Transition};
use super::error::{LoadError, PluginError};
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

/// What one plugin said about one event, for `herald explain` and the
/// decisions ring: its verdict or error and how long its call took.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PluginStep {
    /// The plugin.
    pub plugin: String,
    /// `pass`, `drop`, `route` or `error`.
    pub verdict: &'static str,
    /// A drop's reason, a route's sinks (comma-separated), or the error and
    /// the `onError` policy that decided the event's fate.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Time spent in the call (the whole batch's call).
    pub micros: u64,
    /// JSON pointers the plugin removed from the object.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// JSON pointers the plugin set in the object.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
}

/// An ordered list of plugin instances.
pub struct Chain {
    plugins: Vec<PluginInstance>,
    /// One per plugin, or none (no breaker).
    breakers: Vec<Arc<Supervisor>>,
    metrics: Option<(crate::metrics::Metrics, String)>,
    /// Whether a failed call is logged (`herald plugin test` reports each
    /// failure itself).
    log_failures: bool,
}

/// One plugin's breaker and where its transitions are reported.
struct Supervisor {
    breaker: Breaker,
    plugin: String,
    watch: String,
    metrics: Option<crate::metrics::Metrics>,
}

impl Supervisor {
    /// Logs a transition and keeps `herald_plugin_suspended` current.
    fn report(&self, t: Transition, policy: &OnError) {
        let (plugin, watch) = (self.plugin.as_str(), self.watch.as_str());
        match t {
            Transition::Opened { failures, backoff } => {
                tracing::warn!(
                    plugin,
                    watch,
                    failures,
                    %policy,
                    backoff = %humantime::format_duration(backoff),
                    "plugin suspended: {failures} failed calls in a row; its onError policy ({policy}) applies to its events without calling it for {}",
                    humantime::format_duration(backoff)
                );
                if let Some(m) = &self.metrics {
                    m.plugin_suspended(plugin, watch, true);
                }
            }
            Transition::Reopened { backoff } => tracing::warn!(
                plugin,
                watch,
                backoff = %humantime::format_duration(backoff),
                "plugin still failing: its trial call failed; suspended again for {}",
                humantime::format_duration(backoff)
            ),
            Transition::Closed { after } => {
                let after = Duration::from_millis(after.as_millis() as u64);
                tracing::info!(
                    plugin,
                    watch,
                    suspended = %humantime::format_duration(after),
                    "plugin resumed: its trial call succeeded after {} suspended",
                    humantime::format_duration(after)
                );
                if let Some(m) = &self.metrics {
                    m.plugin_suspended(plugin, watch, false);
                }
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // A chain replaced (a reload) while its plugin is suspended: the
        // new chain's breaker starts closed.
        if self.breaker.is_open()
            && let Some(m) = &self.metrics
        {
            m.plugin_suspended(&self.plugin, &self.watch, false);
        }
    }
}

impl Chain {
    /// A chain of these instances, run in order.
    pub fn new(plugins: Vec<PluginInstance>) -> Self {
        Chain {
            plugins,
            breakers: Vec::new(),
            metrics: None,
            log_failures: true,
        }
    }

    /// Puts every plugin behind a circuit breaker with `settings`; reported
    /// with the watch and metrics of [`Chain::with_metrics`] (call that
    /// first).
    pub fn with_breaker(mut self, settings: BreakerSettings) -> Self {
        if settings.failures == 0 {
            self.breakers.clear();
            return self;
        }
        let (metrics, watch) = match &self.metrics {
            Some((m, w)) => (Some(m.clone()), w.clone()),
            None => (None, String::new()),
        };
        self.breakers = self
            .plugins
            .iter()
            .map(|p| {
                Arc::new(Supervisor {
                    breaker: Breaker::new(settings),
                    plugin: p.name().to_string(),
                    watch: watch.clone(),
                    metrics: metrics.clone(),
                })
            })
            .collect();
        self
    }

    /// Another copy of this chain for another worker: fresh instances of
    /// the same plugins with the same settings (each started and `init`ed),
    /// the same metrics, and the same breakers.
    ///
    /// # Errors
    /// An instance that cannot start (see [`PluginInstance::new`]).
    pub fn replicate(&self) -> Result<Chain, LoadError> {
        let plugins = self
            .plugins
            .iter()
            .map(|p| PluginInstance::new(p.plugin().clone(), p.settings().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chain {
            plugins,
            breakers: self.breakers.clone(),
            metrics: self.metrics.clone(),
            log_failures: self.log_failures,
        })
    }

    /// Whether the chain has no plugins (its events need no worker).
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
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
        self.run_traced(events, None)
    }

    /// [`Chain::run`], and with `trace` each plugin's step for each event
    /// (`trace[i]` for `events[i]`; a plugin after a drop is not called).
    pub fn run_traced(
        &mut self,
        events: Vec<EventData>,
        mut trace: Option<&mut Vec<Vec<PluginStep>>>,
    ) -> Vec<ChainOutcome> {
        let n = events.len();
        if let Some(t) = trace.as_deref_mut() {
            t.clear();
            t.resize_with(n, Vec::new);
        }
        let mut slots: Vec<Option<EventData>> = events.into_iter().map(Some).collect();
        let mut fates: Vec<Option<Fate>> = vec![None; n];
        let mut routes: Vec<Vec<String>> = vec![Vec::new(); n];
        for (k, plugin) in self.plugins.iter_mut().enumerate() {
            let active: Vec<usize> = (0..n).filter(|i| fates[*i].is_none()).collect();
            if active.is_empty() {
                break;
            }
            let supervisor = self.breakers.get(k);
            let admitted = supervisor.map(|s| s.breaker.admit(Instant::now()));
            if let Some(Admit::Skip { failures }) = admitted {
                // Suspended: its policy decides without a call.
                let error = PluginError::Suspended(failures);
                on_error(plugin, &error, &active, &mut fates);
                continue;
            }
            let batch: Vec<EventData> = active.iter().filter_map(|i| slots[*i].take()).collect();
            let started = Instant::now();
            let out = plugin.handle(batch);
            let elapsed = started.elapsed();
            if let Some((m, watch)) = &self.metrics {
                m.plugin_call(plugin.name(), watch, elapsed, out.verdicts.is_err());
            }
            if let Some(t) = trace.as_deref_mut() {
                record_steps(t, &active, plugin, &out, elapsed);
            }
            if let (Some(s), Some(admitted)) = (supervisor, admitted)
                && let Some(t) = s
                    .breaker
                    .record(admitted, out.verdicts.is_ok(), Instant::now())
            {
                s.report(t, &plugin.settings().on_error);
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
                    on_error(plugin, &error, &active, &mut fates);
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

/// Applies `plugin`'s `onError` policy to the `active` events of a call that
/// failed with `error` (or was not made: suspended).
fn on_error(
    plugin: &PluginInstance,
    error: &PluginError,
    active: &[usize],
    fates: &mut [Option<Fate>],
) {
    for i in active {
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

/// One [`PluginStep`] per event of a call, into `trace`.
fn record_steps(
    trace: &mut [Vec<PluginStep>],
    active: &[usize],
    plugin: &PluginInstance,
    out: &super::instance::CallOutcome,
    elapsed: std::time::Duration,
) {
    let verdicts = &out.verdicts;
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    for (k, i) in active.iter().enumerate() {
        let (verdict, reason) = match verdicts {
            Ok(v) => match v.get(k) {
                Some(Verdict::Pass) | None => ("pass", String::new()),
                Some(Verdict::Drop(r)) => ("drop", r.clone()),
                Some(Verdict::Route(s)) => ("route", s.join(",")),
            },
            Err(e) => (
                "error",
                format!("{e} (onError: {})", plugin.settings().on_error),
            ),
        };
        if let Some(steps) = trace.get_mut(*i) {
            steps.push(PluginStep {
                plugin: plugin.name().to_string(),
                verdict,
                reason,
                micros,
                removed: out
                    .edits
                    .get(k)
                    .map(|e| e.removed.clone())
                    .unwrap_or_default(),
                set: out.edits.get(k).map(|e| e.set.clone()).unwrap_or_default(),
            });
        }
    }
}
