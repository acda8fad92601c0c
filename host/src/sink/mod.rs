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

pub mod batch;
pub mod config;
pub mod delivery;
pub mod http;
pub mod log;
pub mod notification;
pub mod outbox;
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
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::{SinkConfig, SinkType};
pub use delivery::{SinkStatus, Stats};
pub use notification::Notification;
pub use outbox::{Outbox, Ready, Receipt};

use delivery::{DeadLetter, Item, Service, Shared, lane_of};

/// The send side of one sink.
#[derive(Clone)]
struct Handle {
    kind: SinkType,
    lanes: Vec<mpsc::Sender<Item>>,
    stats: Arc<Stats>,
    capacity: usize,
    batch: Option<Arc<batch::Batch>>,
    /// Notifications waiting in the outbox (spilled, or resumed at start),
    /// shared with the refill task.
    overflow: Arc<Overflow>,
    /// `whenFull: spill`.
    spill_on_full: bool,
}

/// A sink's queue overflowed into the durable outbox: while `active`, every
/// new notification for the sink waits there too (so order holds), and the
/// refill task hands them to the lanes as room frees up. Kept across a
/// reconfiguration of the sink, so nothing spilled is stranded.
#[derive(Default)]
struct Overflow {
    state: Mutex<OverflowState>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct OverflowState {
    active: bool,
    /// Spilled and not yet handed back, by id.
    spilled: std::collections::HashMap<String, Spilled>,
    /// Bumped when the sink is rebuilt: an older refill task stops.
    generation: u64,
}

/// What stays in memory of a spilled notification: its receipt (so whoever
/// waits on it, leader election's watermark, does not pass it) and its
/// outbox write.
struct Spilled {
    receipt: Option<Receipt>,
    ready: Ready,
}

/// An outbox entry back as a queue item: already on disk, so ready at once.
fn item_from_outbox(
    payload: &[u8],
    outbox: &Arc<dyn Outbox>,
    batch: Option<&Arc<batch::Batch>>,
    receipt: Option<Receipt>,
) -> serde_json::Result<Item> {
    use futures::FutureExt;
    let mut n = Notification::from_stored(payload)?;
    n.receipt = receipt;
    n.durable = Some(notification::Durable {
        outbox: outbox.clone(),
        ready: async { Ok(()) }.boxed().shared(),
    });
    let n = Arc::new(n);
    Ok(Item {
        encoded: batch.map(|b| Arc::from(b.encode_item(&n))),
        n,
    })
}

/// Moves spilled notifications from the outbox into the sink's lanes, in
/// outbox order, as room frees up; ends when the sink closes or is rebuilt.
struct Refill {
    name: String,
    lanes: Vec<mpsc::WeakSender<Item>>,
    stats: Arc<Stats>,
    batch: Option<Arc<batch::Batch>>,
    overflow: Arc<Overflow>,
    outbox: Arc<dyn Outbox>,
    generation: u64,
    leader: Option<Arc<std::sync::atomic::AtomicBool>>,
}

async fn refill(r: Refill) {
    let Refill {
        name,
        lanes,
        stats,
        batch,
        overflow,
        outbox,
        generation,
        leader,
    } = r;
    let leading = || {
        leader
            .as_ref()
            .is_none_or(|f| f.load(std::sync::atomic::Ordering::Acquire))
    };
    let current = |o: &Overflow| lock(&o.state).generation == generation;
    loop {
        tokio::select! {
            _ = overflow.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if lanes.iter().any(|l| l.strong_count() == 0) || !current(&overflow) {
            return;
        }
        // A standby delivers nothing, the outbox included.
        if !leading() {
            continue;
        }
        loop {
            let wanted: std::collections::HashSet<String> = {
                let mut st = lock(&overflow.state);
                if st.spilled.is_empty() {
                    if st.active {
                        tracing::info!(
                            sink = name,
                            "overflow drained; the queue takes notifications again"
                        );
                    }
                    st.active = false;
                    break;
                }
                st.spilled.keys().cloned().collect()
            };
            // Spilled entries are committed before they are read back.
            let o2 = outbox.clone();
            let _ = tokio::task::spawn_blocking(move || o2.flush()).await;
            let pending: Vec<(String, Vec<u8>)> = match outbox.pending(&name) {
                Ok(all) => all
                    .into_iter()
                    .filter(|(id, _)| wanted.contains(id))
                    .collect(),
                Err(e) => {
                    tracing::error!(sink = name, "reading the outbox: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if pending.is_empty() {
                // Not readable yet, or never written: a failed outbox write
                // means the notification is gone, and that is said.
                let waits: Vec<(String, _)> = lock(&overflow.state)
                    .spilled
                    .iter()
                    .map(|(id, s)| (id.clone(), s.ready.clone()))
                    .collect();
                for (id, ready) in waits {
                    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), ready).await {
                        tracing::error!(
                            sink = name,
                            id,
                            "notification lost: spilled while the queue was full, and its outbox write failed: {e}"
                        );
                        lock(&overflow.state).spilled.remove(&id);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            for (id, payload) in pending {
                // Claimed before it is sent: one refill task sends it, once.
                let claimed = {
                    let mut st = lock(&overflow.state);
                    if st.generation != generation {
                        return;
                    }
                    st.spilled.remove(&id)
                };
                let Some(claimed) = claimed else { continue };
                let item =
                    match item_from_outbox(&payload, &outbox, batch.as_ref(), claimed.receipt) {
                        Ok(item) => item,
                        Err(e) => {
                            tracing::error!(
                                sink = name,
                                id,
                                "unreadable outbox entry, left in place: {e}"
                            );
                            continue;
                        }
                    };
                let Some(lane) = lanes[lane_of(&item.n.uid, lanes.len())].upgrade() else {
                    return;
                };
                stats.depth.fetch_add(1, Ordering::Relaxed);
                if lane.send(item).await.is_err() {
                    // Closed: it stays in the outbox for the next start.
                    stats.depth.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// The sinks of one config.
struct State {
    handles: BTreeMap<String, Handle>,
    configs: Vec<SinkConfig>,
    order: Vec<String>,
}

impl Handle {
    /// Queues `item` on its object's lane, waiting while the lane is full
    /// (`whenFull: block`). False if the sink is closed.
    fn send_blocking(&self, name: &str, item: Item) -> bool {
        let lane = &self.lanes[lane_of(&item.n.uid, self.lanes.len())];
        let item = if item.n.durable.is_some() {
            // The notification is in the outbox already: while others wait
            // there before it (spilled, or left by the last run), it waits
            // there too, so per-object order holds.
            let mut st = lock(&self.overflow.state);
            let item = if st.active {
                item
            } else {
                self.stats.depth.fetch_add(1, Ordering::Relaxed);
                match lane.try_send(item) {
                    Ok(()) => return true,
                    Err(mpsc::error::TrySendError::Full(item)) if self.spill_on_full => {
                        self.stats.depth.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!(
                            sink = name,
                            capacity = self.capacity,
                            "queue full; spilling to the outbox (whenFull: spill)"
                        );
                        st.active = true;
                        item
                    }
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        drop(st);
                        return self.wait_for_room(name, lane, item);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.stats.depth.fetch_sub(1, Ordering::Relaxed);
                        return false;
                    }
                }
            };
            let ready = item
                .n
                .durable
                .as_ref()
                .map(|d| d.ready.clone())
                .expect("durable");
            st.spilled.insert(
                item.n.id(name),
                Spilled {
                    receipt: item.n.receipt.clone(),
                    ready,
                },
            );
            self.overflow.wake.notify_one();
            return true;
        } else {
            item
        };
        self.stats.depth.fetch_add(1, Ordering::Relaxed);
        match lane.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(item)) => self.wait_for_room(name, lane, item),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.stats.depth.fetch_sub(1, Ordering::Relaxed);
                tracing::error!(sink = name, "sink closed; notification not delivered");
                false
            }
        }
    }

    /// `whenFull: block`: waits for room (the item is counted in `depth`).
    fn wait_for_room(&self, name: &str, lane: &mpsc::Sender<Item>, item: Item) -> bool {
        tracing::warn!(
            sink = name,
            capacity = self.capacity,
            "queue full; waiting for room (whenFull: block)"
        );
        if lane.blocking_send(item).is_ok() {
            true
        } else {
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }
}

struct Inner {
    metrics: Arc<RwLock<Option<crate::metrics::Metrics>>>,
    outbox: Option<Arc<dyn Outbox>>,
    leader: Option<Arc<std::sync::atomic::AtomicBool>>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// With no sinks configured, one `log` sink receives every notification;
/// true when that is the case.
pub fn effective(configs: &[SinkConfig]) -> (Vec<SinkConfig>, bool) {
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
    /// With leader election: the outbox is handed to the lanes only while
    /// this replica leads.
    pub leader: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Sinks {
    /// Builds and starts the sinks on the current tokio runtime. With no
    /// sinks configured, one `log` sink receives every notification. Errors
    /// name the sink and the field (a secret that cannot be read, a CA file
    /// that is not PEM, …).
    pub fn start(cluster: &str, configs: &[SinkConfig], deps: SinkDeps) -> Result<Self> {
        let sinks = Sinks {
            inner: Arc::new(Inner {
                metrics: Arc::new(RwLock::new(deps.metrics)),
                outbox: deps.outbox,
                leader: deps.leader,
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
    pub fn reconfigure(&self, configs: &[SinkConfig]) -> Result<()> {
        let (configs, _) = effective(configs);
        config::validate_all(&configs, true).map_err(|e| anyhow!(e))?;
        let mut guard = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
        let old = guard.as_ref();
        // A sink is kept when its config and its dead letter's config are
        // unchanged (its lanes hold the dead letter's queue).
        let unchanged = |c: &SinkConfig| -> bool {
            let Some(old) = old else { return false };
            let same = |name: &str| {
                let a = old.configs.iter().find(|o| o.name == name);
                let b = configs.iter().find(|o| o.name == name);
                a.is_some() && a == b
            };
            same(&c.name) && c.dead_letter.as_deref().is_none_or(same)
        };
        // Queues first, so dead-letter targets exist when their sources are built.
        let mut queues = BTreeMap::new();
        for c in configs.iter().filter(|c| !unchanged(c)) {
            let lanes = match c.kind {
                SinkType::Webhook => c.concurrency.unwrap_or(4),
                _ => 1,
            };
            let per_lane = c.queue.capacity.div_ceil(lanes).max(1);
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::channel(per_lane)).unzip();
            queues.insert(c.name.clone(), (txs, Some(rxs), Arc::new(Stats::default())));
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
            if unchanged(c) {
                let h = old.expect("kept").handles[&c.name].clone();
                handles.insert(c.name.clone(), h);
                continue;
            }
            let err = |e: String| anyhow!("sinks: {} ({}).{e}", c.name, type_name(c.kind));
            let service = match c.kind {
                SinkType::Webhook => Service::Webhook(webhook::Webhook::new(c).map_err(err)?),
                SinkType::Slack => Service::Slack(slack::Slack::new(c).map_err(err)?),
                SinkType::Batch => {
                    Service::Batch(batch::Batch::new(c, &self.inner.cluster).map_err(err)?)
                }
                SinkType::Log => Service::Log(log::LogOut::new(c)),
            };
            let (txs, stats) = lanes_of(&c.name);
            let dead_letter = DeadLetter {
                to: c.dead_letter.as_ref().map(|dl| {
                    let (t, s) = lanes_of(dl);
                    (dl.clone(), t, s)
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
                    lanes: txs,
                    stats: stats.clone(),
                    capacity: c.queue.capacity,
                    batch,
                    // A rebuilt sink keeps what waits in its outbox.
                    overflow: old
                        .and_then(|o| o.handles.get(&c.name))
                        .map(|h| h.overflow.clone())
                        .unwrap_or_default(),
                    spill_on_full: c.queue.when_full == config::WhenFull::Spill,
                },
            );
            starts.push(Arc::new(Shared {
                name: c.name.clone(),
                service,
                retry: c.retry.clone(),
                interval: c.interval.unwrap_or(Duration::from_secs(1)),
                stats,
                dead_letter,
                metrics: self.inner.metrics.clone(),
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
                if !configs.iter().any(|c| &c.name == name)
                    && let Some(t) = tasks.remove(name)
                {
                    tasks
                        .entry(format!("{name} (removed)"))
                        .or_default()
                        .extend(t);
                }
            }
        }
        let order = configs.iter().map(|c| c.name.clone()).collect();
        for c in configs.iter().filter(|c| !unchanged(c)) {
            if let Some(h) = handles.get(&c.name) {
                self.start_refill(&c.name, h);
            }
        }
        *guard = Some(State {
            handles,
            configs,
            order,
        });
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
    pub fn enqueue(&self, targets: &[String], n: Notification) -> usize {
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
    pub fn resume_outbox(&self) -> usize {
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
            h.overflow.wake.notify_one();
        }
        total
    }

    /// Every sink's figures, in config order.
    pub fn status(&self) -> Vec<SinkStatus> {
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        let Some(state) = guard.as_ref() else {
            return vec![];
        };
        let handles = &state.handles;
        state
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
                    spilled: lock(&h.overflow.state).spilled.len() as u64,
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
            let mut guard = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
            guard
                .take()
                .map(|s| s.handles.into_iter().map(|(n, h)| (n, h.stats)).collect())
                .unwrap_or_default()
        };
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
