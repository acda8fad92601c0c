//! The gate between the pipeline and the sinks: per stream the delivered
//! watermark, and per outcome whether this replica hands it on (leading) or
//! keeps it for a later handover (standing by).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::pipeline::{Deliver, Outcome};

/// Per stream (watch and namespace: the unit in which the API server
/// orders resourceVersions), which versions are handed to the sinks and not
/// yet settled, and the highest handed.
#[derive(Debug, Default)]
pub struct Watermark {
    pub(super) streams: Mutex<BTreeMap<String, Stream>>,
}

#[derive(Debug, Default)]
pub(super) struct Stream {
    pub(super) unsettled: BTreeMap<u64, usize>,
    pub(super) highest: u64,
}

/// Held by a notification while any sink has it; settles its
/// resourceVersion when dropped.
pub(crate) struct Settle {
    pub(super) key: String,
    pub(super) rv: u64,
    pub(super) mark: Arc<Watermark>,
}

impl std::fmt::Debug for Settle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settle({} {})", self.key, self.rv)
    }
}

impl PartialEq for Settle {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        let mut streams = self.mark.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = streams.get_mut(&self.key)
            && let Some(n) = s.unsettled.get_mut(&self.rv)
        {
            *n -= 1;
            if *n == 0 {
                s.unsettled.remove(&self.rv);
            }
        }
    }
}

impl Watermark {
    /// Tracks a notification of stream `key` at `rv` until the returned
    /// token drops.
    pub(crate) fn begin(self: &Arc<Self>, key: &str, rv: u64) -> Arc<Settle> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let s = streams.entry(key.to_string()).or_default();
        *s.unsettled.entry(rv).or_default() += 1;
        s.highest = s.highest.max(rv);
        Arc::new(Settle {
            key: key.to_string(),
            rv,
            mark: self.clone(),
        })
    }

    /// Per stream, the highest resourceVersion at or below which everything
    /// is settled.
    pub fn value(&self) -> BTreeMap<String, u64> {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams
            .iter()
            .map(|(k, s)| {
                let v = match s.unsettled.keys().next() {
                    Some(lowest) => lowest.saturating_sub(1),
                    None => s.highest,
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// The stream an outcome belongs to (its checkpoint's key as well).
pub(super) fn stream_of(o: &Outcome) -> String {
    o.stream.clone()
}

pub(super) fn rv_of(o: &Outcome) -> Option<u64> {
    o.object.resource_version().and_then(|rv| rv.parse().ok())
}

/// Decides, notification by notification, whether this replica delivers.
/// Runs on its own thread; see the module docs.
pub struct Gate {
    leader: Arc<AtomicBool>,
    /// The watermark read from the Lease when leadership was won.
    resume_after: Arc<Mutex<BTreeMap<String, u64>>>,
    mark: Arc<Watermark>,
    kept: VecDeque<Kept>,
    /// Bytes the kept outcomes take.
    kept_bytes: usize,
    window: usize,
    budget: usize,
    leading: bool,
    evicted: u64,
}

/// An outcome a standby keeps: its object and previous state as compact
/// JSON (a parsed tree takes several times its JSON's size), the rest as it
/// is.
struct Kept {
    outcome: Outcome,
    object: Box<[u8]>,
    old: Option<Box<[u8]>>,
}

impl Kept {
    fn new(mut outcome: Outcome) -> Self {
        let json = |v: &crate::change::Doc| -> Box<[u8]> { v.to_json().into_boxed_slice() };
        let object = json(&std::mem::take(&mut outcome.object));
        let old = outcome.old.take().map(|o| json(&o));
        Kept {
            outcome,
            object,
            old,
        }
    }

    /// What it takes in memory, about.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Kept>()
            + self.object.len()
            + self.old.as_ref().map_or(0, |o| o.len())
            + self.outcome.name.len()
            + self.outcome.uid.len()
            + self.outcome.stream.len()
            + self.outcome.watch.len()
    }

    fn into_outcome(self) -> Outcome {
        let mut o = self.outcome;
        o.object = serde_json::from_slice(&self.object).unwrap_or_default();
        o.old = self.old.and_then(|old| serde_json::from_slice(&old).ok());
        o
    }
}

impl Gate {
    /// A gate that leads while `leader` says so; standing by, it keeps at
    /// most `window` outcomes taking at most `budget` bytes.
    pub fn new(
        leader: Arc<AtomicBool>,
        resume_after: Arc<Mutex<BTreeMap<String, u64>>>,
        mark: Arc<Watermark>,
        window: usize,
        budget: usize,
    ) -> Self {
        Gate {
            leader,
            resume_after,
            mark,
            kept: VecDeque::new(),
            kept_bytes: 0,
            window,
            budget,
            leading: false,
            evicted: 0,
        }
    }

    /// Outcomes kept for replay, and the bytes they take.
    pub fn kept(&self) -> (usize, usize) {
        (self.kept.len(), self.kept_bytes)
    }

    /// Hands `o` on (leading) or keeps it (standing by); with `None`, only
    /// notices a change of leadership.
    pub fn pass(&mut self, o: Option<Outcome>, sinks: &dyn Deliver) {
        let leader = self.leader.load(Ordering::Acquire);
        if leader && !self.leading {
            let after = self
                .resume_after
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let kept: Vec<Kept> = self.kept.drain(..).collect();
            self.kept_bytes = 0;
            let (mut replayed, mut skipped) = (0, 0);
            for k in kept.into_iter().map(Kept::into_outcome) {
                let done = after.get(&stream_of(&k)).copied().unwrap_or(0);
                if rv_of(&k).is_none_or(|rv| rv > done) {
                    replayed += 1;
                    self.deliver(k, sinks);
                } else {
                    skipped += 1;
                }
            }
            tracing::info!(
                replayed,
                skipped,
                "leading: replayed what the previous leader had not delivered"
            );
            if self.evicted > 0 {
                tracing::error!(
                    dropped = self.evicted,
                    "this replica kept only its last replayWindow notifications (or replayBytes of them) while standing by; older ones it could not replay"
                );
                self.evicted = 0;
            }
            self.leading = true;
        } else if !leader && self.leading {
            tracing::warn!("no longer leading: notifications are kept, not delivered");
            self.leading = false;
        }
        let Some(mut o) = o else { return };
        if self.leading {
            self.deliver(o, sinks);
        } else {
            // The state is emitted here too: keep this replica's record current.
            sinks.record_only(std::mem::take(&mut o.record));
            let k = Kept::new(o);
            let bytes = k.bytes();
            while !self.kept.is_empty()
                && (self.kept.len() >= self.window || self.kept_bytes + bytes > self.budget)
            {
                if let Some(old) = self.kept.pop_front() {
                    self.kept_bytes -= old.bytes();
                    self.evicted += 1;
                }
            }
            self.kept_bytes += bytes;
            self.kept.push_back(k);
        }
    }

    fn deliver(&self, o: Outcome, sinks: &dyn Deliver) {
        let settle = rv_of(&o).map(|rv| {
            let guard: Arc<dyn std::any::Any + Send + Sync> = self.mark.begin(&stream_of(&o), rv);
            guard
        });
        sinks.deliver(o, settle);
    }
}

/// What wakes the gate thread. Nearly every message is an outcome, so it is
/// not boxed (that would cost an allocation per change for nothing).
#[allow(clippy::large_enum_variant)]
pub(super) enum Wake {
    /// An outcome of the pipeline.
    Outcome(Outcome),
    /// Leadership changed (or may have): the gate reads the flag.
    Leadership,
    /// The pipeline is done: pass on what came before, then stop.
    Closed,
}

/// Hands the pipeline's outcomes to the gate thread. Dropping it stops the
/// thread, once it has passed on what was sent before.
pub(crate) struct GateSender(pub(super) SyncSender<Wake>);

impl GateSender {
    /// Sends `o` to the gate, waiting while its queue is full.
    ///
    /// # Errors
    /// The gate thread is gone; `o` is handed back.
    pub(crate) fn send(&self, o: Outcome) -> Result<(), Box<Outcome>> {
        crate::sync::send_or_wait(&self.0, Wake::Outcome(o)).map_err(|wake| match wake {
            Wake::Outcome(o) => Box::new(o),
            Wake::Leadership | Wake::Closed => unreachable!("sent an outcome"),
        })
    }
}

impl Drop for GateSender {
    fn drop(&mut self) {
        // The leadership forwarder holds a sender too: say so explicitly.
        let _ = crate::sync::send_or_wait(&self.0, Wake::Closed);
    }
}

/// The gate thread: sleeps until an outcome arrives or leadership changes.
pub(super) fn run(mut gate: Gate, rx: &Receiver<Wake>, sinks: &dyn Deliver) {
    while let Ok(wake) = rx.recv() {
        match wake {
            Wake::Outcome(o) => gate.pass(Some(o), sinks),
            Wake::Leadership => gate.pass(None, sinks),
            Wake::Closed => break,
        }
    }
}

/// Forwards each change of leadership (and the current one, once) to the
/// gate thread, until the election ends or the thread does. A change that
/// finds the gate's queue full is not forwarded: the gate reads the flag
/// with every outcome queued ahead anyway.
pub(super) async fn forward_leadership(
    mut changes: tokio::sync::watch::Receiver<bool>,
    tx: SyncSender<Wake>,
) {
    changes.mark_changed();
    while changes.changed().await.is_ok() {
        if let Err(std::sync::mpsc::TrySendError::Disconnected(_)) = tx.try_send(Wake::Leadership) {
            break;
        }
    }
}
