//! The figures read at scrape time from the live state: per watch, per sink,
//! and whether this replica leads.

use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{Live, SinkLabel, WatchLabel};
pub(super) use crate::sync::lock;

/// Encodes the scrape-time figures of [`Live`].
#[derive(Debug)]
pub(super) struct LiveCollector(pub(super) Arc<Live>);

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
        let decisions = lock(&self.0.decisions).clone();
        if let Some(d) = decisions {
            let (kept, bytes) = d.kept();
            for (name, help, v) in [
                (
                    "decisions_kept",
                    "Decisions the ring keeps for /api/v1/decisions and the status page",
                    kept,
                ),
                (
                    "decisions_bytes",
                    "Memory the kept decisions count for (bounded by decisions.maxBytes)",
                    bytes,
                ),
            ] {
                let m = enc.encode_descriptor(
                    name,
                    help,
                    None,
                    prometheus_client::metrics::MetricType::Gauge,
                )?;
                ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m)?;
            }
        }
        Ok(())
    }
}
