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
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::sink::Sinks;
use crate::source::Sources;

/// `watch` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabel {
    /// The watch id.
    pub watch: String,
}

/// `watch` and `change` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchChange {
    /// The watch id.
    pub watch: String,
    /// added, modified or deleted.
    pub change: String,
}

/// `watch` and `fate` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchFate {
    /// The watch id.
    pub watch: String,
    /// delivered (to at least one sink), dropped, dead_letter, unrouted.
    pub fate: String,
}

/// `plugin` and `watch` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    /// The plugin's config name.
    pub plugin: String,
    /// The watch whose chain ran it.
    pub watch: String,
}

/// `what` and `result` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabel {
    /// config or plugins.
    pub what: String,
    /// ok or error.
    pub result: String,
}

/// `sink` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
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
    plugin_seconds: HistogramFamily<PluginLabel>,
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
    last_event: std::sync::Mutex<std::collections::BTreeMap<String, SystemTime>>,
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
        let plugin_seconds: HistogramFamily<PluginLabel> =
            Family::new_with_constructor(call_histogram);
        registry.register(
            "plugin_call_seconds",
            "Time of one plugin handle call",
            plugin_seconds.clone(),
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
                plugin_seconds,
                reloads,
                delivery_seconds,
                live,
            }),
        }
    }

    /// Reports on these sources at every scrape.
    pub fn watch_sources(&self, sources: &Sources) {
        *lock(&self.inner.live.sources) = Some(sources.clone());
    }

    /// Reports on these sinks at every scrape.
    pub fn watch_sinks(&self, sinks: &Sinks) {
        *lock(&self.inner.live.sinks) = Some(sinks.clone());
    }

    /// Reports `herald_leader` from this flag (with leader election on).
    pub fn watch_leader(&self, flag: Arc<std::sync::atomic::AtomicBool>) {
        *lock(&self.inner.live.leader) = Some(flag);
    }

    /// Stops reporting on sources and sinks, letting them go (at shutdown:
    /// a held `Sources` keeps the pipeline's channel open).
    pub fn detach(&self) {
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

    /// Dedup dropped a change of this watch.
    pub fn dedup_dropped(&self, watch: &str) {
        self.inner
            .dedup_dropped
            .get_or_create(&WatchLabel {
                watch: watch.into(),
            })
            .inc();
    }

    /// One plugin call took `elapsed`; `failed` if it trapped or overran.
    pub fn plugin_call(&self, plugin: &str, watch: &str, elapsed: Duration, failed: bool) {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Encodes the scrape-time figures of [`Live`].
#[derive(Debug)]
struct LiveCollector(Arc<Live>);

fn counter<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: &[(L, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, v) in values {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: &[(L, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, v) in values {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for LiveCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let sources = lock(&self.0.sources).clone();
        if let Some(sources) = sources {
            let watches = sources.list();
            let w = |id: &str| WatchLabel { watch: id.into() };
            let sum = |f: &dyn Fn(&crate::source::ScopeReport) -> u64| -> Vec<(WatchLabel, u64)> {
                watches
                    .iter()
                    .map(|s| (w(&s.id), s.scopes.iter().map(f).sum()))
                    .collect()
            };
            counter(
                &mut enc,
                "watch_lists",
                "Lists: the first, then relists after 410 Gone or a restart",
                &sum(&|s| s.lists),
            )?;
            counter(
                &mut enc,
                "watch_restarts",
                "Watches restarted after going silent past the stall timeout",
                &sum(&|s| s.restarts),
            )?;
            counter(
                &mut enc,
                "watch_errors",
                "Failed watch requests (each retried after a backoff)",
                &sum(&|s| s.errors),
            )?;
            let objects: Vec<(WatchLabel, f64)> = watches
                .iter()
                .map(|s| {
                    (
                        w(&s.id),
                        s.scopes.iter().map(|x| x.objects).sum::<usize>() as f64,
                    )
                })
                .collect();
            gauge(&mut enc, "watch_objects", "Objects in the cache", &objects)?;
            let ready: Vec<(WatchLabel, f64)> = watches
                .iter()
                .map(|s| (w(&s.id), if s.ready { 1.0 } else { 0.0 }))
                .collect();
            gauge(
                &mut enc,
                "watch_ready",
                "1 when the watch has completed its first list",
                &ready,
            )?;
            let now = SystemTime::now();
            let heard: Vec<(WatchLabel, f64)> = watches
                .iter()
                .filter_map(|s| {
                    let last = s.scopes.iter().filter_map(|x| x.last_seen).max()?;
                    Some((
                        w(&s.id),
                        now.duration_since(last).unwrap_or_default().as_secs_f64(),
                    ))
                })
                .collect();
            gauge(
                &mut enc,
                "watch_last_heard_age_seconds",
                "Seconds since the API server last sent anything (event, bookmark, list page) for the watch",
                &heard,
            )?;
        }
        let ages: Vec<(WatchLabel, f64)> = {
            let now = SystemTime::now();
            let last = self.0.last_event.lock().unwrap_or_else(|p| p.into_inner());
            last.iter()
                .map(|(w, t)| {
                    (
                        WatchLabel { watch: w.clone() },
                        now.duration_since(*t).unwrap_or_default().as_secs_f64(),
                    )
                })
                .collect()
        };
        gauge(
            &mut enc,
            "last_event_age_seconds",
            "Seconds since the last change of the watch entered the pipeline",
            &ages,
        )?;
        let leader = lock(&self.0.leader).clone();
        if let Some(flag) = leader {
            let v = if flag.load(std::sync::atomic::Ordering::Acquire) {
                1.0
            } else {
                0.0
            };
            let mut m = enc.encode_descriptor(
                "leader",
                "1 when this replica holds the Lease and delivers",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            let _ = &mut m;
            ConstGauge::new(v).encode(m)?;
        }
        let sinks = lock(&self.0.sinks).clone();
        if let Some(sinks) = sinks {
            let st = sinks.status();
            let s = |n: &str| SinkLabel { sink: n.into() };
            let g = |f: &dyn Fn(&crate::sink::SinkStatus) -> f64| -> Vec<(SinkLabel, f64)> {
                st.iter().map(|x| (s(&x.name), f(x))).collect()
            };
            let c = |f: &dyn Fn(&crate::sink::SinkStatus) -> u64| -> Vec<(SinkLabel, u64)> {
                st.iter().map(|x| (s(&x.name), f(x))).collect()
            };
            gauge(
                &mut enc,
                "sink_queue_depth",
                "Notifications queued for the sink",
                &g(&|x| x.depth as f64),
            )?;
            gauge(
                &mut enc,
                "sink_spilled",
                "Notifications waiting in the durable outbox because the queue was full",
                &g(&|x| x.spilled as f64),
            )?;
            gauge(
                &mut enc,
                "sink_queue_capacity",
                "The sink's queue capacity",
                &g(&|x| x.capacity as f64),
            )?;
            gauge(
                &mut enc,
                "sink_in_flight",
                "Notifications being delivered",
                &g(&|x| x.in_flight as f64),
            )?;
            gauge(
                &mut enc,
                "sink_disabled",
                "1 when the endpoint answered 410 Gone",
                &g(&|x| if x.disabled { 1.0 } else { 0.0 }),
            )?;
            counter(
                &mut enc,
                "sink_delivered",
                "Notifications the sink acknowledged",
                &c(&|x| x.delivered),
            )?;
            counter(
                &mut enc,
                "sink_retries",
                "Failed attempts that were retried",
                &c(&|x| x.retries),
            )?;
            counter(
                &mut enc,
                "sink_dead_lettered",
                "Notifications refused or given up, sent to the dead letter",
                &c(&|x| x.dead_lettered),
            )?;
        }
        Ok(())
    }
}
