//! The pipeline: takes changes off the source's channel and, on a thread of
//! its own (plugins are synchronous and fast), admits each (dedup, the
//! restart rewrite, the state record), runs it through its watch's chain, and
//! hands the outcome on; [`Delivery`] routes it, commits it with the record to
//! the outbox, and queues it at the sinks.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::mpsc;

mod deliver;
mod outbox;

pub use deliver::{Deliver, Delivery, Routes};
pub(crate) use outbox::state_outbox;

use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::plugin::{Chain, EventData, Fate};

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
    pub object: Value,
    /// The previous state, if any.
    pub old: Option<Value>,
    /// Where it goes.
    pub fate: Fate,
    /// With a state dir: the writes that record this state as emitted (or
    /// forget a deleted object) and advance the stream's checkpoint, to
    /// commit in one transaction with the outbox entries of the notification.
    pub record: Vec<crate::state::Op>,
    /// The watch stream it came from ([`crate::source::stream_key`]): the
    /// unit in which the API server orders resourceVersions.
    pub stream: String,
}

/// The stages before the plugins: emit dedup, and with a state dir the
/// record of what was emitted. Default: none.
#[derive(Default, Clone)]
pub struct Stages {
    /// Drops states already notified.
    pub dedup: Option<std::sync::Arc<crate::dedup::Dedup>>,
    /// The state dir's store (for `old` of a resync that finds a change).
    pub state: Option<std::sync::Arc<crate::state::StateStore>>,
    /// Counts dedup drops.
    pub metrics: Option<crate::metrics::Metrics>,
    /// With a state dir: the watches that have listed with it before (a
    /// quiet first list of theirs is a restart catch-up, which reports the
    /// objects the state does not know as new; of any other, a first start).
    pub history: std::collections::HashSet<String>,
    /// Watches of listed namespaces: one stream (and checkpoint) per namespace.
    pub scoped: std::collections::HashSet<String>,
}

impl Stages {
    /// The first stage every change goes through, as `herald run` runs it:
    /// dedup, and at a restart the rewrite of a first list against what the
    /// state dir recorded (a changed object becomes MODIFIED from its recorded
    /// state; a quiet one is recorded, not notified). `None` drops the event;
    /// otherwise the hash of the state to record (with dedup).
    pub fn admit(&self, ev: &mut ChangeEvent) -> Option<Option<crate::dedup::ObjectHash>> {
        use crate::dedup::Verdict;
        let Some(d) = &self.dedup else {
            return Some(None);
        };
        let uid = ev.uid().to_string();
        // A replayed change (a stream resumed after its checkpoint): the first
        // one of an object carries no previous state; the state dir has it,
        // and an ADDED of an object it recorded was created before the
        // checkpoint, notified, then changed.
        if ev.replayed
            && ev.old.is_none()
            && let Some(st) = &self.state
            && let Some(recorded) = st
                .object(&uid)
                .ok()
                .flatten()
                .and_then(|r| r.parse_object().ok())
        {
            if ev.change == ChangeType::Added {
                ev.change = ChangeType::Modified;
            }
            ev.old = Some(recorded);
        }
        let hash = d.hash(&ev.object);
        if ev.resync {
            match d.last_emitted(&uid) {
                // Never notified (listed silently at start): remember, do not notify.
                None => {
                    d.seed(&uid, hash);
                    return None;
                }
                Some(h) if h == hash => {
                    self.dropped(&ev.watch);
                    return None;
                }
                Some(_) => {
                    if ev.change == ChangeType::Added {
                        ev.change = ChangeType::Modified;
                    }
                    if ev.old.is_none()
                        && let Some(st) = &self.state
                    {
                        ev.old = st
                            .object(&uid)
                            .ok()
                            .flatten()
                            .and_then(|r| r.parse_object().ok());
                    }
                }
            }
        }
        // A first list (a state dir makes every watch report it). An object the
        // state recorded in another state changed while herald was down: a
        // modification, from the state it last recorded. One it never saw is
        // new, unless it is quiet: present at herald's start under
        // `initialList: silent` on a watch that has never listed with this
        // state dir. A quiet object is recorded, so that a restart tells it
        // apart from one created while herald was down, but not notified.
        if ev.initial && ev.change == ChangeType::Added {
            match d.last_emitted(&uid) {
                Some(h) if h != hash => {
                    if let Some(st) = &self.state {
                        ev.change = ChangeType::Modified;
                        ev.old = st
                            .object(&uid)
                            .ok()
                            .flatten()
                            .and_then(|r| r.parse_object().ok());
                    }
                }
                Some(_) => {}
                None if ev.quiet && !self.history.contains(&ev.watch) => {
                    d.seed(&uid, hash);
                    if let Some(st) = &self.state {
                        // Not waited for: a quiet record that is lost in a crash
                        // costs one ADDED at the next start, no more.
                        drop(st.submit(self.record(ev, Some(hash))));
                    }
                    return None;
                }
                None => {}
            }
        }
        match d.observe_hash(&uid, ev.change, hash) {
            Verdict::Duplicate => {
                self.dropped(&ev.watch);
                None
            }
            Verdict::Emit(h) => Some(Some(h)),
        }
    }

    fn dropped(&self, watch: &str) {
        if let Some(m) = &self.metrics {
            m.dedup_dropped(watch);
        }
    }

    /// The writes recording an emitted state: the object's record and the
    /// stream's checkpoint (what a restart resumes after).
    fn record(
        &self,
        ev: &ChangeEvent,
        hash: Option<crate::dedup::ObjectHash>,
    ) -> Vec<crate::state::Op> {
        let (Some(_), Some(hash)) = (&self.state, hash) else {
            return vec![];
        };
        let mut ops = Vec::with_capacity(2);
        match ev.change {
            ChangeType::Deleted => ops.push(crate::state::Op::RemoveObject {
                uid: ev.uid().to_string(),
            }),
            _ => match crate::state::ObjectRecord::from_event(ev, hash) {
                Ok(r) => ops.push(crate::state::Op::PutObject(r)),
                Err(e) => {
                    tracing::error!(name = ev.name(), "cannot record the emitted state: {e}");
                }
            },
        }
        // A resync or a first list is not a position in the watch stream.
        if !ev.resync
            && !ev.initial
            && let Some(rv) = crate::change::resource_version(&ev.object)
        {
            ops.push(crate::state::Op::Checkpoint {
                key: crate::source::stream_key(
                    &ev.watch,
                    ev.namespace(),
                    self.scoped.contains(&ev.watch),
                ),
                rv,
            });
        }
        ops
    }
}

/// Starts the pipeline's thread. `chains` are keyed by watch id; a watch
/// without a chain delivers its changes as they are. New chains arrive on
/// `updates` and apply between two events: an event runs wholly on the
/// chains it started with, the next one on the newest sent, and the old ones
/// are dropped on the pipeline's thread. `stages` admit each change first
/// (dedup, the state record). `deliver` sees every outcome, in order, and
/// stops the thread by returning `Break`. The thread ends when every sender
/// of `rx` is gone.
pub fn spawn_with(
    mut rx: mpsc::Receiver<ChangeEvent>,
    mut chains: BTreeMap<String, Chain>,
    updates: std::sync::mpsc::Receiver<BTreeMap<String, Chain>>,
    stages: Stages,
    mut deliver: impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("herald-pipeline".into())
        .spawn(move || {
            while let Some(mut ev) = rx.blocking_recv() {
                while let Ok(newer) = updates.try_recv() {
                    chains = newer;
                }
                let Some(hash) = stages.admit(&mut ev) else {
                    continue;
                };
                // Built before the object moves into the chain.
                let record = stages.record(&ev, hash);
                // The identity is taken before the object moves into the
                // chain: the object itself is moved, never copied.
                let namespace = ev.namespace().map(str::to_string);
                let stream = crate::source::stream_key(
                    &ev.watch,
                    namespace.as_deref(),
                    stages.scoped.contains(&ev.watch),
                );
                let name = ev.name().to_string();
                let uid = ev.uid().to_string();
                let data = EventData::new(ev.change, std::mem::take(&mut ev.object), ev.old.take());
                let (event, fate) = match chains.get_mut(&ev.watch) {
                    Some(chain) => match chain.run(vec![data]).pop() {
                        Some(o) => (o.event, o.fate),
                        None => continue,
                    },
                    None => (data, Fate::Deliver { routes: vec![] }),
                };
                let outcome = Outcome {
                    change: ev.change,
                    gvk: ev.gvk,
                    watch: ev.watch,
                    namespace,
                    name,
                    uid,
                    observed_at: ev.observed_at,
                    object: event.object,
                    old: event.old,
                    fate,
                    record,
                    stream,
                };
                if deliver(outcome).is_break() {
                    break;
                }
            }
        })
}
