//! The pipeline: takes changes off the source's channel, admits each
//! (dedup, the restart rewrite, the state record), runs it through its
//! watch's plugin chain, and hands the outcomes on; [`Delivery`] routes them,
//! commits each with its record to the outbox, and queues it at the sinks.
//!
//! # Threads and order
//!
//! ```text
//!  source ──▶ pipeline task ──▶ chain workers (per watch with plugins,
//!             admit, number      `pipeline.workers` threads, sharded by
//!             per stream         object uid)
//!                  ▲                      │
//!                  └── finished changes ◀─┘
//!             hand on per stream in order ──▶ deliver
//!             (watches without plugins: at once)
//! ```
//!
//! - **Intake** (a task on the async runtime; without a multi-thread
//!   runtime, a thread `herald-pipeline`): admission stays in one place, in
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
//!   finished back to the pipeline task (never waiting: that channel has
//!   no bound, and what is in it is bounded by the workers' queues).
//! - **Commit** (in the pipeline task too): outcomes are handed on per
//!   stream strictly in intake order (`order.rs`), whichever worker finished
//!   first. So everything downstream sees each stream as a one-thread
//!   pipeline would: records and checkpoints are submitted in stream order (a
//!   checkpoint never passes a change whose record and outbox entries are
//!   not submitted before it, in the same or an earlier transaction), the
//!   outbox and the sinks get one object's notifications in order, and the
//!   HA gate's watermark rises in order. Streams are independent: one
//!   waiting for a slow chain holds up no other. Admission and commit share
//!   the task, and the task shares the runtime with the source's tasks and
//!   the sinks' lanes, so that a change crosses as few threads as it can: a
//!   watch without plugins goes from the source's task to the sinks without
//!   a thread switch (tokio runs a task woken by the running one next, on
//!   the same thread), a watch with plugins through one worker and back. At
//!   a real API server's pace, when changes come one at a time, a switch is
//!   most of what a hop costs (BENCHMARKS.md). The task takes finished
//!   changes before new ones.
//! - **Waits** (a worker's full queue, a `whenFull: block` sink, the state
//!   writer's full queue, the HA gate's): the task hands the runtime's other
//!   tasks to another thread first ([`crate::sync::off_the_runtime`]), so
//!   the watches' reads, the other sinks and the APIs go on meanwhile, even
//!   with one runtime worker. A panic in the pipeline ends herald (non-zero
//!   exit), rather than leaving it watching with nothing to hand changes to.
//!
//! Chains are swapped between two changes: a change runs wholly on the
//! chains its worker had when it reached it, the next on the newest sent.
//! Old chains are dropped on the worker that ran them.
//!
//! # Limits
//! The intake takes what the source has queued (up to 64 changes), admits
//! it, and hands each worker its share in one go; a worker hands its results
//! back in one go too. A burst costs each hop one wake-up, not one per
//! change; a lone change goes on at once. After a full hand-over the task
//! yields, so a burst (a relist) holds up the runtime's other tasks on its
//! thread for one hand-over's admissions at a time, not for the whole burst.
//!
//! A worker queues at most 1,024 hand-overs (1,024 changes or more); a watch
//! whose chain is slower than its changes for longer than that makes the
//! pipeline wait, and with it every watch (back-pressure to the API
//! server, as before). A sink that blocks (`whenFull: block`) makes it wait
//! too. The
//! circuit breaker (`plugins.breaker`) keeps a failing plugin from being that
//! slow for long.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::thread::JoinHandle;

use serde::Deserialize;
use tokio::sync::mpsc;

mod admit;
mod deliver;
mod intake;
mod order;
mod outbox;
mod workers;

pub use admit::Stages;
pub use deliver::{Addressed, Deliver, Delivery, Routes, address};
pub(crate) use outbox::state_outbox;

use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::plugin::{Chain, Fate, LoadError};

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

/// The running pipeline: a task on the async runtime, or a thread of its
/// own where there is no multi-thread runtime to run on (see
/// [`spawn_with`]).
pub struct Running {
    on: On,
    /// Resolves once the pipeline's loop has returned or panicked (its
    /// sender is dropped either way); `None`: not known.
    ended: Option<tokio::sync::oneshot::Receiver<()>>,
}

enum On {
    Task(tokio::task::JoinHandle<()>),
    Thread(JoinHandle<()>),
}

impl Running {
    /// A pipeline-like thread (`herald record`'s), whose end is not
    /// signalled.
    pub fn thread(t: JoinHandle<()>) -> Running {
        Running {
            on: On::Thread(t),
            ended: None,
        }
    }

    /// Waits for the pipeline to end: it blocks, so call it off the
    /// runtime. `Err` with the panic's payload when it panicked.
    pub fn join(self) -> std::thread::Result<()> {
        match self.on {
            On::Task(t) => futures::executor::block_on(t).map_err(|e| match e.try_into_panic() {
                Ok(payload) => payload,
                Err(e) => Box::new(e.to_string()),
            }),
            On::Thread(t) => t.join(),
        }
    }

    /// Completes when the pipeline ends, by returning or by a panic (never,
    /// for [`Running::thread`]).
    pub async fn ended(&mut self) {
        match self.ended.as_mut() {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Starts the pipeline (see the module docs). `chains` are keyed by watch
/// id, one copy per worker; a watch without a chain (or with an empty one)
/// delivers its changes as they are. New chains arrive on `updates`.
/// `stages` admit each change first (dedup, the state record). `deliver`
/// sees every outcome, each stream's in order, on the pipeline's task,
/// and stops the pipeline by returning `Break`. The pipeline ends when every
/// sender of `rx` is gone, once every change it took has been handed to
/// `deliver`.
///
/// On a multi-thread async runtime (herald's) the pipeline is a task there:
/// a change goes from the source's task to the sinks' without a thread
/// switch, and where something in it may wait (a full worker queue, a
/// `whenFull: block` sink, the state writer's queue) the runtime's other
/// tasks are handed to another thread first ([`crate::sync::off_the_runtime`]).
/// Elsewhere (no runtime, or one thread) it gets a thread of its own.
pub fn spawn_with(
    rx: mpsc::Receiver<ChangeEvent>,
    chains: WorkerChains,
    updates: std::sync::mpsc::Receiver<ChainUpdate>,
    stages: Stages,
    deliver: impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static,
) -> std::io::Result<Running> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // Dropped when the loop returns or unwinds: `Running::ended` resolves.
    let (signal, ended) = tokio::sync::oneshot::channel::<()>();
    let run = async move {
        let _signal = signal;
        intake::run(rx, chains, updates, stages, deliver).await;
    };
    let on = match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => On::Task(h.spawn(run)),
        _ => On::Thread(
            std::thread::Builder::new()
                .name("herald-pipeline".into())
                .spawn(move || futures::executor::block_on(run))?,
        ),
    };
    Ok(Running {
        on,
        ended: Some(ended),
    })
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
    fn start(stop_after: Option<usize>) -> (mpsc::Sender<ChangeEvent>, Running, Seen) {
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

    /// On herald's runtime the pipeline is a task: what it delivers is in
    /// order, and its end is signalled, whether the source closed or
    /// delivery panicked (which `join` reports).
    #[test]
    fn on_a_multi_thread_runtime_it_is_a_task_whose_end_is_signalled_even_by_a_panic() {
        let rt = crate::sync::one_worker_runtime();
        rt.block_on(async {
            for boom in [false, true] {
                let (tx, rx) = mpsc::channel(16);
                let (_updates_tx, updates) = std::sync::mpsc::channel();
                let seen = Seen::default();
                let out = seen.clone();
                let mut running = spawn_with(
                    rx,
                    WorkerChains::new(),
                    updates,
                    Stages::default(),
                    move |o| {
                        assert_ne!(o.name, "boom", "delivery fails on purpose");
                        out.lock().unwrap().push((
                            o.watch.clone(),
                            o.name.clone(),
                            o.object.resource_version().unwrap_or_default().to_string(),
                        ));
                        ControlFlow::Continue(())
                    },
                )
                .expect("pipeline");
                assert!(matches!(running.on, On::Task(_)), "a task, not a thread");
                for rv in 1..=50u64 {
                    tx.send(event("a", &format!("p{}", rv % 7), rv))
                        .await
                        .expect("pipeline running");
                }
                let wait = std::time::Duration::from_millis(200);
                assert!(
                    tokio::time::timeout(wait, running.ended()).await.is_err(),
                    "ended while the source is open"
                );
                if boom {
                    tx.send(event("a", "boom", 51)).await.expect("running");
                } else {
                    drop(tx);
                }
                tokio::time::timeout(std::time::Duration::from_secs(10), running.ended())
                    .await
                    .expect("its end is signalled");
                let rvs: Vec<u64> = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(.., rv)| rv.parse().unwrap())
                    .collect();
                assert_eq!(rvs, (1..=50).collect::<Vec<_>>(), "in order, all of them");
                let joined = tokio::task::spawn_blocking(move || running.join())
                    .await
                    .expect("join");
                assert_eq!(joined.is_err(), boom, "join reports the panic, and only it");
            }
        });
    }

    /// A burst already queued (a relist) is taken a hand-over at a time, and
    /// the task yields between them: another task on the runtime's one
    /// worker keeps ticking while the pipeline works through it.
    #[test]
    fn a_burst_lets_the_runtimes_other_tasks_run_between_hand_overs() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let rt = crate::sync::one_worker_runtime();
        let ticks = Arc::new(AtomicU32::new(0));
        let (delivered, during) = rt.block_on(async {
            let t = ticks.clone();
            tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            });
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            // 4,000 changes queued before the pipeline starts; each takes
            // 50 µs to deliver (about 200 ms in all).
            let (tx, rx) = mpsc::channel(4096);
            for rv in 1..=4000u64 {
                tx.try_send(event("a", &format!("p{rv}"), rv))
                    .expect("room");
            }
            drop(tx);
            let (_updates_tx, updates) = std::sync::mpsc::channel();
            let delivered = Arc::new(AtomicU32::new(0));
            let count = delivered.clone();
            let before = ticks.load(Ordering::Relaxed);
            let mut running = spawn_with(
                rx,
                WorkerChains::new(),
                updates,
                Stages::default(),
                move |_| {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                    count.fetch_add(1, Ordering::Relaxed);
                    ControlFlow::Continue(())
                },
            )
            .expect("pipeline");
            running.ended().await;
            (
                delivered.load(Ordering::Relaxed),
                ticks.load(Ordering::Relaxed) - before,
            )
        });
        assert_eq!(delivered, 4000);
        // About one tick per hand-over of 64 (62 of them); none if the
        // pipeline held the worker for the whole burst.
        assert!(
            during >= 20,
            "the other task ticked {during} times while 4,000 changes went through"
        );
    }
}
