//! Admission, on the intake thread in arrival order: emit dedup, the
//! restart rewrite, and the state record of what is emitted.

use crate::change::{ChangeEvent, ChangeType};

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
    /// Keeps what was decided about each change (duplicates here; the
    /// rest at delivery), and has the chains trace each plugin's step.
    pub decisions: Option<crate::decisions::Decisions>,
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
            ev.old = Some(recorded.into());
        }
        // The resourceVersion the state is remembered at (0: not a number).
        let rv: u64 = ev.resource_version().parse().unwrap_or(0);
        // A resync of the version dedup holds: unchanged, nothing to hash.
        if ev.resync && d.holds(&uid, rv) {
            self.dropped(&ev.watch);
            return None;
        }
        let hash = d.hash_doc(&ev.object);
        if ev.resync {
            match d.last_emitted(&uid) {
                // Never notified (listed silently at start): remember, do not notify.
                None => {
                    d.seed_at(&uid, hash, rv);
                    return None;
                }
                Some(h) if h == hash => {
                    // Unchanged at a new version: remember the version.
                    d.seed_at(&uid, hash, rv);
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
                            .and_then(|r| r.parse_object().ok())
                            .map(crate::change::Doc::from);
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
                            .and_then(|r| r.parse_object().ok())
                            .map(crate::change::Doc::from);
                    }
                }
                Some(_) => {}
                None if ev.quiet && !self.history.contains(&ev.watch) => {
                    d.seed_at(&uid, hash, rv);
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
        match d.observe_hash_at(&uid, ev.change, hash, rv) {
            Verdict::Duplicate => {
                self.dropped(&ev.watch);
                self.duplicate(ev, &uid);
                None
            }
            Verdict::Emit(h) => Some(Some(h)),
        }
    }

    /// Keeps the decision about a duplicate the API server sent (a resync's
    /// are not kept: nothing happened).
    fn duplicate(&self, ev: &ChangeEvent, uid: &str) {
        let Some(ring) = &self.decisions else { return };
        let mut d = crate::decisions::Decision::new(
            &ev.watch,
            ev.change,
            &ev.gvk,
            ev.namespace(),
            ev.name(),
            uid,
            ev.resource_version(),
            ev.observed_at,
        );
        d.fate = crate::decisions::fate::DUPLICATE;
        d.step = "dedup";
        d.dedup = "already notified";
        d.reason = format!("already notified: dedup holds this state of uid {uid:?}");
        ring.record(d);
    }

    fn dropped(&self, watch: &str) {
        if let Some(m) = &self.metrics {
            m.dedup_dropped(watch);
        }
    }

    /// The writes recording an emitted state: the object's record and the
    /// stream's checkpoint (what a restart resumes after).
    pub(super) fn record(
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
            && let Some(rv) = ev.resource_version().parse().ok()
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
