//! The pipeline's loop: takes changes off the source's channel, admits
//! each, numbers it in its stream and stages it for its watch's chain
//! workers (or hands it on at once), and commits what the workers finish,
//! each stream in order (see the module docs of [`super`]).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::task::Poll;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::change::ChangeEvent;
use crate::plugin::{Chain, EventData, Fate};

use super::order::{Sequencer, Tickets};
use super::workers::{self, Done, Pending, Pool};
use super::{ChainUpdate, HAND_OVER, Outcome, Stages, WorkerChains};

/// The pipeline's loop (see the module docs).
pub(super) async fn run(
    mut rx: mpsc::Receiver<ChangeEvent>,
    chains: WorkerChains,
    updates: std::sync::mpsc::Receiver<ChainUpdate>,
    stages: Stages,
    mut deliver: impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static,
) {
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
        let first = match next(&mut rx, &mut done_rx).await {
            Next::Change(ev) => ev,
            Next::Done(batch) => {
                if commit(&mut intake.order, batch, &mut deliver).is_break() {
                    break 'run true;
                }
                continue;
            }
            Next::Closed => break 'run false,
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
        if taken >= HAND_OVER {
            // More may be queued (a relist's burst): the runtime's other
            // tasks on this thread get their turn every hand-over.
            tokio::task::yield_now().await;
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
    // When delivery stopped the pipeline, the workers' results have nowhere
    // to go: dropped first, so the workers stop at their next.
    let mut done_rx = (!stopped).then_some(done_rx);
    for pool in pools.into_values() {
        retired.extend(pool.retire());
    }
    if let Some(rx) = done_rx.as_mut() {
        while let Some(batch) = rx.recv().await {
            if commit(&mut order, batch, &mut deliver).is_break() {
                break;
            }
        }
    }
    drop(done_rx);
    crate::sync::off_the_runtime(|| {
        for t in retired {
            let _ = t.join();
        }
    });
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

/// Waits until the workers finish something or the source sends a change
/// (finished work first).
async fn next(
    rx: &mut mpsc::Receiver<ChangeEvent>,
    done: &mut mpsc::UnboundedReceiver<Vec<Done>>,
) -> Next {
    std::future::poll_fn(|cx| {
        // The intake holds a sender: `done` never closes while it waits.
        if let Poll::Ready(Some(batch)) = done.poll_recv(cx) {
            return Poll::Ready(Next::Done(batch));
        }
        rx.poll_recv(cx).map(|ev| match ev {
            Some(ev) => Next::Change(ev),
            None => Next::Closed,
        })
    })
    .await
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
