//! The object store: one global resourceVersion (like etcd's revision), per-type objects
//! in key order, a bounded history of changes, and reads at past resourceVersions.
//!
//! Writes are serialised by one lock, as etcd serialises them. History is kept per type
//! (so a watch scans only its own type) and trimmed globally: once more than
//! `retention` events exist, the oldest go and every resourceVersion before them is
//! compacted, answering `410 Expired` thereafter.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::error::ApiError;
use crate::object::{Key, Obj};
use crate::types::GroupResource;

/// What a change did to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeType {
    /// `ADDED`, `MODIFIED` or `DELETED`, as in watch events.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One write, as recorded in [`Sim::change_log`](crate::Sim::change_log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `metadata.uid`.
    pub uid: String,
    /// The resourceVersion the write produced.
    pub resource_version: u64,
    /// What happened.
    pub change_type: ChangeType,
    /// Namespace, `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// Kind. Example: `Pod`.
    pub kind: String,
    /// API group; empty for core.
    pub group: String,
}

/// One entry of a type's history.
#[derive(Debug)]
pub struct HistEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub change: ChangeType,
    /// The object after the change; for a delete, its last state stamped with `rv`.
    pub obj: Arc<Obj>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<Obj>>,
}

/// The outcome a write closure asks for.
pub enum Write {
    /// Store this object (create or update).
    Put(Obj),
    /// Remove the object; this is its final state, stamped with the new resourceVersion.
    Delete(Obj),
    /// Nothing changed; answer with the current object.
    Unchanged(Arc<Obj>),
}

/// The result of a committed (or skipped) write.
pub struct Written {
    /// The object as stored (or as deleted).
    pub obj: Arc<Obj>,
    /// `None` when the write changed nothing.
    pub change: Option<ChangeType>,
}

#[derive(Default)]
struct TypeStore {
    kind: String,
    objects: BTreeMap<Key, Arc<Obj>>,
    history: VecDeque<Arc<HistEvent>>,
}

struct Inner {
    rv: u64,
    /// Every resourceVersion below this is gone from history.
    compacted: u64,
    retention: usize,
    order: VecDeque<(u64, usize)>,
    types: Vec<TypeStore>,
    index: HashMap<GroupResource, usize>,
    change_log: Vec<Change>,
}

impl Inner {
    fn type_idx(&mut self, gr: &GroupResource, kind: &str) -> usize {
        if let Some(&i) = self.index.get(gr) {
            if self.types[i].kind.is_empty() {
                self.types[i].kind = kind.to_string();
            }
            return i;
        }
        self.types.push(TypeStore {
            kind: kind.to_string(),
            ..Default::default()
        });
        let i = self.types.len() - 1;
        self.index.insert(gr.clone(), i);
        i
    }

    fn trim(&mut self) {
        while self.order.len() > self.retention {
            let Some((rv, t)) = self.order.pop_front() else {
                break;
            };
            self.types[t].history.pop_front();
            self.compacted = self.compacted.max(rv);
        }
    }

    fn check_not_compacted(&self, rv: u64) -> Result<(), ApiError> {
        if rv < self.compacted {
            Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted
            )))
        } else {
            Ok(())
        }
    }
}

/// A page of a list.
pub struct Page {
    /// The resourceVersion the list is consistent at.
    pub rv: u64,
    /// Matching objects in key order.
    pub items: Vec<Arc<Obj>>,
    /// Key of the last item, when more objects follow.
    pub next: Option<Key>,
    /// Objects in range at `rv`, counting every page (without selectors).
    pub total: usize,
}

/// What a list asks for.
pub struct ListQuery<'a> {
    /// Namespace to restrict to.
    pub namespace: Option<&'a str>,
    /// Read at this resourceVersion (`None`: the current one).
    pub at: Option<u64>,
    /// Start after this key.
    pub after: Option<&'a Key>,
    /// At most this many items.
    pub limit: Option<usize>,
    /// Total carried over from the first page, if known.
    pub total: Option<usize>,
}

/// Events of one type after a resourceVersion, for a watch to send.
pub struct Catchup {
    /// Events in order.
    pub events: Vec<Arc<HistEvent>>,
    /// The global resourceVersion when they were read.
    pub current: u64,
    /// Whether more events are waiting beyond `events`.
    pub more: bool,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    notify: watch::Sender<u64>,
}

impl Store {
    /// An empty store keeping `retention` events of history.
    pub fn new(retention: usize) -> Self {
        let (notify, _) = watch::channel(0);
        Self {
            inner: Mutex::new(Inner {
                rv: 0,
                compacted: 0,
                retention: retention.max(1),
                order: VecDeque::new(),
                types: Vec::new(),
                index: HashMap::new(),
                change_log: Vec::new(),
            }),
            notify,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is
        // applied in one step), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that changes whenever the resourceVersion moves (or [`Store::poke`]).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// Wakes every watch without writing (used by fault injection and type removal).
    pub fn poke(&self) {
        self.notify.send_modify(|_| {});
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// The oldest resourceVersion a watch may still start from.
    pub fn compacted_rv(&self) -> u64 {
        self.lock().compacted
    }

    /// Drops all history: every resourceVersion before the current one expires.
    pub fn compact(&self) {
        let mut g = self.lock();
        g.order.clear();
        for t in &mut g.types {
            t.history.clear();
        }
        g.compacted = g.rv;
        drop(g);
        self.poke();
    }

    /// Every write so far, in order.
    pub fn change_log(&self) -> Vec<Change> {
        self.lock().change_log.clone()
    }

    /// The current object at `key`.
    pub fn get(&self, gr: &GroupResource, key: &Key) -> Option<Arc<Obj>> {
        let g = self.lock();
        let i = *g.index.get(gr)?;
        g.types[i].objects.get(key).cloned()
    }

    /// Number of objects of a type.
    pub fn count(&self, gr: &GroupResource) -> usize {
        let g = self.lock();
        g.index
            .get(gr)
            .map(|&i| g.types[i].objects.len())
            .unwrap_or(0)
    }

    /// Atomically reads the current object at `key`, lets `f` decide the write given the
    /// next resourceVersion, and commits it.
    ///
    /// With `dry_run`, the outcome is computed and returned but not stored.
    pub fn write(
        &self,
        gr: &GroupResource,
        kind: &str,
        key: &Key,
        dry_run: bool,
        f: impl FnOnce(Option<&Arc<Obj>>, u64) -> Result<Write, ApiError>,
    ) -> Result<Written, ApiError> {
        let mut g = self.lock();
        let t = g.type_idx(gr, kind);
        let next_rv = g.rv + 1;
        let current = g.types[t].objects.get(key).cloned();
        let outcome = f(current.as_ref(), next_rv)?;
        if dry_run {
            return Ok(match outcome {
                Write::Unchanged(o) => Written {
                    obj: o,
                    change: None,
                },
                Write::Put(o) => Written {
                    obj: Arc::new(o),
                    change: Some(if current.is_some() {
                        ChangeType::Modified
                    } else {
                        ChangeType::Added
                    }),
                },
                Write::Delete(o) => Written {
                    obj: Arc::new(o),
                    change: Some(ChangeType::Deleted),
                },
            });
        }
        let (obj, change) = match outcome {
            Write::Unchanged(o) => {
                return Ok(Written {
                    obj: o,
                    change: None,
                });
            }
            Write::Put(o) => {
                let o = Arc::new(o);
                g.types[t].objects.insert(key.clone(), o.clone());
                let change = if current.is_some() {
                    ChangeType::Modified
                } else {
                    ChangeType::Added
                };
                (o, change)
            }
            Write::Delete(o) => {
                g.types[t].objects.remove(key);
                (Arc::new(o), ChangeType::Deleted)
            }
        };
        g.rv = next_rv;
        let ev = Arc::new(HistEvent {
            rv: next_rv,
            change,
            obj: obj.clone(),
            prev: current,
        });
        g.types[t].history.push_back(ev);
        g.order.push_back((next_rv, t));
        g.trim();
        let kind = g.types[t].kind.clone();
        g.change_log.push(Change {
            uid: obj.uid.clone(),
            resource_version: next_rv,
            change_type: change,
            namespace: (!obj.namespace().is_empty()).then(|| obj.namespace().to_string()),
            name: obj.name().to_string(),
            kind,
            group: gr.group.clone(),
        });
        drop(g);
        self.notify.send_replace(next_rv);
        Ok(Written {
            obj,
            change: Some(change),
        })
    }

    /// Every (type, key) of an object in namespace `ns`, across all types.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<(GroupResource, String, Key)> {
        let g = self.lock();
        let mut out = Vec::new();
        for (gr, &i) in &g.index {
            let t = &g.types[i];
            let start = (ns.to_string(), String::new());
            for (k, _) in t.objects.range(start..).take_while(|(k, _)| k.0 == ns) {
                out.push((gr.clone(), t.kind.clone(), k.clone()));
            }
        }
        out
    }

    /// Keys of every current object of a type in `namespace` (all when `None`).
    pub fn keys(&self, gr: &GroupResource, namespace: Option<&str>) -> Vec<Key> {
        let g = self.lock();
        let Some(&i) = g.index.get(gr) else {
            return Vec::new();
        };
        g.types[i]
            .objects
            .keys()
            .filter(|k| namespace.is_none_or(|ns| k.0 == ns))
            .cloned()
            .collect()
    }

    /// A page of objects as of `q.at`, filtered by `filter`.
    ///
    /// Past states are rebuilt from history: the state of a key at `rv` is the `prev`
    /// of the first event after `rv` that touched it.
    ///
    /// # Errors
    /// `410 Expired` if `q.at` is older than retained history; `504` if it is in the future.
    pub fn list(
        &self,
        gr: &GroupResource,
        q: &ListQuery<'_>,
        filter: impl Fn(&Obj) -> bool,
        filtered: bool,
    ) -> Result<Page, ApiError> {
        let g = self.lock();
        let at = q.at.unwrap_or(g.rv);
        if at > g.rv {
            return Err(too_large(at, g.rv));
        }
        if at < g.rv {
            g.check_not_compacted(at)?;
        }
        let Some(&ti) = g.index.get(gr) else {
            return Ok(Page {
                rv: at,
                items: Vec::new(),
                next: None,
                total: 0,
            });
        };
        let t = &g.types[ti];
        let mut overrides: BTreeMap<&Key, Option<&Arc<Obj>>> = BTreeMap::new();
        if at < g.rv {
            for ev in t.history.iter().rev() {
                if ev.rv <= at {
                    break;
                }
                // Keys of events are the objects' own keys; borrow them from the objects.
                overrides.insert(&ev.obj.key, ev.prev.as_ref());
            }
        }
        let ns_start: Key;
        let lower: Bound<&Key> = match (q.after, q.namespace) {
            (Some(k), _) => Bound::Excluded(k),
            (None, Some(ns)) => {
                ns_start = (ns.to_string(), String::new());
                Bound::Included(&ns_start)
            }
            (None, None) => Bound::Unbounded,
        };
        let in_ns = |k: &Key| q.namespace.is_none_or(|ns| k.0 == ns);
        let total = match q.total {
            Some(t) => t,
            None => {
                let mut n = match q.namespace {
                    None => t.objects.len(),
                    Some(ns) => t
                        .objects
                        .range::<Key, _>((
                            Bound::Included(&(ns.to_string(), String::new())),
                            Bound::Unbounded,
                        ))
                        .take_while(|(k, _)| k.0 == ns)
                        .count(),
                };
                for (k, past) in &overrides {
                    if !in_ns(k) {
                        continue;
                    }
                    let now = t.objects.contains_key(*k);
                    match (now, past.is_some()) {
                        (true, false) => n -= 1,
                        (false, true) => n += 1,
                        _ => {}
                    }
                }
                n
            }
        };
        let mut cur = t
            .objects
            .range::<Key, _>((lower, Bound::Unbounded))
            .peekable();
        let mut ovr = overrides
            .range::<Key, _>((lower, Bound::Unbounded))
            .peekable();
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut next = None;
        loop {
            // Merge the current objects with the rebuilt past ones, in key order; a past
            // state replaces the current one for the same key.
            let take_past = match (cur.peek(), ovr.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((ck, _)), Some((pk, _))) => {
                    let (ck, pk): (&Key, &Key) = (ck, pk);
                    match pk.cmp(ck) {
                        std::cmp::Ordering::Less => true,
                        std::cmp::Ordering::Greater => false,
                        std::cmp::Ordering::Equal => {
                            // The past state replaces the current one: skip the current.
                            cur.next();
                            true
                        }
                    }
                }
            };
            let (key, obj): (&Key, Option<&Arc<Obj>>) = if take_past {
                match ovr.next() {
                    Some((k, o)) => (*k, *o),
                    None => break,
                }
            } else {
                match cur.next() {
                    Some((k, o)) => (k, Some(o)),
                    None => break,
                }
            };
            if !in_ns(key) {
                if q.namespace.is_some_and(|ns| key.0.as_str() > ns) {
                    break;
                }
                continue;
            }
            let Some(obj) = obj else { continue };
            if items.len() == limit {
                // More keys remain in range: the server hands out a continue token even
                // if none of them would match, as etcd paging does.
                next = items.last().map(|o: &Arc<Obj>| o.key.clone());
                break;
            }
            if !filtered || filter(obj) {
                items.push(obj.clone());
            }
        }
        Ok(Page {
            rv: at,
            items,
            next,
            total,
        })
    }

    /// Every current object of a type in `namespace`, with the resourceVersion read at.
    pub fn snapshot(&self, gr: &GroupResource, namespace: Option<&str>) -> (Vec<Arc<Obj>>, u64) {
        let g = self.lock();
        let Some(&i) = g.index.get(gr) else {
            return (Vec::new(), g.rv);
        };
        let objs = g.types[i]
            .objects
            .values()
            .filter(|o| namespace.is_none_or(|ns| o.namespace() == ns))
            .cloned()
            .collect();
        (objs, g.rv)
    }

    /// Up to `max` events of a type after `after`.
    ///
    /// # Errors
    /// `410 Expired` when events after `after` are no longer in history.
    pub fn events_after(
        &self,
        gr: &GroupResource,
        after: u64,
        max: usize,
    ) -> Result<Catchup, ApiError> {
        let g = self.lock();
        g.check_not_compacted(after)?;
        let Some(&i) = g.index.get(gr) else {
            return Ok(Catchup {
                events: Vec::new(),
                current: g.rv,
                more: false,
            });
        };
        let h = &g.types[i].history;
        let start = h.partition_point(|e| e.rv <= after);
        let end = h.len().min(start.saturating_add(max));
        Ok(Catchup {
            events: h.range(start..end).cloned().collect(),
            current: g.rv,
            more: end < h.len(),
        })
    }
}

/// 504 for a resourceVersion the server has not reached.
pub fn too_large(rv: u64, current: u64) -> ApiError {
    let mut e = ApiError::new(
        504,
        "Timeout",
        format!("Too large resource version: {rv}, current: {current}"),
    );
    e.details = Some(serde_json::json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1
    }));
    e
}
