//! [`Dedup`]: the moka cache of the last state emitted per uid, and the
//! emit-or-drop decision.

use std::sync::atomic::{AtomicU64, Ordering};

use moka::ops::compute::Op;
use moka::sync::Cache;
use serde_json::Value;

use super::hash::{ObjectHash, ObjectHasher};
use super::settings::{DedupSettings, SettingsError};
use crate::change::ChangeType;

/// What to do with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new state: pass it on. The hash is the one now remembered for the
    /// uid; persist it with the object when the notification is recorded.
    Emit(ObjectHash),
    /// The state last emitted for this uid, or any change after the uid's
    /// DELETED was emitted: drop it.
    Duplicate,
}

impl Verdict {
    /// Whether the change is to be passed on.
    pub fn is_emit(self) -> bool {
        matches!(self, Verdict::Emit(_))
    }
}

/// Counters since the [`Dedup`] was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Changes passed on.
    pub emitted: u64,
    /// Changes dropped because their state equals the last emitted one.
    pub duplicates: u64,
    /// Changes dropped because the uid's DELETED was already emitted (a
    /// replayed delete, or a stale event after it).
    pub after_delete: u64,
}

/// What the cache remembers of a uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The hash of the last state emitted, and the resourceVersion it was
    /// last seen at (0: unknown). Same size as the hash alone (alignment).
    Live(ObjectHash, u64),
    /// Its DELETED was emitted; uids are never reused, so anything after it
    /// is a replay.
    Deleted,
}

/// The emit dedup stage: remembers, per uid, the hash of the last state
/// emitted, in a moka cache bounded by [`DedupSettings::capacity`] entries and
/// forgetting uids not observed for [`DedupSettings::ttl`] (moka's
/// time-to-idle: every observation, dropped or not, keeps the uid).
///
/// Thread-safe: decisions for one uid are serialised. Events of one object
/// must still be observed in the order the watch delivered them.
///
/// ```
/// use herald::change::ChangeType::*;
/// use herald::dedup::{Dedup, DedupSettings, Verdict};
/// use serde_json::json;
///
/// let dedup = Dedup::new(&DedupSettings::default()).unwrap();
/// let pod = json!({"metadata": {"uid": "u1", "resourceVersion": "1"}, "spec": {"x": 1}});
/// assert!(dedup.observe("u1", Added, &pod).is_emit());
/// // A relist, or the same state with a new resourceVersion: dropped.
/// let mut again = pod.clone();
/// again["metadata"]["resourceVersion"] = json!("2");
/// assert_eq!(dedup.observe("u1", Added, &again), Verdict::Duplicate);
/// assert!(dedup.observe("u1", Deleted, &again).is_emit());
/// assert_eq!(dedup.observe("u1", Deleted, &again), Verdict::Duplicate);
/// assert_eq!(dedup.stats().duplicates, 1);
/// assert_eq!(dedup.stats().after_delete, 1);
/// // Re-entering a label selector: the same uid as ADDED again is news.
/// assert!(dedup.observe("u1", Added, &again).is_emit());
/// ```
pub struct Dedup {
    hasher: ObjectHasher,
    cache: Cache<String, Slot>,
    emitted: AtomicU64,
    duplicates: AtomicU64,
    after_delete: AtomicU64,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("entries", &self.cache.entry_count())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Dedup {
    /// An empty dedup stage.
    ///
    /// # Errors
    ///
    /// An `exclude` pointer that does not parse.
    pub fn new(settings: &DedupSettings) -> Result<Self, SettingsError> {
        let hasher = settings.hasher()?;
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_idle(settings.ttl)
            .build();
        Ok(Dedup {
            hasher,
            cache,
            emitted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            after_delete: AtomicU64::new(0),
        })
    }

    /// The hash of `obj` as dedup compares it.
    pub fn hash(&self, obj: &Value) -> ObjectHash {
        self.hasher.hash(obj)
    }

    /// [`Dedup::hash`] of the JSON document `json`, read straight from the
    /// bytes (no `Value` is built): the same hash as `hash(&from_slice(json)?)`.
    ///
    /// # Errors
    ///
    /// `json` is not a JSON document: serde_json's error, as `from_slice` gives it.
    pub fn hash_json(&self, json: &[u8]) -> serde_json::Result<ObjectHash> {
        self.hasher.hash_json(json)
    }

    /// The hash of a state as it flows through the pipeline: from its stored
    /// bytes while it is them (no tree is built), else from its tree.
    pub fn hash_doc(&self, doc: &crate::change::Doc) -> ObjectHash {
        if let Some(json) = doc.raw_json() {
            match self.hasher.hash_json(json) {
                Ok(h) => return h,
                // The bytes are ones the cache wrote from parsed JSON.
                Err(error) => {
                    tracing::error!(%error, "stored object does not parse; hashing its tree")
                }
            }
        }
        self.hasher.hash(doc)
    }

    /// Decides whether a change of `uid` to `obj` is passed on, and remembers
    /// it if so:
    ///
    /// - ADDED / MODIFIED: emitted when the hash differs from the last emitted
    ///   one or the uid is unknown; an ADDED of a known uid with the same hash
    ///   (a relist) and a MODIFIED with the same hash (a resync, a
    ///   resourceVersion-only update) are duplicates.
    /// - DELETED: emitted once; the uid is then remembered as deleted, so a
    ///   replayed DELETED, or any later event of the uid, is a duplicate.
    ///
    /// An empty uid is not remembered: its changes are always emitted.
    pub fn observe(&self, uid: &str, change: ChangeType, obj: &Value) -> Verdict {
        self.observe_hash(uid, change, self.hasher.hash(obj))
    }

    /// [`Dedup::observe`] with the hash already computed.
    pub fn observe_hash(&self, uid: &str, change: ChangeType, hash: ObjectHash) -> Verdict {
        self.observe_hash_at(uid, change, hash, 0)
    }

    /// [`Dedup::observe_hash`] of the state at resourceVersion `rv` (0:
    /// unknown), which an emitted state is remembered with: a resync that
    /// offers the same version again is then known unchanged without a hash
    /// ([`Dedup::holds`]).
    pub fn observe_hash_at(
        &self,
        uid: &str,
        change: ChangeType,
        hash: ObjectHash,
        rv: u64,
    ) -> Verdict {
        if uid.is_empty() {
            return self.count(Verdict::Emit(hash), false);
        }
        let deleted = change == ChangeType::Deleted;
        // Fast path, no lock and no allocation: the common resync and relist
        // case. `get` also keeps the entry alive (time-to-idle).
        let added = change == ChangeType::Added;
        match self.cache.get(uid) {
            // An object that left a label or field selector comes back with
            // the same uid as ADDED: that is news. A replayed DELETED or
            // MODIFIED after the delete is not.
            Some(Slot::Deleted) if !added => return self.count(Verdict::Duplicate, true),
            Some(Slot::Live(h, _)) if h == hash && !deleted => {
                return self.count(Verdict::Duplicate, false);
            }
            _ => {}
        }
        // Decide again under the uid's lock: another thread may have changed it.
        let mut verdict = (Verdict::Emit(hash), false);
        self.cache.entry_by_ref(uid).and_compute_with(|current| {
            match current.map(|e| e.into_value()) {
                Some(Slot::Deleted) if !added => {
                    verdict = (Verdict::Duplicate, true);
                    Op::Nop
                }
                Some(Slot::Live(h, _)) if h == hash && !deleted => {
                    verdict = (Verdict::Duplicate, false);
                    Op::Nop
                }
                _ if deleted => Op::Put(Slot::Deleted),
                _ => Op::Put(Slot::Live(hash, rv)),
            }
        });
        self.count(verdict.0, verdict.1)
    }

    /// Remembers `hash` as the last state emitted for `uid` without counting
    /// anything: warms the cache from the state dir at start.
    pub fn seed(&self, uid: &str, hash: ObjectHash) {
        self.seed_at(uid, hash, 0);
    }

    /// [`Dedup::seed`] of the state at resourceVersion `rv` (0: unknown).
    pub fn seed_at(&self, uid: &str, hash: ObjectHash, rv: u64) {
        if !uid.is_empty() {
            self.cache.insert(uid.to_string(), Slot::Live(hash, rv));
        }
    }

    /// Whether the state last emitted (or seeded) for `uid` is the one at
    /// resourceVersion `rv`: the API server gives every change a new one, so
    /// that state is unchanged and a resync need not hash it. Also keeps the
    /// entry alive, as an observation does.
    pub fn holds(&self, uid: &str, rv: u64) -> bool {
        rv != 0 && matches!(self.cache.get(uid), Some(Slot::Live(_, v)) if v == rv)
    }

    /// Forgets `uid` (its next change is emitted).
    pub fn forget(&self, uid: &str) {
        self.cache.invalidate(uid);
    }

    /// The hash last emitted for `uid`, if it is remembered and not deleted.
    pub(crate) fn last_emitted(&self, uid: &str) -> Option<ObjectHash> {
        match self.cache.get(uid) {
            Some(Slot::Live(h, _)) => Some(h),
            _ => None,
        }
    }

    /// Uids remembered, deleted ones included (moka's count: it lags behind
    /// inserts and evictions until its pending work runs).
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters.
    pub fn stats(&self) -> DedupStats {
        DedupStats {
            emitted: self.emitted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            after_delete: self.after_delete.load(Ordering::Relaxed),
        }
    }

    fn count(&self, verdict: Verdict, after_delete: bool) -> Verdict {
        let counter = match verdict {
            Verdict::Emit(_) => &self.emitted,
            Verdict::Duplicate if after_delete => &self.after_delete,
            Verdict::Duplicate => &self.duplicates,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ChangeEvent;
    use crate::change::ChangeType::*;
    use serde_json::json;
    use std::time::Duration;

    fn obj(x: u64, rv: u64) -> Value {
        json!({"metadata": {"uid": "u", "resourceVersion": rv.to_string()}, "spec": {"x": x}})
    }

    #[test]
    fn relist_resync_and_noise_are_dropped_changes_are_not() {
        let d = Dedup::new(&DedupSettings::default()).unwrap();
        assert!(d.observe("u", Added, &obj(1, 1)).is_emit());
        assert_eq!(d.observe("u", Added, &obj(1, 1)), Verdict::Duplicate); // relist
        assert_eq!(d.observe("u", Modified, &obj(1, 2)), Verdict::Duplicate); // rv only
        assert!(d.observe("u", Modified, &obj(2, 3)).is_emit());
        // back to an earlier state: a real change.
        assert!(d.observe("u", Modified, &obj(1, 4)).is_emit());
        // an ADDED of a known uid with a new state (relist after a missed change).
        assert!(d.observe("u", Added, &obj(3, 5)).is_emit());
        assert_eq!(d.last_emitted("u"), Some(d.hash(&obj(3, 0))));
        assert_eq!(
            d.stats(),
            DedupStats {
                emitted: 4,
                duplicates: 2,
                after_delete: 0
            }
        );
    }

    #[test]
    fn delete_is_emitted_once_even_with_the_same_state() {
        let d = Dedup::new(&DedupSettings::default()).unwrap();
        assert!(d.observe("u", Added, &obj(1, 1)).is_emit());
        assert!(d.observe("u", Deleted, &obj(1, 1)).is_emit());
        assert_eq!(d.observe("u", Deleted, &obj(1, 1)), Verdict::Duplicate);
        assert_eq!(d.observe("u", Modified, &obj(2, 2)), Verdict::Duplicate);
        assert_eq!(d.last_emitted("u"), None);
        assert_eq!(d.stats().after_delete, 2);
        // Back into a label selector: the same uid comes as ADDED, and that is news.
        assert!(d.observe("u", Added, &obj(1, 1)).is_emit());
        assert_eq!(d.observe("u", Added, &obj(1, 1)), Verdict::Duplicate);
        // a delete of an unknown uid is news.
        assert!(d.observe("v", Deleted, &obj(1, 1)).is_emit());
    }

    #[test]
    fn events_use_their_uid() {
        use crate::change::Gvk;
        let d = Dedup::new(&DedupSettings::default()).unwrap();
        let gvk = Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        };
        let ev = ChangeEvent::new(Added, gvk, obj(1, 1), None);
        assert!(d.observe(ev.uid(), ev.change, &ev.object).is_emit());
        assert_eq!(
            d.observe(ev.uid(), ev.change, &ev.object),
            Verdict::Duplicate
        );
        assert_eq!(d.last_emitted("u"), Some(d.hash(&obj(1, 1))));
    }

    #[test]
    fn concurrent_observers_emit_each_state_once() {
        // Four threads observe the same new state at the same moment, 50 times:
        // exactly one of them emits it each time.
        let d = Dedup::new(&DedupSettings::default()).unwrap();
        let states: Vec<Value> = (0..50).map(|i| obj(i, i)).collect();
        let barrier = std::sync::Barrier::new(4);
        let emitted: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0;
                        for st in &states {
                            barrier.wait();
                            n += u64::from(d.observe("u", Modified, st).is_emit());
                            barrier.wait();
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(emitted, 50);
        assert_eq!(d.stats().duplicates, 150);
    }

    #[test]
    fn seed_and_forget() {
        let d = Dedup::new(&DedupSettings::default()).unwrap();
        d.seed("u", d.hash(&obj(1, 1)));
        assert_eq!(d.observe("u", Added, &obj(1, 9)), Verdict::Duplicate);
        assert_eq!(d.stats().emitted, 0);
        d.forget("u");
        assert!(d.observe("u", Added, &obj(1, 9)).is_emit());
        // no uid: never remembered.
        assert!(d.observe("", Added, &obj(1, 1)).is_emit());
        assert!(d.observe("", Added, &obj(1, 1)).is_emit());
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn idle_uids_are_forgotten_and_re_emit() {
        let d = Dedup::new(&DedupSettings {
            ttl: Duration::from_millis(50),
            ..DedupSettings::default()
        })
        .unwrap();
        assert!(d.observe("u", Added, &obj(1, 1)).is_emit());
        // Observed within the ttl: kept, even though nothing is emitted.
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(d.observe("u", Modified, &obj(1, 1)), Verdict::Duplicate);
        }
        std::thread::sleep(Duration::from_millis(120));
        assert!(d.observe("u", Modified, &obj(1, 1)).is_emit());
    }

    #[test]
    fn capacity_bounds_the_cache() {
        let d = Dedup::new(&DedupSettings {
            capacity: 100,
            ..DedupSettings::default()
        })
        .unwrap();
        for i in 0..1000 {
            d.observe(&format!("u{i}"), Added, &obj(i, 1));
        }
        assert!(d.len() <= 100, "{}", d.len());
    }

    #[test]
    fn a_state_is_held_at_the_version_it_was_emitted_or_seeded_at() {
        let d = Dedup::new(&DedupSettings::default()).unwrap();
        let h = d.hash(&obj(1, 1));
        assert!(!d.holds("u", 5), "unknown uid");
        assert!(d.observe_hash_at("u", ChangeType::Added, h, 5).is_emit());
        assert!(d.holds("u", 5));
        assert!(!d.holds("u", 6), "another version may differ");
        assert!(!d.holds("u", 0), "0 is no version");
        // A duplicate at a new version does not move what is held...
        assert_eq!(
            d.observe_hash_at("u", ChangeType::Modified, h, 6),
            Verdict::Duplicate
        );
        assert!(d.holds("u", 5) && !d.holds("u", 6));
        // ...seeding it does (the resync path), and a new state replaces it.
        d.seed_at("u", h, 6);
        assert!(d.holds("u", 6));
        let h2 = d.hash(&obj(2, 1));
        assert!(
            d.observe_hash_at("u", ChangeType::Modified, h2, 7)
                .is_emit()
        );
        assert!(d.holds("u", 7) && !d.holds("u", 6));
        assert!(d.observe_hash_at("u", ChangeType::Deleted, h2, 8).is_emit());
        assert!(!d.holds("u", 8), "a deleted uid holds no state");
        // Without a version (a state-dir seed), nothing is held.
        d.seed("v", h);
        assert!(!d.holds("v", 0) && !d.holds("v", 1));
    }
}
