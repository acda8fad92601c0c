//! The pipeline: takes changes off the source's channel, admits each
//! (dedup, the restart rewrite, the state record), runs it through its
//! watch's plugin chain, and hands the outcomes on; [`Delivery`] routes them,
//! commits each with its record to the outbox, and queues it at the sinks.
//!
//! # Threads and order
//!
//! ```text
//!  source ──▶ pipeline thread ──▶ chain workers (per watch with plugins,
//!             admit, number        `pipeline.workers` threads, sharded by
//!             per stream           object uid)
//!                  ▲                      │
//!                  └── finished changes ◀─┘
//!             hand on per stream in order ──▶ deliver
//!             (watches without plugins: at once)
//! ```
//!
//! - **Intake** (`herald-pipeline`): admission stays on one thread, in
//!   arrival order: dedup decides against the states admitted before, the
//!   restart rewrite reads what was recorded, and the record (with the
//!   stream's checkpoint) is built here. Each admitted change gets the next
//!   number of its stream (a watch, or a watch and namespace: the unit in
//!   which the API server orders resourceVersions and the key of its
//!   checkpoint).
//! - **Workers** (`herald-chain-N`): each watch whose chain has plugins has
//!   its own pool, one copy of the chain per worker (a wasmtime store is used
//!   by one thread), so a plugin that loops until its deadline holds up only
//!   the watches whose chain has it, and with several cores the chains run in
//!   parallel. A change goes to the worker of its object's uid: one object's
//!   changes run one after another, in order. A worker sends what it
//!   finished back to the pipeline thread (never waiting: that channel has
//!   no bound, and what is in it is bounded by the workers' queues).
//! - **Commit** (on the pipeline thread too): outcomes are handed on per
//!   stream strictly in intake order (`order.rs`), whichever worker finished
//!   first. So everything downstream sees each stream as the one-thread
//!   pipeline did: records and checkpoints are submitted in stream order (a
//!   checkpoint never passes a change whose record and outbox entries are
//!   not submitted before it, in the same or an earlier transaction), the
//!   outbox and the sinks get one object's notifications in order, and the
//!   HA gate's watermark rises in order. Streams are independent: one
//!   waiting for a slow chain holds up no other. Admission and commit share
//!   the thread so that a change crosses as few threads as it can: a watch
//!   without plugins goes from the source's task to the sinks through this
//!   one thread, a watch with plugins through it and one worker (a thread
//!   of its own for commit cost each change one more wake-up; at a real API
//!   server's pace, when changes come one at a time, that is most of what a
//!   hop costs). The thread takes finished changes before new ones.
//!
//! Chains are swapped between two changes: a change runs wholly on the
//! chains its worker had when it reached it, the next on the newest sent.
//! Old chains are dropped on the worker that ran them.
//!
//! # Limits
//! The intake takes what the source has queued (up to 64 changes), admits
//! it, and hands each worker its share in one go; a worker hands its results
//! back in one go too. A burst costs each hop one wake-up, not one per
//! change; a lone change goes on at once.
//!
//! A worker queues at most 1,024 hand-overs (1,024 changes or more); a watch
//! whose chain is slower than its changes for longer than that makes the
//! pipeline thread wait, and with it every watch (back-pressure to the API
//! server, as before). A sink that blocks (`whenFull: block`) makes it wait
//! too, as it made the intake wait before, through the committer. The
//! circuit breaker (`plugins.breaker`) keeps a failing plugin from being that
//! slow for long.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::task::Poll;
use std::thread::JoinHandle;

use serde::Deserialize;
use tokio::sync::mpsc;

mod admit;
mod deliver;
mod order;
mod outbox;
mod workers;

pub use admit::Stages;
pub use deliver::{Addressed, Deliver, Delivery, Routes, address};
pub(crate) use outbox::state_outbox;

use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::plugin::{Chain, EventData, Fate, LoadError};

use order::{Sequencer, Tickets};
use workers::{Done, Pending, Pool};

/// At most this many changes are taken off the source's channel before they
/// are handed on: each hop wakes its next thread once per hand-over, not
/// once per change, while a burst waits no longer than this many admissions.
const HAND_OVER: usize = 64;

/// The `pipeline:` section of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineConfig {
    /// Threads per watch that run its plugin chain (each with its own
    /// plugin instances). Default: the number of cores. Example: `4`
    #[serde(default)]
    pub workers: Option<usize>,
}

impl PipelineConfig {
    /// Checks the numbers. Errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        match self.workers {
            Some(0) => Err("workers: at least 1".into()),
            Some(n) if n > 256 => Err("workers: at most 256".into()),
            _ => Ok(()),
        }
    }

    /// The worker count: as configured, else the cores.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

/// Per watch id, one copy of its chain per worker.
pub type WorkerChains = BTreeMap<String, Vec<Chain>>;

/// New chains for a running pipeline.
#[derive(Default)]
pub struct ChainUpdate {
    /// Chains that replace the running ones, per watch; a watch neither
    /// here nor in `keep` has no plugins any more.
    pub chains: WorkerChains,
    /// Watches whose running chains stay as they are (none of their plugin
    /// files changed).
    pub keep: std::collections::BTreeSet<String>,
}

impl From<WorkerChains> for ChainUpdate {
    fn from(chains: WorkerChains) -> Self {
        ChainUpdate {
            chains,
            keep: Default::default(),
        }
    }
}

/// `chains` with `workers` copies each (see [`Chain::replicate`]).
///
/// # Errors
/// A copy whose instance cannot start.
pub fn replicate(
    chains: BTreeMap<String, Chain>,
    workers: usize,
) -> Result<WorkerChains, LoadError> {
    chains
        .into_iter()
        .map(|(watch, chain)| {
            let mut copies = Vec::with_capacity(workers.max(1));
            for _ in 1..workers.max(1) {
                copies.push(chain.replicate()?);
            }
            copies.insert(0, chain);
            Ok((watch, copies))
        })
        .collect()
}

/// One change after its chain.
#[derive(Debug)]
pub struct Outcome {
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// The watched type.
    pub gvk: Gvk,
    /// The watch that saw the change.
    pub watch: String,
    /// `metadata.namespace` as the API server sent it.
    pub namespace: Option<String>,
    /// `metadata.name` as the API server sent it.
    pub name: String,
    /// `metadata.uid` as the API server sent it.
    pub uid: String,
    /// When herald saw the change.
    pub observed_at: std::time::SystemTime,
    /// The object as the chain left it.
    pub object: crate::change::Doc,
    /// The previous state, if any.
    pub old: Option<crate::change::Doc>,
    /// Where it goes.
    pub fate: Fate,
    /// With a state dir: the writes that record this state as emitted (or
    /// forget a deleted object) and advance the stream's checkpoint, to
    /// commit in one transaction with the outbox entries of the notification.
    pub record: Vec<crate::state::Op>,
    /// The watch stream it came from ([`crate::source::stream_key`]): the
    /// unit in which the API server orders resourceVersions.
    pub stream: String,
    /// Each plugin's verdict, edits and time (with the decisions ring on).
    pub plugins: Vec<crate::plugin::PluginStep>,
}

/// Starts the pipeline (see the module docs). `chains` are keyed by watch
/// id, one copy per worker; a watch without a chain (or with an empty one)
/// delivers its changes as they are. New chains arrive on `updates`.
/// `stages` admit each change first (dedup, the state record). `deliver`
/// sees every outcome, each stream's in order, on the pipeline's thread,
/// and stops the pipeline by returning `Break`. The pipeline ends when every
/// sender of `rx` is gone; the returned thread ends once every change it
/// took has been handed to `deliver`.
pub fn spawn_with(
    mut rx: mpsc::Receiver<ChangeEvent>,
    chains: WorkerChains,
    updates: std::sync::mpsc::Receiver<ChainUpdate>,
    stages: Stages,
    mut deliver: impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("herald-pipeline".into())
        .spawn(move || {
            let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<Done>>();
            let mut intake = Intake {
                pools: BTreeMap::new(),
                retired: Vec::new(),
                tickets: Tickets::default(),
                done: done_tx,
                direct: Vec::new(),
                trace: stages.decisions.is_some(),
                order: Sequencer::default(),
            };
            intake.update(chains.into());
            // `true`: delivery stopped the pipeline; `false`: the source
            // closed, or a worker is gone (what is in flight still goes on).
            let stopped = 'run: loop {
                // What the workers finished goes on first.
                while let Ok(batch) = done_rx.try_recv() {
                    if commit(&mut intake.order, batch, &mut deliver).is_break() {
                        break 'run true;
                    }
                }
                let first = match rx.try_recv() {
                    Ok(ev) => ev,
                    Err(mpsc::error::TryRecvError::Disconnected) => break 'run false,
                    Err(mpsc::error::TryRecvError::Empty) => match next(&mut rx, &mut done_rx) {
                        Next::Change(ev) => ev,
                        Next::Done(batch) => {
                            if commit(&mut intake.order, batch, &mut deliver).is_break() {
                                break 'run true;
                            }
                            continue;
                        }
                        Next::Closed => break 'run false,
                    },
                };
                // What the source has queued is admitted, then handed on at once.
                let mut next_ev = Some(first);
                let mut taken = 0;
                while let Some(mut ev) = next_ev.take() {
                    taken += 1;
                    while let Ok(newer) = updates.try_recv() {
                        if let ControlFlow::Break(by_delivery) = intake.flush(&mut deliver) {
                            break 'run by_delivery;
                        }
                        intake.update(newer);
                    }
                    if let Some(hash) = stages.admit(&mut ev) {
                        let record = stages.record(&ev, hash);
                        intake.dispatch(ev, record, &stages);
                    }
                    if taken < HAND_OVER {
                        next_ev = rx.try_recv().ok();
                    }
                }
                if let ControlFlow::Break(by_delivery) = intake.flush(&mut deliver) {
                    break 'run by_delivery;
                }
            };
            // Every worker finishes what it holds, and (unless delivery
            // stopped the pipeline) its changes are handed on.
            let Intake {
                pools,
                mut retired,
                done,
                mut order,
                ..
            } = intake;
            drop(done);
            if stopped {
                // Workers' results have nowhere to go: they stop at their next.
                drop(done_rx);
                for pool in pools.into_values() {
                    retired.extend(pool.retire());
                }
                for t in retired {
                    let _ = t.join();
                }
                return;
            }
            for pool in pools.into_values() {
                retired.extend(pool.retire());
            }
            while let Some(batch) = done_rx.blocking_recv() {
                if commit(&mut order, batch, &mut deliver).is_break() {
                    break;
                }
            }
            drop(done_rx);
            for t in retired {
                let _ = t.join();
            }
        })
}

/// What the intake waits for when neither the source nor the workers have
/// anything. (A change is moved out once, at once: not boxed.)
#[allow(clippy::large_enum_variant)]
enum Next {
    Change(ChangeEvent),
    Done(Vec<Done>),
    /// Every sender of the source's channel is gone.
    Closed,
}

/// Sleeps until the workers finish something or the source sends a change
/// (finished work first).
fn next(
    rx: &mut mpsc::Receiver<ChangeEvent>,
    done: &mut mpsc::UnboundedReceiver<Vec<Done>>,
) -> Next {
    futures::executor::block_on(std::future::poll_fn(|cx| {
        // The intake holds a sender: `done` never closes while it waits.
        if let Poll::Ready(Some(batch)) = done.poll_recv(cx) {
            return Poll::Ready(Next::Done(batch));
        }
        rx.poll_recv(cx).map(|ev| match ev {
            Some(ev) => Next::Change(ev),
            None => Next::Closed,
        })
    }))
}

/// Hands each of `batch` to the sequencer, which hands `deliver` every
/// outcome that is next in its stream; `Break` when `deliver` stops.
fn commit(
    order: &mut Sequencer<Outcome>,
    batch: Vec<Done>,
    deliver: &mut impl FnMut(Outcome) -> ControlFlow<()>,
) -> ControlFlow<()> {
    for done in batch {
        let (stream, item) = match done.outcome {
            Ok(o) => (o.stream.clone(), Some(o)),
            Err(stream) => (stream, None),
        };
        order.finish(&stream, done.seq, item, &mut *deliver)?;
    }
    ControlFlow::Continue(())
}

/// The intake thread's state: each watch's workers and each stream's next
/// number.
struct Intake {
    pools: BTreeMap<String, Pool>,
    /// Workers of replaced pools, finishing what they hold.
    retired: Vec<JoinHandle<()>>,
    tickets: Tickets,
    /// Where workers send what they finish.
    done: mpsc::UnboundedSender<Vec<Done>>,
    /// Changes without a chain (or run here), handed on at the next flush.
    direct: Vec<Done>,
    /// Keep each plugin's step in the outcomes (the decisions ring is on).
    trace: bool,
    /// Each stream's outcomes, handed on in intake order.
    order: Sequencer<Outcome>,
}

impl Intake {
    /// New chains: a pool keeps its workers and gets the new copies after
    /// what it has queued; a watch that has no plugins any more lets its
    /// workers finish and go.
    fn update(&mut self, update: ChainUpdate) {
        let mut old = std::mem::take(&mut self.pools);
        for watch in update.keep {
            if let Some(pool) = old.remove(&watch) {
                self.pools.insert(watch, pool);
            }
        }
        for (watch, copies) in update.chains {
            if copies.iter().all(Chain::is_empty) {
                continue;
            }
            let pool = match old.remove(&watch) {
                Some(mut pool) if pool.len() == copies.len() => {
                    pool.swap(copies);
                    pool
                }
                other => {
                    if let Some(p) = other {
                        self.retired.extend(p.retire());
                    }
                    Pool::start(&watch, copies, &self.done, self.trace)
                }
            };
            self.pools.insert(watch, pool);
        }
        // Their changes still in flight keep their place: the commit
        // orders by number, not by who finishes first.
        for pool in old.into_values() {
            self.retired.extend(pool.retire());
        }
        self.retired.retain(|t| !t.is_finished());
    }

    /// Hands what [`Intake::dispatch`] staged to the workers, and hands on
    /// the changes that need no chain. `Break(true)` when delivery stops the
    /// pipeline, `Break(false)` when a worker is gone.
    fn flush(&mut self, deliver: &mut impl FnMut(Outcome) -> ControlFlow<()>) -> ControlFlow<bool> {
        for pool in self.pools.values_mut() {
            if pool.flush().is_err() {
                return ControlFlow::Break(false);
            }
        }
        if !self.direct.is_empty() {
            let direct = std::mem::take(&mut self.direct);
            if commit(&mut self.order, direct, deliver).is_break() {
                return ControlFlow::Break(true);
            }
        }
        ControlFlow::Continue(())
    }

    /// Numbers an admitted change in its stream and stages it for its
    /// watch's worker, or to be handed on at the next flush.
    fn dispatch(&mut self, mut ev: ChangeEvent, record: Vec<crate::state::Op>, stages: &Stages) {
        // The identity is taken before the object moves into the chain: the
        // object itself is moved, never copied.
        let namespace = ev.namespace().map(str::to_string);
        let stream = crate::source::stream_key(
            &ev.watch,
            namespace.as_deref(),
            stages.scoped.contains(&ev.watch),
        );
        let seq = self.tickets.take(&stream);
        let name = ev.name().to_string();
        let uid = ev.uid().to_string();
        // The worker of the object: its uid, or (no uid) its name.
        let worker = self.pools.get(&ev.watch).map(|pool| {
            if uid.is_empty() {
                workers::shard(&format!("{namespace:?}/{name}"), pool.len())
            } else {
                workers::shard(&uid, pool.len())
            }
        });
        let data = EventData::of_docs(ev.change, std::mem::take(&mut ev.object), ev.old.take());
        let pending = Pending {
            seq,
            outcome: Outcome {
                change: ev.change,
                gvk: ev.gvk,
                watch: ev.watch,
                namespace,
                name,
                uid,
                observed_at: ev.observed_at,
                object: Default::default(),
                old: None,
                fate: Fate::Deliver { routes: vec![] },
                record,
                stream,
                plugins: Vec::new(),
            },
            data,
        };
        match (worker, self.pools.get_mut(&pending.outcome.watch)) {
            (Some(i), Some(pool)) => pool.stage(i, pending, &mut self.direct),
            _ => self.direct.push(workers::direct(pending)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    fn event(watch: &str, name: &str, rv: u64) -> ChangeEvent {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}"),
                         "resourceVersion": rv.to_string()}});
        let gvk = Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        };
        ChangeEvent::new(ChangeType::Modified, gvk, pod, None).with_watch(watch)
    }

    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    /// A pipeline with no chains whose deliveries land in the returned list;
    /// `stop_after`: delivery stops the pipeline at that many.
    fn start(stop_after: Option<usize>) -> (mpsc::Sender<ChangeEvent>, JoinHandle<()>, Seen) {
        let (tx, rx) = mpsc::channel(16);
        let (_updates_tx, updates) = std::sync::mpsc::channel();
        let seen = Seen::default();
        let out = seen.clone();
        let handle = spawn_with(
            rx,
            WorkerChains::new(),
            updates,
            Stages::default(),
            move |o| {
                let mut out = out.lock().unwrap();
                out.push((
                    o.watch.clone(),
                    o.name.clone(),
                    o.object.resource_version().unwrap_or_default().to_string(),
                ));
                if stop_after.is_some_and(|n| out.len() >= n) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .expect("pipeline thread");
        (tx, handle, seen)
    }

    #[test]
    fn changes_without_plugins_go_on_in_order_and_the_thread_ends_with_the_source() {
        let (tx, handle, seen) = start(None);
        // Sent from another thread as the source's tasks do, in bursts and
        // one at a time, over three watches.
        let sender = std::thread::spawn(move || {
            for rv in 1..=300u64 {
                let watch = ["a", "b", "c"][(rv % 3) as usize];
                tx.blocking_send(event(watch, &format!("p{}", rv % 7), rv))
                    .expect("pipeline running");
                if rv % 50 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        });
        sender.join().unwrap();
        handle
            .join()
            .expect("the pipeline thread ends once the source is gone");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 300, "every change handed on");
        for watch in ["a", "b", "c"] {
            let rvs: Vec<u64> = seen
                .iter()
                .filter(|(w, ..)| w == watch)
                .map(|(.., rv)| rv.parse().unwrap())
                .collect();
            assert_eq!(rvs.len(), 100);
            assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{watch}: {rvs:?}");
        }
    }

    #[test]
    fn delivery_that_stops_ends_the_pipeline_while_the_source_is_still_open() {
        let (tx, handle, seen) = start(Some(3));
        for rv in 1..=10u64 {
            // The pipeline may be gone before all are sent.
            if tx.blocking_send(event("a", "p", rv)).is_err() {
                break;
            }
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = handle.join();
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the pipeline thread ends though the source is open");
        assert_eq!(seen.lock().unwrap().len(), 3);
        drop(tx);
    }
}
