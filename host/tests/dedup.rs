//! Property test of the pipeline's admission stage as `herald run` runs it
//! (`herald::pipeline::Stages::admit`: dedup, and the restart rewrite of a
//! first list): 100k random sequences of add / modify / noise-only modify /
//! delete / relist / resync / replay / restart over a few objects, checked
//! against a model of the cluster:
//!
//! - each distinct emitted state of an object is notified once: two
//!   notifications of a uid in a row never carry the same state, nothing
//!   follows a DELETED, and a notification always carries the object's
//!   current state;
//! - every real change is notified: after each delivered event of an object,
//!   and after the catch-up that follows a restart, the last state notified
//!   for it is its state in the cluster.
//!
//! A restart forgets the uids and seeds dedup from a model of the state dir
//! (the records of what was emitted), as `app::Herald::start` does, changes
//! the cluster while "down", then runs what production runs: the watch's
//! quiet first list through `Stages::admit` (marked `initial` and `quiet`, the
//! watch having listed before), then the deletions `herald::state::vanished`
//! finds (the restart catch-up of `app/restart.rs`). A resync is offered as
//! `app/restart.rs` offers it (`resync`).
//!
//! `HERALD_DEDUP_SEED=n` picks another base seed; a failure prints the seed of
//! its sequence and the operations that led to it.

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;

use herald::change::{ChangeEvent, ChangeType, Gvk};
use herald::dedup::{Dedup, DedupSettings, Verdict};
use herald::pipeline::Stages;
use herald::state::{ObjectRecord, vanished};
use serde_json::{Value, json};

const SEQUENCES: u64 = 100_000;
const OPS: usize = 14;
const MAX_OBJECTS: usize = 3;
/// A configured exclusion, on top of resourceVersion and managedFields.
const EXCLUDE: &str = "/status/heartbeat";

/// splitmix64: small, seedable, good enough for picking operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One object of the model cluster.
struct Obj {
    uid: String,
    /// The real state: what a notification must carry.
    content: u8,
    /// Changes without a real change: resourceVersion, managedFields, heartbeat.
    rv: u64,
    alive: bool,
    /// Events delivered since the last restart, for replays.
    history: Vec<(ChangeType, Value)>,
}

impl Obj {
    fn json(&self) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"uid": self.uid, "name": self.uid, "namespace": "ns",
                "resourceVersion": self.rv.to_string(),
                "managedFields": [{"manager": "m", "time": format!("t{}", self.rv)}]},
            "data": {"content": self.content},
            "status": {"heartbeat": self.rv}
        })
    }
}

/// What was notified for a uid last: its content, or that it was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notified {
    State(u8),
    Deleted,
}

/// How an event reaches the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// A watch event (or a relist's).
    Watch,
    /// A watch event the API server sends again (a resumed stream).
    Replay,
    /// The periodic resync.
    Resync,
    /// The quiet first list after a restart.
    FirstList,
    /// The restart catch-up's deletions.
    CatchUp,
}

struct World<'d> {
    rng: Rng,
    /// Shared by a batch of sequences (building a moka cache costs more than
    /// a whole sequence); uids carry the seed, so sequences never meet.
    dedup: &'d Dedup,
    /// The admission stage, over `dedup`, as `herald run` builds it for a
    /// watch that has listed with its state dir before.
    stages: &'d Stages,
    seed: u64,
    objects: Vec<Obj>,
    next_uid: usize,
    notified: BTreeMap<String, Notified>,
    /// The state dir, as the pipeline would keep it: a record per emitted uid.
    stored: BTreeMap<String, ObjectRecord>,
    log: Vec<Entry>,
}

/// The operations log, formatted only when a check fails.
enum Entry {
    Op(&'static str, usize),
    Event(ChangeType, String, u8, Verdict),
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Op(what, n) => write!(f, "{what} {n}"),
            Entry::Event(change, uid, content, verdict) => {
                write!(f, "  {change} {uid} content={content} -> {verdict:?}")
            }
        }
    }
}

fn settings() -> DedupSettings {
    DedupSettings {
        ttl: Duration::from_secs(3600),
        capacity: 1_000_000,
        exclude: vec![EXCLUDE.into()],
    }
}

fn gvk() -> Gvk {
    Gvk {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
    }
}

fn content_of(v: &Value) -> u8 {
    v["data"]["content"].as_u64().expect("content") as u8
}

impl<'d> World<'d> {
    fn new(seed: u64, dedup: &'d Dedup, stages: &'d Stages) -> Self {
        World {
            rng: Rng(seed),
            dedup,
            stages,
            seed,
            objects: Vec::new(),
            next_uid: 0,
            notified: BTreeMap::new(),
            stored: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn fail(&self, msg: String) -> ! {
        let log: Vec<String> = self.log.iter().map(Entry::to_string).collect();
        panic!("{msg}\noperations:\n  {}", log.join("\n  "));
    }

    /// Runs one event through the admission stage, checks the verdict
    /// against the model and records what a notification would persist.
    fn deliver(&mut self, i: usize, change: ChangeType, obj: Value, how: How) {
        let uid = self.objects[i].uid.clone();
        if how == How::Watch {
            self.objects[i].history.push((change, obj.clone()));
        }
        // As the source hands it on: the stored bytes, which dedup hashes
        // without parsing.
        let stored = herald::change::Doc::stored(std::sync::Arc::new(
            herald::cache::CachedObject::from_value(&obj),
        ));
        let mut ev = ChangeEvent::of_docs(change, gvk(), stored, None).with_watch("w");
        ev.initial = how == How::FirstList;
        ev.quiet = how == How::FirstList;
        ev.resync = how == How::Resync;
        let verdict = match self.stages.admit(&mut ev) {
            Some(Some(hash)) => Verdict::Emit(hash),
            Some(None) => unreachable!("dedup is on"),
            None => Verdict::Duplicate,
        };
        // What goes on is what the stage made of it (a restart may rewrite
        // an ADDED as MODIFIED).
        let (change, obj) = (ev.change, ev.object);
        self.log
            .push(Entry::Event(change, uid.clone(), content_of(&obj), verdict));
        let prev = self.notified.get(&uid).copied();
        let o = &self.objects[i];
        if let Verdict::Emit(hash) = verdict {
            if prev == Some(Notified::Deleted) {
                self.fail(format!("{uid}: notified after its DELETED"));
            }
            let now = if change == ChangeType::Deleted {
                if o.alive {
                    self.fail(format!("{uid}: DELETED notified for a live object"));
                }
                Notified::Deleted
            } else {
                if !o.alive || content_of(&obj) != o.content {
                    self.fail(format!("{uid}: notified a state it is not in"));
                }
                Notified::State(o.content)
            };
            if prev == Some(now) {
                self.fail(format!("{uid}: the same state notified twice in a row"));
            }
            self.notified.insert(uid.clone(), now);
            if change == ChangeType::Deleted {
                self.stored.remove(&uid);
            } else {
                let ev = ChangeEvent::of_docs(change, gvk(), obj, None).with_watch("w");
                self.stored
                    .insert(uid.clone(), ObjectRecord::from_event(&ev, hash).unwrap());
            }
        }
        self.check_in_sync(i);
    }

    /// Every real change is notified: the last notification of the object is
    /// its current state (objects never notified and already gone excepted).
    fn check_in_sync(&self, i: usize) {
        let o = &self.objects[i];
        let want = if o.alive {
            Some(Notified::State(o.content))
        } else {
            Some(Notified::Deleted)
        };
        let got = self.notified.get(&o.uid).copied();
        // An object created and deleted while herald was down was never notified.
        let never_seen = got.is_none() && !o.alive;
        if got != want && !never_seen {
            self.fail(format!(
                "{}: last notified {got:?}, cluster has {want:?}",
                o.uid
            ));
        }
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.objects.len())
            .filter(|&i| self.objects[i].alive)
            .collect()
    }

    fn pick_alive(&mut self) -> Option<usize> {
        let alive = self.alive();
        (!alive.is_empty()).then(|| alive[self.rng.below(alive.len())])
    }

    /// A cluster change; delivered as a watch event unless herald is down.
    /// Returns the object and the event, if anything changed.
    fn mutate(&mut self, kind: usize) -> Option<(usize, ChangeType, Value)> {
        match kind {
            // create
            0 => {
                if self.alive().len() >= MAX_OBJECTS {
                    return None;
                }
                self.next_uid += 1;
                let content = self.rng.below(3) as u8;
                self.objects.push(Obj {
                    uid: format!("s{}-u{}", self.seed, self.next_uid),
                    content,
                    rv: 1,
                    alive: true,
                    history: Vec::new(),
                });
                let i = self.objects.len() - 1;
                Some((i, ChangeType::Added, self.objects[i].json()))
            }
            // a real change (possibly back to an earlier state)
            1 => {
                let i = self.pick_alive()?;
                let o = &mut self.objects[i];
                o.content = (o.content + 1 + self.rng.below(2) as u8) % 3;
                o.rv += 1;
                Some((i, ChangeType::Modified, self.objects[i].json()))
            }
            // noise only
            2 => {
                let i = self.pick_alive()?;
                self.objects[i].rv += 1;
                Some((i, ChangeType::Modified, self.objects[i].json()))
            }
            // delete (the final state may carry noise)
            _ => {
                let i = self.pick_alive()?;
                let o = &mut self.objects[i];
                o.alive = false;
                o.rv += self.rng.below(2) as u64;
                Some((i, ChangeType::Deleted, self.objects[i].json()))
            }
        }
    }

    fn step(&mut self) {
        let op = self.rng.below(10);
        match op {
            0..=4 => {
                let kind = self.rng.below(4);
                if let Some((i, change, obj)) = self.mutate(kind) {
                    self.log.push(Entry::Op("change", kind));
                    self.deliver(i, change, obj, How::Watch);
                }
            }
            5 => {
                // relist: every live object as ADDED
                self.log.push(Entry::Op("relist", 0));
                for i in self.alive() {
                    let obj = self.objects[i].json();
                    self.deliver(i, ChangeType::Added, obj, How::Watch);
                }
            }
            6 => {
                // resync: every live object as MODIFIED
                self.log.push(Entry::Op("resync", 0));
                for i in self.alive() {
                    let obj = self.objects[i].json();
                    self.deliver(i, ChangeType::Modified, obj, How::Resync);
                }
            }
            7 | 8 => {
                // replay: the last event of a live object, any event of a deleted one
                if self.objects.is_empty() {
                    return;
                }
                let i = self.rng.below(self.objects.len());
                let h = &self.objects[i].history;
                if h.is_empty() {
                    return;
                }
                let k = if self.objects[i].alive {
                    h.len() - 1
                } else {
                    // A deleted object's ADDED is not replayed by a watch:
                    // an ADDED of a known uid after its delete is a real
                    // re-entry (a label selector), notified again.
                    let k = self.rng.below(h.len());
                    if h[k].0 == ChangeType::Added {
                        return;
                    }
                    k
                };
                let (change, obj) = h[k].clone();
                self.log.push(Entry::Op("replay event", k));
                self.deliver(i, change, obj, How::Replay);
            }
            _ => self.restart(),
        }
    }

    /// herald stops, the cluster changes meanwhile, herald starts from its
    /// state dir: seed, catch up, then the watch's first list.
    fn restart(&mut self) {
        self.log.push(Entry::Op("restart", 0));
        for _ in 0..self.rng.below(4) {
            let kind = self.rng.below(4);
            if self.mutate(kind).is_some() {
                self.log.push(Entry::Op("  while down: change", kind));
            }
        }
        for o in &mut self.objects {
            o.history.clear();
        }
        // A new process: nothing of this sequence's uids is remembered but
        // what the state dir seeds.
        for o in &self.objects {
            self.dedup.forget(&o.uid);
        }
        for (uid, rec) in &self.stored {
            self.dedup.seed(uid, rec.hash);
        }
        // The watch's first list, quiet: what changed while herald was down
        // is notified, what did not is not.
        for i in self.alive() {
            let obj = self.objects[i].json();
            self.deliver(i, ChangeType::Added, obj, How::FirstList);
        }
        // Then the catch-up: what the state recorded and the list no longer has.
        let listed: std::collections::HashSet<String> = self
            .alive()
            .into_iter()
            .map(|i| self.objects[i].uid.clone())
            .collect();
        let listed: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
        let stored: Vec<_> = self.stored.values().cloned().map(Ok).collect();
        for ev in vanished("w", stored, &listed).unwrap() {
            let i = self
                .objects
                .iter()
                .position(|o| o.uid == ev.uid())
                .expect("a known uid");
            self.deliver(i, ev.change, ev.object.into_value(), How::CatchUp);
        }
        for i in 0..self.objects.len() {
            self.check_in_sync(i);
        }
    }
}

#[test]
fn each_distinct_state_is_notified_once_and_every_change_is_notified() {
    let base: u64 = std::env::var("HERALD_DEDUP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4e_7a1d);
    let (mut emitted, mut dropped) = (0, 0);
    let stages_for = |dedup: &Arc<Dedup>| Stages {
        dedup: Some(dedup.clone()),
        history: ["w".to_string()].into(),
        ..Stages::default()
    };
    let mut dedup = Arc::new(Dedup::new(&settings()).unwrap());
    let mut stages = stages_for(&dedup);
    for n in 0..SEQUENCES {
        if n % 512 == 0 {
            let s = dedup.stats();
            emitted += s.emitted;
            dropped += s.duplicates + s.after_delete;
            dedup = Arc::new(Dedup::new(&settings()).unwrap());
            stages = stages_for(&dedup);
        }
        let seed = base.wrapping_add(n);
        let mut w = World::new(seed, &dedup, &stages);
        w.log.push(Entry::Op("seed", seed as usize));
        for _ in 0..OPS {
            w.step();
        }
    }
    let s = dedup.stats();
    emitted += s.emitted;
    dropped += s.duplicates + s.after_delete;
    // Both branches were exercised a lot.
    assert!(
        emitted > SEQUENCES && dropped > SEQUENCES,
        "{emitted} / {dropped}"
    );
}
