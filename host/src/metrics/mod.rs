//! Prometheus metrics, served as OpenMetrics text on `GET /metrics`.
//!
//! Counted as things happen: changes into the pipeline per watch, their
//! fate, dedup drops, plugin calls, errors and time per plugin, config and
//! plugin reloads. Read at scrape time from the live state: per watch its
//! objects, readiness, relists, stall restarts, errors and the age of its
//! last change; per sink its queue depth, in-flight, delivered, retried,
//! dead-lettered and disabled state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::sink::Sinks;
use crate::source::Sources;

mod collector;
pub mod figures;

use collector::{LiveCollector, lock};

/// `watch` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WatchLabel {
    /// The watch id.
    pub watch: String,
}

/// `watch` and `change` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WatchChange {
    /// The watch id.
    pub watch: String,
    /// added, modified or deleted.
    pub change: String,
}

/// `watch` and `fate` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WatchFate {
    /// The watch id.
    pub watch: String,
    /// delivered (to at least one sink), dropped, dead_letter, unrouted.
    pub fate: String,
}

/// The fates a change can leave the pipeline with (`herald_outcomes_total`'s
/// `fate` label).
pub(crate) const FATES: [&str; 4] = ["delivered", "dropped", "dead_letter", "unrouted"];

/// One watch's event and fate counters (see [`Metrics::watch_counters`]).
#[derive(Clone)]
pub(crate) struct WatchCounters {
    events: [Counter; 3],
    fates: [Counter; 4],
}

impl WatchCounters {
    /// A change entered the pipeline.
    pub(crate) fn event(&self, change: crate::change::ChangeType) {
        use crate::change::ChangeType::*;
        let i = match change {
            Added => 0,
            Modified => 1,
            Deleted => 2,
        };
        self.events[i].inc();
    }

    /// A change left the pipeline with `fate` (one of [`FATES`]).
    pub(crate) fn outcome(&self, fate: &str) {
        if let Some(i) = FATES.iter().position(|f| *f == fate) {
            self.fates[i].inc();
        }
    }
}

/// `plugin` and `watch` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PluginLabel {
    /// The plugin's config name.
    pub plugin: String,
    /// The watch whose chain ran it.
    pub watch: String,
}

/// `plugin` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginName {
    /// The plugin's config name.
    pub plugin: String,
}

/// `what` and `result` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReloadLabel {
    /// config or plugins.
    pub what: String,
    /// ok or error.
    pub result: String,
}

/// `sink` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SinkLabel {
    /// The sink's name.
    pub sink: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn call_histogram() -> Histogram {
    // 10 µs to ~2.6 s.
    Histogram::new(exponential_buckets(1e-5, 4.0, 10))
}

fn delivery_histogram() -> Histogram {
    // 100 µs to ~26 s.
    Histogram::new(exponential_buckets(1e-4, 4.0, 10))
}

/// herald's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    events: Family<WatchChange, Counter>,
    outcomes: Family<WatchFate, Counter>,
    dedup_dropped: Family<WatchLabel, Counter>,
    plugin_calls: Family<PluginLabel, Counter>,
    plugin_errors: Family<PluginLabel, Counter>,
    plugin_drops: Family<PluginLabel, Counter>,
    plugin_seconds: HistogramFamily<PluginLabel>,
    plugin_suspended: Family<PluginName, Gauge>,
    /// Per plugin, how many of its breakers (one per watch using it) are
    /// open: the gauge is 1 while any is.
    suspended_in: Mutex<std::collections::BTreeMap<String, u32>>,
    reloads: Family<ReloadLabel, Counter>,
    delivery_seconds: HistogramFamily<SinkLabel>,
    live: Arc<Live>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the live state at scrape time.
#[derive(Debug, Default)]
struct Live {
    sources: Mutex<Option<Sources>>,
    sinks: Mutex<Option<Sinks>>,
    leader: Mutex<Option<Arc<std::sync::atomic::AtomicBool>>>,
    decisions: Mutex<Option<crate::decisions::Decisions>>,
    pub(super) last_event: std::sync::Mutex<std::collections::BTreeMap<String, SystemTime>>,
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let live = Arc::new(Live::default());
        let mut registry = Registry::with_prefix("herald");
        let events = Family::<WatchChange, Counter>::default();
        registry.register(
            "events",
            "Changes that entered the pipeline",
            events.clone(),
        );
        let outcomes = Family::<WatchFate, Counter>::default();
        registry.register(
            "notifications",
            "Changes after the plugins, by fate",
            outcomes.clone(),
        );
        let dedup_dropped = Family::<WatchLabel, Counter>::default();
        registry.register(
            "dedup_dropped",
            "Changes dropped because that state was already notified",
            dedup_dropped.clone(),
        );
        let plugin_calls = Family::<PluginLabel, Counter>::default();
        registry.register("plugin_calls", "Plugin handle calls", plugin_calls.clone());
        let plugin_errors = Family::<PluginLabel, Counter>::default();
        registry.register(
            "plugin_errors",
            "Plugin calls that failed (trap, deadline, memory, panic)",
            plugin_errors.clone(),
        );
        let plugin_drops = Family::<PluginLabel, Counter>::default();
        registry.register(
            "plugin_drops",
            "Changes a plugin dropped (its drop verdict or its onError: drop)",
            plugin_drops.clone(),
        );
        let plugin_seconds: HistogramFamily<PluginLabel> =
            Family::new_with_constructor(call_histogram);
        registry.register(
            "plugin_call_seconds",
            "Time of one plugin handle call",
            plugin_seconds.clone(),
        );
        let plugin_suspended = Family::<PluginName, Gauge>::default();
        registry.register(
            "plugin_suspended",
            "1 while a plugin's circuit breaker has it suspended (in any watch's chain)",
            plugin_suspended.clone(),
        );
        let reloads = Family::<ReloadLabel, Counter>::default();
        registry.register(
            "reloads",
            "Config and plugin reloads, by result",
            reloads.clone(),
        );
        let delivery_seconds: HistogramFamily<SinkLabel> =
            Family::new_with_constructor(delivery_histogram);
        registry.register(
            "delivery_seconds",
            "Time from herald seeing a change to its sink acknowledging it",
            delivery_seconds.clone(),
        );
        registry.register_collector(Box::new(LiveCollector(live.clone())));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                events,
                outcomes,
                dedup_dropped,
                plugin_calls,
                plugin_errors,
                plugin_drops,
                plugin_seconds,
                plugin_suspended,
                suspended_in: Default::default(),
                reloads,
                delivery_seconds,
                live,
            }),
        }
    }

    /// Reports on these sources at every scrape.
    pub(crate) fn watch_sources(&self, sources: &Sources) {
        *lock(&self.inner.live.sources) = Some(sources.clone());
    }

    /// Reports on these sinks at every scrape.
    pub fn watch_sinks(&self, sinks: &Sinks) {
        *lock(&self.inner.live.sinks) = Some(sinks.clone());
    }

    /// Reports `herald_decisions_kept` and `herald_decisions_bytes` of this
    /// ring.
    pub fn watch_decisions(&self, decisions: &crate::decisions::Decisions) {
        *lock(&self.inner.live.decisions) = Some(decisions.clone());
    }

    /// Reports `herald_leader` from this flag (with leader election on).
    pub(crate) fn watch_leader(&self, flag: Arc<std::sync::atomic::AtomicBool>) {
        *lock(&self.inner.live.leader) = Some(flag);
    }

    /// Stops reporting on sources and sinks, letting them go (at shutdown:
    /// a held `Sources` keeps the pipeline's channel open).
    pub(crate) fn detach(&self) {
        *lock(&self.inner.live.sources) = None;
        *lock(&self.inner.live.sinks) = None;
    }

    /// A change entered the pipeline.
    pub fn event(&self, watch: &str, change: &str) {
        self.inner
            .events
            .get_or_create(&WatchChange {
                watch: watch.into(),
                change: change.into(),
            })
            .inc();
        self.touch(watch);
    }

    /// The counters of one watch's changes and fates, looked up once: the
    /// pipeline keeps them per watch, so counting an event allocates no
    /// label and takes no lock of the registry.
    pub(crate) fn watch_counters(&self, watch: &str) -> WatchCounters {
        let event = |change: crate::change::ChangeType| {
            self.inner
                .events
                .get_or_create(&WatchChange {
                    watch: watch.into(),
                    change: change.as_str().into(),
                })
                .clone()
        };
        let fate = |fate: &str| {
            self.inner
                .outcomes
                .get_or_create(&WatchFate {
                    watch: watch.into(),
                    fate: fate.into(),
                })
                .clone()
        };
        use crate::change::ChangeType::*;
        WatchCounters {
            events: [event(Added), event(Modified), event(Deleted)],
            fates: FATES.map(fate),
        }
    }

    /// The watch saw a change now (its last event's age).
    pub(crate) fn touch(&self, watch: &str) {
        let mut last = self
            .inner
            .live
            .last_event
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match last.get_mut(watch) {
            Some(t) => *t = SystemTime::now(),
            None => {
                last.insert(watch.to_string(), SystemTime::now());
            }
        }
    }

    /// A change left the plugins with this fate.
    pub fn outcome(&self, watch: &str, fate: &str) {
        self.inner
            .outcomes
            .get_or_create(&WatchFate {
                watch: watch.into(),
                fate: fate.into(),
            })
            .inc();
    }

    /// A plugin in this watch's chain dropped a change.
    pub(crate) fn plugin_dropped(&self, plugin: &str, watch: &str) {
        self.inner
            .plugin_drops
            .get_or_create(&PluginLabel {
                plugin: plugin.into(),
                watch: watch.into(),
            })
            .inc();
    }

    /// Dedup dropped a change of this watch.
    pub(crate) fn dedup_dropped(&self, watch: &str) {
        self.inner
            .dedup_dropped
            .get_or_create(&WatchLabel {
                watch: watch.into(),
            })
            .inc();
    }

    /// One plugin call took `elapsed`; `failed` if it trapped or overran.
    pub(crate) fn plugin_call(&self, plugin: &str, watch: &str, elapsed: Duration, failed: bool) {
        let label = PluginLabel {
            plugin: plugin.into(),
            watch: watch.into(),
        };
        self.inner.plugin_calls.get_or_create(&label).inc();
        if failed {
            self.inner.plugin_errors.get_or_create(&label).inc();
        }
        self.inner
            .plugin_seconds
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    /// A plugin's breaker in `watch`'s chain opened (`true`) or closed.
    pub fn plugin_suspended(&self, plugin: &str, watch: &str, open: bool) {
        let mut counts = lock(&self.inner.suspended_in);
        let n = counts.entry(plugin.to_string()).or_default();
        *n = if open { *n + 1 } else { n.saturating_sub(1) };
        let value = i64::from(*n > 0);
        tracing::trace!(plugin, watch, open, "breaker");
        self.inner
            .plugin_suspended
            .get_or_create(&PluginName {
                plugin: plugin.into(),
            })
            .set(value);
    }

    /// A reload of `what` (config, plugins) ended with `ok`.
    pub fn reload(&self, what: &str, ok: bool) {
        self.inner
            .reloads
            .get_or_create(&ReloadLabel {
                what: what.into(),
                result: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }

    /// A sink acknowledged a notification `delay` after herald saw the change.
    pub fn delivered(&self, sink: &str, delay: Duration) {
        self.inner
            .delivery_seconds
            .get_or_create(&SinkLabel { sink: sink.into() })
            .observe(delay.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }

    /// `GET /metrics`.
    pub fn router(&self) -> axum::Router {
        let m = self.clone();
        axum::Router::new().route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                        .into_response()
                }
            }),
        )
    }
}
