//! Sinks: where notifications go. They deliver what they are given (the
//! pipeline decides where a notification goes and writes it to the outbox)
//! and know nothing of plugins, the state dir or leader election: a durable
//! outbox is an [`Outbox`], and a [`Receipt`] tells whoever handed a
//! notification over when every sink is done with it.
//!
//! Each kind of sink is a folder shaped like vector's `src/sinks/http/`
//! (config, encoder, request, service); what they share is here and in
//! [`delivery`]:
//!
//! - a bounded queue per sink, split into lanes by object, so per-object
//!   order holds while objects are delivered in parallel; a slow sink only
//!   ever fills its own queue;
//! - retries, `Retry-After`, dead letters, 410 Gone (see [`delivery`]).

pub(crate) mod batch;
pub mod config;
pub(crate) mod delivery;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod nats;
pub(crate) mod notification;
pub(crate) mod outbox;
pub(crate) mod preview;
mod queue;
pub(crate) mod report;
pub(crate) mod secret;
mod settle;
pub(crate) mod signing;
pub(crate) mod slack;
mod status;
pub(crate) mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::SinkConfig;
pub(crate) use config::SinkKind;
pub use config::SinkType;
pub use delivery::SinkStatus;
pub(crate) use delivery::Stats;
pub use error::{BuildError, ConfigError, Error, SinksError};
pub use notification::Durable;
pub use notification::Notification;
pub use outbox::{Outbox, OutboxError, Ready, Receipt};
pub use report::{DeliveryEvent, DeliveryLog};
pub use secret::SecretError;

use crate::sync::lock;
use delivery::{DeadLetter, Item, Service, Shared};
use queue::{Handle, Refill, Spilled, refill};

/// The sinks of one config.
struct State {
    handles: BTreeMap<String, Handle>,
    configs: Vec<SinkConfig>,
    order: Vec<String>,
}

struct Inner {
    metrics: Arc<RwLock<Option<crate::metrics::Metrics>>>,
    outbox: Option<Arc<dyn Outbox>>,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    log: Option<Arc<dyn DeliveryLog>>,
    cluster: Arc<str>,
    state: RwLock<Option<State>>,
    tasks: Mutex<BTreeMap<String, Vec<JoinHandle<()>>>>,
}

/// The running sinks. Cheap to clone.
#[derive(Clone)]
pub struct Sinks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("sinks", &self.names())
            .finish()
    }
}

/// With no sinks configured, one `log` sink receives every notification;
/// true when that is the case.
pub(crate) fn effective(configs: &[SinkConfig]) -> (Vec<SinkConfig>, bool) {
    if configs.is_empty() {
        (vec![SinkConfig::log("log")], true)
    } else {
        (configs.to_vec(), false)
    }
}

/// What the sinks need from the rest of herald, given when they are built.
#[derive(Default, Clone)]
pub struct SinkDeps {
    /// Observes delivery latency (`herald_delivery_seconds`).
    pub metrics: Option<crate::metrics::Metrics>,
    /// The durable outbox (the state dir): what the last run left is
    /// resumed, spilled notifications wait there, delivered ones are
    /// acknowledged there.
    pub outbox: Option<Arc<dyn Outbox>>,
    /// With leader election: whether this replica leads; the outbox is
    /// handed to the lanes only while it does.
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// Told each attempt's result for notifications with a `trace`.
    pub log: Option<Arc<dyn DeliveryLog>>,
}

impl Sinks {
    /// Builds and starts the sinks on the current tokio runtime. With no
    /// sinks configured, one `log` sink receives every notification. Errors
    /// name the sink and the field (a secret that cannot be read, a CA file
    /// that is not PEM, …).
    ///
    /// # Errors
    /// A `sinks:` list that does not hold, or a sink that cannot be built.
    pub fn start(cluster: &str, configs: &[SinkConfig], deps: SinkDeps) -> Result<Self, Error> {
        let sinks = Sinks {
            inner: Arc::new(Inner {
                metrics: Arc::new(RwLock::new(deps.metrics)),
                outbox: deps.outbox,
                leader: deps.leader,
                log: deps.log,
                cluster: cluster.into(),
                state: RwLock::new(None),
                tasks: Mutex::new(BTreeMap::new()),
            }),
        };
        sinks.reconfigure(configs)?;
        Ok(sinks)
    }

    /// Applies a new `sinks:` list. Sinks whose config is unchanged keep
    /// running untouched, queue and all. A changed sink is built anew; its
    /// new lanes start delivering only once the old ones have drained what
    /// they hold, so per-object order holds across the change. A removed
    /// sink drains in the background. On error nothing changes.
    ///
    /// # Errors
    /// A `sinks:` list that does not hold, or a sink that cannot be built.
    pub(crate) fn reconfigure(&self, configs: &[SinkConfig]) -> Result<(), Error> {
        let (configs, _) = effective(configs);
        config::validate_all(&configs, true)?;
        let mut guard = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
        let old = guard.as_ref();
        // A sink is kept when its config and its dead letter's config are
        // unchanged (its lanes hold the dead letter's queue).
        let unchanged = |c: &SinkConfig| -> bool {
            let Some(old) = old else { return false };
            let same = |name: &str| {
                let a = old.configs.iter().find(|o| o.name() == name);
                let b = configs.iter().find(|o| o.name() == name);
                a.is_some() && a == b
            };
            same(c.name()) && c.common.dead_letter.as_deref().is_none_or(same)
        };
        // Queues first, so dead-letter targets exist when their sources are built.
        let mut queues = BTreeMap::new();
        for c in configs.iter().filter(|c| !unchanged(c)) {
            let lanes = match &c.kind {
                SinkKind::Webhook(w) => w.concurrency,
                _ => 1,
            };
            let per_lane = c.common.queue.capacity.div_ceil(lanes).max(1);
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::channel(per_lane)).unzip();
            queues.insert(
                c.common.name.clone(),
                (txs, Some(rxs), Arc::new(Stats::default())),
            );
        }
        let lanes_of = |name: &str| -> (Vec<mpsc::Sender<Item>>, Arc<Stats>) {
            match queues.get(name) {
                Some((t, _, s)) => (t.clone(), s.clone()),
                None => {
                    let h = &old.expect("kept sinks exist in the old state").handles[name];
                    (h.lanes.clone(), h.stats.clone())
                }
            }
        };
        let mut handles = BTreeMap::new();
        let mut starts = Vec::new();
        for c in &configs {
            let name = c.name();
            if unchanged(c) {
                let h = old.expect("kept").handles[name].clone();
                handles.insert(name.to_string(), h);
                continue;
            }
            let err = |error| Error::Build {
                name: name.to_string(),
                kind: c.kind.sink_type(),
                error,
            };
            let service = Service::build(name, &c.kind, &self.inner.cluster).map_err(err)?;
            let (txs, stats) = lanes_of(name);
            let dead_letter = DeadLetter {
                to: c.common.dead_letter.as_ref().map(|dl| {
                    let (t, s) = lanes_of(dl);
                    (dl.clone(), t, s)
                }),
            };
            let batch = match &service {
                Service::Batch(b) => Some(Arc::new(b.clone())),
                _ => None,
            };
            handles.insert(
                name.to_string(),
                Handle {
                    kind: c.kind.sink_type(),
                    lanes: txs,
                    stats: stats.clone(),
                    capacity: c.common.queue.capacity,
                    batch,
                    // A rebuilt sink keeps what waits in its outbox.
                    overflow: old
                        .and_then(|o| o.handles.get(name))
                        .map(|h| h.overflow.clone())
                        .unwrap_or_default(),
                    spill_on_full: c.common.queue.when_full == config::WhenFull::Spill,
                },
            );
            starts.push(Arc::new(Shared {
                name: name.to_string(),
                service,
                retry: c.common.retry.clone(),
                stats,
                dead_letter,
                metrics: self.inner.metrics.clone(),
                log: self.inner.log.clone(),
            }));
        }
        // Everything is built: nothing can fail from here on.
        let mut tasks = lock(&self.inner.tasks);
        for shared in starts {
            let rxs = queues
                .get_mut(&shared.name)
                .and_then(|q| q.1.take())
                .expect("a new sink has new queues");
            // The old lanes of a changed sink finish first: every new lane
            // waits for all of them, whatever lane an object mapped to before.
            let before: Vec<JoinHandle<()>> = tasks.remove(&shared.name).unwrap_or_default();
            let (open_tx, open_rx) = tokio::sync::watch::channel(before.is_empty());
            let mut mine = Vec::new();
            if !before.is_empty() {
                mine.push(tokio::spawn(async move {
                    for t in before {
                        let _ = t.await;
                    }
                    let _ = open_tx.send(true);
                }));
            }
            for rx in rxs {
                let shared = shared.clone();
                let mut open = open_rx.clone();
                mine.push(tokio::spawn(async move {
                    let _ = open.wait_for(|o| *o).await;
                    delivery::lane(shared, rx).await
                }));
            }
            tasks.insert(shared.name.clone(), mine);
        }
        // Removed sinks drain in the background; close() still waits for them.
        if let Some(old) = old {
            for name in old.handles.keys() {
                if !configs.iter().any(|c| c.name() == name)
                    && let Some(t) = tasks.remove(name)
                {
                    tasks
                        .entry(format!("{name} (removed)"))
                        .or_default()
                        .extend(t);
                }
            }
        }
        let order = configs.iter().map(|c| c.name().to_string()).collect();
        for c in configs.iter().filter(|c| !unchanged(c)) {
            if let Some(h) = handles.get(c.name()) {
                self.start_refill(c.name(), h);
            }
        }
        let replaced = guard.replace(State {
            handles,
            configs,
            order,
        });
        // A removed sink's refill task wakes to find its lanes closed.
        if let Some(old) = replaced {
            let overflows: Vec<_> = old.handles.values().map(|h| h.overflow.clone()).collect();
            drop(old);
            for o in overflows {
                o.wake.notify_waiters();
            }
        }
        Ok(())
    }

    /// The sinks' names, in config order.
    pub fn names(&self) -> Vec<String> {
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|s| s.order.clone()).unwrap_or_default()
    }

    /// Queues `n` at each sink of `targets` (names the pipeline chose), on
    /// the lane of its object. Blocks while a target's queue is full
    /// (`whenFull: block`): call it from the pipeline's thread, not from async
    /// code. A notification with an outbox entry (`durable`) waits behind
    /// what the sink has spilled (`whenFull: spill`). Returns how many sinks
    /// took it.
    pub(crate) fn enqueue(&self, targets: &[String], n: Notification) -> usize {
        let chosen: Vec<(String, Handle)> = {
            let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
            let Some(state) = guard.as_ref() else {
                tracing::error!(
                    name = n.name,
                    "notification after the sinks closed; not delivered"
                );
                return 0;
            };
            targets
                .iter()
                .filter_map(|name| match state.handles.get(name) {
                    Some(h) => Some((name.clone(), h.clone())),
                    None => {
                        tracing::error!(
                            sink = name,
                            name = n.name,
                            kind = n.gvk.kind,
                            "no such sink; notification not delivered there"
                        );
                        None
                    }
                })
                .collect()
            // No lock is held while sending: a full queue may block here, and
            // a reload, `/sinks` or a scrape must not wait on it.
        };
        let n = Arc::new(n);
        let mut sent = 0;
        for (name, h) in chosen {
            let item = Item {
                n: n.clone(),
                encoded: h.batch.as_ref().map(|b| Arc::from(b.encode_item(&n))),
            };
            if h.send_blocking(&name, item) {
                sent += 1;
            }
        }
        sent
    }

    /// The cluster name notifications carry.
    pub fn cluster(&self) -> Arc<str> {
        self.inner.cluster.clone()
    }

    fn start_refill(&self, name: &str, h: &Handle) {
        let Some(outbox) = self.inner.outbox.clone() else {
            return;
        };
        let overflow = &h.overflow;
        let generation = {
            let mut st = lock(&overflow.state);
            st.generation += 1;
            st.generation
        };
        // An older refill task of this sink sees the new generation and ends.
        overflow.wake.notify_waiters();
        tokio::spawn(refill(Refill {
            name: name.to_string(),
            lanes: h.lanes.iter().map(mpsc::Sender::downgrade).collect(),
            stats: h.stats.clone(),
            batch: h.batch.clone(),
            overflow: overflow.clone(),
            outbox,
            generation,
            leader: self.inner.leader.clone(),
        }));
    }

    /// Hands every notification left in the outbox by the previous run back
    /// to its sink, in order, with the same ids, ahead of anything new for
    /// that sink; without waiting (a refill task delivers them). Call before
    /// the pipeline starts. Returns how many.
    pub(crate) fn resume_outbox(&self) -> usize {
        use futures::FutureExt;
        let Some(outbox) = self.inner.outbox.clone() else {
            return 0;
        };
        let handles: Vec<(String, Handle)> = {
            let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(s) => s
                    .handles
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                None => return 0,
            }
        };
        let mut total = 0;
        for (name, h) in handles {
            let ids: Vec<String> = match outbox.pending(&name) {
                Ok(all) => all.into_iter().map(|(id, _)| id).collect(),
                Err(e) => {
                    tracing::error!(sink = name, "reading the outbox: {e}");
                    continue;
                }
            };
            if ids.is_empty() {
                continue;
            }
            tracing::info!(
                sink = name,
                notifications = ids.len(),
                "resuming the outbox"
            );
            // They wait in the outbox as if spilled: the refill task hands
            // them to the lanes in order, and new notifications queue behind.
            let mut st = lock(&h.overflow.state);
            for id in ids {
                st.spilled.insert(
                    id,
                    Spilled {
                        receipt: None,
                        ready: async { Ok(()) }.boxed().shared(),
                    },
                );
                total += 1;
            }
            st.active = true;
            drop(st);
            h.overflow.wake.notify_waiters();
        }
        total
    }

    /// Stops taking notifications and waits up to `deadline` for the queues
    /// to drain. Returns how many notifications were still queued or in
    /// flight when the deadline passed (0 when everything was delivered or
    /// dead-lettered).
    pub async fn close(&self, deadline: Duration) -> u64 {
        let (stats, overflows): (Vec<(String, Arc<Stats>)>, Vec<_>) = {
            let mut guard = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
            guard
                .take()
                .map(|s| {
                    s.handles
                        .into_iter()
                        .map(|(n, h)| ((n, h.stats), h.overflow))
                        .unzip()
                })
                .unwrap_or_default()
        };
        // The lanes' senders are gone: each refill task wakes and ends.
        for o in overflows {
            o.wake.notify_waiters();
        }
        let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.inner.tasks))
            .into_values()
            .flatten()
            .collect();
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
}
