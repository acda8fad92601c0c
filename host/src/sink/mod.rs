//! Sinks: where notifications go. Each kind of sink is a folder shaped like
//! vector's `src/sinks/http/` (config, encoder, request, service); what they
//! share is here and in [`delivery`]:
//!
//! - routing: the sinks named by the plugin chain's route verdicts, else the
//!   watch's `sinks`, else every sink that is not some sink's dead letter;
//!   then each sink's `namespaces` filter;
//! - a bounded queue per sink, split into lanes by object, so per-object
//!   order holds while objects are delivered in parallel; a slow sink only
//!   ever fills its own queue;
//! - retries, `Retry-After`, dead letters, 410 Gone (see [`delivery`]).

pub mod batch;
pub mod config;
pub mod delivery;
pub mod http;
pub mod log;
pub mod notification;
pub mod secret;
pub mod signing;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use axum::routing::get;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::{SinkConfig, SinkType};
pub use delivery::{SinkStatus, Stats};
pub use notification::Notification;

use crate::pipeline::Outcome;
use crate::plugin::Fate;
use delivery::{DeadLetter, Item, Service, Shared, lane_of};

/// The send side of one sink.
#[derive(Clone)]
struct Handle {
    kind: SinkType,
    namespaces: Vec<String>,
    lanes: Vec<mpsc::Sender<Item>>,
    stats: Arc<Stats>,
    capacity: usize,
    batch: Option<Arc<batch::Batch>>,
}

struct Inner {
    cluster: Arc<str>,
    handles: RwLock<Option<BTreeMap<String, Handle>>>,
    order: Vec<String>,
    defaults: Vec<String>,
    implicit: bool,
    watch_sinks: RwLock<BTreeMap<String, Vec<String>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The running sinks. Cheap to clone.
#[derive(Clone)]
pub struct Sinks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("sinks", &self.inner.order)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sinks {
    /// Builds and starts the sinks on the current tokio runtime. With no
    /// sinks configured, one `log` sink receives every notification. Errors
    /// name the sink and the field (a secret that cannot be read, a CA file
    /// that is not PEM, …).
    pub fn start(cluster: &str, configs: &[SinkConfig]) -> Result<Self> {
        let implicit = configs.is_empty();
        let configs: Vec<SinkConfig> = if implicit {
            vec![SinkConfig::log("log")]
        } else {
            configs.to_vec()
        };
        config::validate_all(&configs, true).map_err(|e| anyhow!(e))?;
        // Queues first, so dead-letter targets exist when their sources are built.
        let mut queues = BTreeMap::new();
        for c in &configs {
            let lanes = match c.kind {
                SinkType::Webhook => c.concurrency.unwrap_or(4),
                _ => 1,
            };
            let per_lane = c.queue.capacity.div_ceil(lanes).max(1);
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::channel(per_lane)).unzip();
            queues.insert(c.name.clone(), (txs, rxs, Arc::new(Stats::default())));
        }
        let mut handles = BTreeMap::new();
        let mut tasks = Vec::new();
        let mut starts = Vec::new();
        for c in &configs {
            let err = |e: String| anyhow!("sinks: {} ({}).{e}", c.name, type_name(c.kind));
            let service = match c.kind {
                SinkType::Webhook => Service::Webhook(webhook::Webhook::new(c).map_err(err)?),
                SinkType::Slack => Service::Slack(slack::Slack::new(c).map_err(err)?),
                SinkType::Batch => Service::Batch(batch::Batch::new(c, cluster).map_err(err)?),
                SinkType::Log => Service::Log(log::LogOut::new(c)),
            };
            let (txs, _, stats) = &queues[&c.name];
            let dead_letter = DeadLetter {
                to: c.dead_letter.as_ref().map(|dl| {
                    let (t, _, s) = &queues[dl];
                    (dl.clone(), t.clone(), s.clone())
                }),
            };
            let batch = match &service {
                Service::Batch(b) => Some(Arc::new(b.clone())),
                _ => None,
            };
            handles.insert(
                c.name.clone(),
                Handle {
                    kind: c.kind,
                    namespaces: c.namespaces.clone(),
                    lanes: txs.clone(),
                    stats: stats.clone(),
                    capacity: c.queue.capacity,
                    batch,
                },
            );
            starts.push((
                c.name.clone(),
                Arc::new(Shared {
                    name: c.name.clone(),
                    service,
                    retry: c.retry.clone(),
                    interval: c.interval.unwrap_or(Duration::from_secs(1)),
                    stats: stats.clone(),
                    dead_letter,
                }),
            ));
        }
        for (name, shared) in starts {
            let (_, rxs, _) = queues.get_mut(&name).expect("queue");
            for rx in std::mem::take(rxs) {
                tasks.push(tokio::spawn(delivery::lane(shared.clone(), rx)));
            }
        }
        let dead_letters: Vec<&String> = configs
            .iter()
            .filter_map(|c| c.dead_letter.as_ref())
            .collect();
        let defaults = configs
            .iter()
            .filter(|c| !dead_letters.contains(&&c.name))
            .map(|c| c.name.clone())
            .collect();
        Ok(Sinks {
            inner: Arc::new(Inner {
                cluster: cluster.into(),
                handles: RwLock::new(Some(handles)),
                order: configs.iter().map(|c| c.name.clone()).collect(),
                defaults,
                implicit,
                watch_sinks: RwLock::new(BTreeMap::new()),
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// Sets the default sinks of a watch (its `sinks:`); empty: every sink
    /// that is not a dead letter.
    pub fn set_watch_sinks(&self, watch: &str, sinks: Vec<String>) {
        self.inner
            .watch_sinks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(watch.to_string(), sinks);
    }

    /// The sinks' names, in config order.
    pub fn names(&self) -> &[String] {
        &self.inner.order
    }

    /// Routes one outcome of the pipeline to its sinks. Blocks while a
    /// target's queue is full (`whenFull: block`): call it from the
    /// pipeline's thread, not from async code. Returns how many sinks got it.
    pub fn dispatch(&self, o: Outcome) -> usize {
        let (routes, dead_letter) = match o.fate {
            Fate::Deliver { routes } => (routes, None),
            Fate::Dropped { plugin, reason } => {
                tracing::debug!(plugin, name = o.name, "dropped: {reason}");
                return 0;
            }
            Fate::DeadLetter {
                sink,
                plugin,
                error,
            } => (
                vec![sink],
                Some(json!({"plugin": plugin, "error": error.to_string()})),
            ),
        };
        let resource_version = o
            .object
            .pointer("/metadata/resourceVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let targets: Vec<String> = if self.inner.implicit {
            self.inner.order.clone()
        } else if !routes.is_empty() {
            routes.clone()
        } else {
            let ws = self
                .inner
                .watch_sinks
                .read()
                .unwrap_or_else(|p| p.into_inner());
            match ws.get(&o.watch) {
                Some(s) if !s.is_empty() => s.clone(),
                _ => self.inner.defaults.clone(),
            }
        };
        let n = Arc::new(Notification {
            cluster: self.inner.cluster.clone(),
            change: o.change,
            gvk: o.gvk,
            watch: o.watch,
            namespace: o.namespace,
            name: o.name,
            uid: o.uid,
            resource_version,
            time: o.observed_at,
            routes,
            object: o.object,
            old: o.old,
            dead_letter,
        });
        let guard = self.inner.handles.read().unwrap_or_else(|p| p.into_inner());
        let Some(handles) = guard.as_ref() else {
            tracing::error!(
                id = n.uid,
                "notification after the sinks closed; not delivered"
            );
            return 0;
        };
        let mut sent = 0;
        for name in &targets {
            let Some(h) = handles.get(name) else {
                tracing::error!(
                    sink = name,
                    object = n.subject(),
                    kind = n.gvk.kind,
                    "a route names a sink that does not exist; notification not delivered there"
                );
                continue;
            };
            if let Some(ns) = &n.namespace
                && !h.namespaces.is_empty()
                && !h.namespaces.iter().any(|x| x == ns)
            {
                continue;
            }
            let item = Item {
                n: n.clone(),
                encoded: h.batch.as_ref().map(|b| Arc::from(b.encode_item(&n))),
            };
            let lane = &h.lanes[lane_of(&n.uid, h.lanes.len())];
            h.stats.depth.fetch_add(1, Ordering::Relaxed);
            let item = match lane.try_send(item) {
                Ok(()) => {
                    sent += 1;
                    continue;
                }
                Err(mpsc::error::TrySendError::Full(item)) => {
                    tracing::warn!(
                        sink = name,
                        capacity = h.capacity,
                        "queue full; waiting for room (whenFull: block)"
                    );
                    item
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    h.stats.depth.fetch_sub(1, Ordering::Relaxed);
                    tracing::error!(sink = name, "sink closed; notification not delivered");
                    continue;
                }
            };
            if lane.blocking_send(item).is_ok() {
                sent += 1;
            } else {
                h.stats.depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
        sent
    }

    /// Every sink's figures, in config order.
    pub fn status(&self) -> Vec<SinkStatus> {
        let guard = self.inner.handles.read().unwrap_or_else(|p| p.into_inner());
        let Some(handles) = guard.as_ref() else {
            return vec![];
        };
        self.inner
            .order
            .iter()
            .filter_map(|name| {
                let h = handles.get(name)?;
                let s = &h.stats;
                Some(SinkStatus {
                    name: name.clone(),
                    kind: type_name(h.kind).into(),
                    depth: s.depth.load(Ordering::Relaxed),
                    capacity: h.capacity,
                    in_flight: s.in_flight.load(Ordering::Relaxed),
                    delivered: s.delivered.load(Ordering::Relaxed),
                    retries: s.retries.load(Ordering::Relaxed),
                    dead_lettered: s.dead_lettered.load(Ordering::Relaxed),
                    disabled: s.disabled.load(Ordering::Relaxed),
                    last_error: lock(&s.last_error).clone(),
                })
            })
            .collect()
    }

    /// Stops taking notifications and waits up to `deadline` for the queues
    /// to drain. Returns how many notifications were still queued or in
    /// flight when the deadline passed (0 when everything was delivered or
    /// dead-lettered).
    pub async fn close(&self, deadline: Duration) -> u64 {
        let stats: Vec<(String, Arc<Stats>)> = {
            let mut guard = self
                .inner
                .handles
                .write()
                .unwrap_or_else(|p| p.into_inner());
            guard
                .take()
                .map(|h| h.into_iter().map(|(n, h)| (n, h.stats)).collect())
                .unwrap_or_default()
        };
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        let start = Instant::now();
        let all = futures::future::join_all(tasks.iter_mut());
        let finished = tokio::time::timeout(deadline, all).await.is_ok();
        let mut left = 0;
        if !finished {
            for t in &tasks {
                t.abort();
            }
            for (name, s) in &stats {
                let n = s.depth.load(Ordering::Relaxed) + s.in_flight.load(Ordering::Relaxed);
                if n > 0 {
                    tracing::error!(
                        sink = name,
                        undelivered = n,
                        "shutdown deadline passed; notifications left undelivered"
                    );
                }
                left += n;
            }
        }
        tracing::info!(elapsed = ?start.elapsed(), undelivered = left, "sinks closed");
        left
    }

    /// `GET /sinks`: every sink's queue depth and figures.
    pub fn router(&self) -> axum::Router {
        let sinks = self.clone();
        axum::Router::new().route(
            "/sinks",
            get(move || {
                let s = sinks.clone();
                async move { axum::Json(s.status()) }
            }),
        )
    }
}

fn type_name(t: SinkType) -> &'static str {
    match t {
        SinkType::Webhook => "webhook",
        SinkType::Slack => "slack",
        SinkType::Batch => "batch",
        SinkType::Log => "log",
    }
}
