//! The send side of one sink: its lanes, and its overflow into the durable
//! outbox (`whenFull: spill`, and what the last run left) with the refill
//! task that hands spilled notifications back in order.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::delivery::{Item, Stats, lane_of};
use super::{Notification, Outbox, Ready, Receipt, SinkType, batch, notification};
pub(super) use crate::sync::lock;

/// The send side of one sink.
#[derive(Clone)]
pub(super) struct Handle {
    pub(super) kind: SinkType,
    pub(super) lanes: Vec<mpsc::Sender<Item>>,
    pub(super) stats: Arc<Stats>,
    pub(super) capacity: usize,
    pub(super) batch: Option<Arc<batch::Batch>>,
    /// Notifications waiting in the outbox (spilled, or resumed at start),
    /// shared with the refill task.
    pub(super) overflow: Arc<Overflow>,
    /// `whenFull: spill`.
    pub(super) spill_on_full: bool,
}

/// A sink's queue overflowed into the durable outbox: while `active`, every
/// new notification for the sink waits there too (so order holds), and the
/// refill task hands them to the lanes as room frees up. Kept across a
/// reconfiguration of the sink, so nothing spilled is stranded.
#[derive(Default)]
pub(super) struct Overflow {
    pub(super) state: Mutex<OverflowState>,
    pub(super) wake: tokio::sync::Notify,
}

#[derive(Default)]
pub(super) struct OverflowState {
    pub(super) active: bool,
    /// Spilled and not yet handed back, by id.
    pub(super) spilled: std::collections::HashMap<String, Spilled>,
    /// Bumped when the sink is rebuilt: an older refill task stops.
    pub(super) generation: u64,
}

/// What stays in memory of a spilled notification: its receipt (so whoever
/// waits on it, leader election's watermark, does not pass it) and its
/// outbox write.
pub(super) struct Spilled {
    pub(super) receipt: Option<Receipt>,
    pub(super) ready: Ready,
}

/// An outbox entry back as a queue item: already on disk, so ready at once.
pub(super) fn item_from_outbox(
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
pub(super) struct Refill {
    pub(super) name: String,
    pub(super) lanes: Vec<mpsc::WeakSender<Item>>,
    pub(super) stats: Arc<Stats>,
    pub(super) batch: Option<Arc<batch::Batch>>,
    pub(super) overflow: Arc<Overflow>,
    pub(super) outbox: Arc<dyn Outbox>,
    pub(super) generation: u64,
    /// With leader election: whether this replica leads, and when that
    /// changes.
    pub(super) leader: Option<watch::Receiver<bool>>,
}

/// Why a refill pass stopped.
enum Pass {
    /// Everything spilled is back in the lanes.
    Drained,
    /// The sink closed or was rebuilt: the task ends.
    Stop,
}

/// The refill task. It sleeps until something says there is work: a
/// spill, the outbox resumed at start, leadership won, the sink closed or
/// rebuilt (each wakes `overflow.wake` or the leader channel); no timer.
pub(super) async fn refill(mut r: Refill) {
    loop {
        // Registered before the checks, so a wake between them is not lost.
        let wake = r.overflow.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if r.lanes.iter().any(|l| l.strong_count() == 0)
            || lock(&r.overflow.state).generation != r.generation
        {
            return;
        }
        // A standby delivers nothing, the outbox included.
        let leading = r.leader.as_ref().is_none_or(|l| *l.borrow());
        let waiting = {
            let st = lock(&r.overflow.state);
            st.active || !st.spilled.is_empty()
        };
        if leading && waiting {
            match pass(&r).await {
                Pass::Drained => continue,
                Pass::Stop => return,
            }
        }
        let leader = r.leader.as_mut();
        tokio::select! {
            _ = &mut wake => {}
            changed = async {
                match leader {
                    Some(l) => l.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    // The election is gone (herald stops): the last word stands.
                    let last = r.leader.as_ref().is_none_or(|l| *l.borrow());
                    r.leader = None;
                    if !last {
                        return;
                    }
                }
            }
        }
    }
}

/// Hands everything spilled back to the lanes, in outbox order.
async fn pass(r: &Refill) -> Pass {
    let Refill {
        name,
        lanes,
        stats,
        batch,
        overflow,
        outbox,
        generation,
        ..
    } = r;
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
                return Pass::Drained;
            }
            st.spilled.keys().cloned().collect()
        };
        // Spilled entries are committed before they are read back.
        let o2 = outbox.clone();
        let _ = tokio::task::spawn_blocking(move || o2.flush()).await;
        let pending: Vec<(String, Vec<u8>)> = match outbox.pending(name) {
            Ok(all) => all
                .into_iter()
                .filter(|(id, _)| wanted.contains(id))
                .collect(),
            Err(e) => {
                // A retry after a read error, not a poll.
                tracing::error!(sink = name, "reading the outbox: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if pending.is_empty() {
            // Not on disk yet, or never written: wait for the writes (a
            // failed one means the notification is gone, and that is said).
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
            // Every write has settled; a short pause keeps an entry that
            // is still not readable from turning this into a busy loop.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        for (id, payload) in pending {
            // Claimed before it is sent: one refill task sends it, once.
            let claimed = {
                let mut st = lock(&overflow.state);
                if st.generation != *generation {
                    return Pass::Stop;
                }
                st.spilled.remove(&id)
            };
            let Some(claimed) = claimed else { continue };
            let item = match item_from_outbox(&payload, outbox, batch.as_ref(), claimed.receipt) {
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
                return Pass::Stop;
            };
            stats.depth.fetch_add(1, Ordering::Relaxed);
            if lane.send(item).await.is_err() {
                // Closed: it stays in the outbox for the next start.
                stats.depth.fetch_sub(1, Ordering::Relaxed);
                return Pass::Stop;
            }
        }
    }
}

impl Handle {
    /// Queues `item` on its object's lane, waiting while the lane is full
    /// (`whenFull: block`). False if the sink is closed.
    pub(super) fn send_blocking(&self, name: &str, item: Item) -> bool {
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
            self.overflow.wake.notify_waiters();
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
        if crate::sync::off_the_runtime(|| lane.blocking_send(item)).is_ok() {
            true
        } else {
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }
}
