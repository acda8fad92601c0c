//! [`Store`] and [`Writer`]: the objects of one watch scope, ordered by
//! `(namespace, name)`.
//!
//! As in kube-rs' reflector: one `Writer`, owned by the source task, and any number of
//! cheap `Store` readers. Unlike it, objects are kept as [`CachedObject`]s (compact
//! JSON plus a small index) in a B-tree set ordered by key, so a one-namespace query
//! walks only that namespace, in the order pages are cut, with nothing to sort.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::object::{CachedObject, key_of};

/// A set entry, ordered (and looked up) by the object's key.
#[derive(Clone)]
struct Entry(Arc<CachedObject>);

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.0.key()
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key().cmp(other.0.key())
    }
}

type Set = BTreeSet<Entry>;

/// A reader of one scope's objects. Cheap to clone; every clone sees the writer's
/// changes at once.
#[derive(Clone, Default)]
pub(crate) struct Store {
    set: Arc<RwLock<Set>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("objects", &self.len())
            .finish()
    }
}

impl Store {
    fn read(&self) -> RwLockReadGuard<'_, Set> {
        // Every write is a single set operation; a panic cannot leave one half-done.
        self.set.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of objects.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// One object by namespace (`""` when cluster-scoped) and name.
    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<Arc<CachedObject>> {
        self.read()
            .get(key_of(namespace, name).as_str())
            .map(|e| e.0.clone())
    }

    /// The objects in `namespace` (all when `None`) whose `(namespace, name)` comes
    /// after `after` (from the start when `None`) and for which `keep` holds, in key
    /// order. The read lock is held while `keep` runs, so keep it cheap.
    pub(crate) fn select(
        &self,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        keep: impl Fn(&CachedObject) -> bool,
    ) -> Vec<Arc<CachedObject>> {
        let set = self.read();
        // `namespace \0` .. `namespace \x01`: every name in the namespace.
        let (ns_lo, ns_hi) = match namespace {
            Some(ns) => (
                Bound::Included(format!("{ns}\0")),
                Bound::Excluded(format!("{ns}\x01")),
            ),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        let lo = match after {
            Some((ns, name)) => {
                let k = key_of(ns, name);
                match &ns_lo {
                    Bound::Included(l) if l.as_str() > k.as_str() => ns_lo.clone(),
                    _ => Bound::Excluded(k),
                }
            }
            None => ns_lo,
        };
        let bounds = (
            lo.as_ref().map(String::as_str),
            ns_hi.as_ref().map(String::as_str),
        );
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h)) = bounds
            && l >= h
        {
            return Vec::new();
        }
        set.range::<str, _>(bounds)
            .filter(|e| keep(&e.0))
            .map(|e| e.0.clone())
            .collect()
    }

    /// Every object for which `keep` holds, in key order.
    #[cfg(test)]
    pub(crate) fn filter(&self, keep: impl Fn(&CachedObject) -> bool) -> Vec<Arc<CachedObject>> {
        self.select(None, None, keep)
    }
}

/// The one writer of a [`Store`]; the source task owns it.
#[derive(Default)]
pub(crate) struct Writer {
    store: Store,
}

impl Writer {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A reader of this writer's store.
    pub(crate) fn as_reader(&self) -> Store {
        self.store.clone()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Set> {
        self.store
            .set
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The object stored under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.store.read().get(key).map(|e| e.0.clone())
    }

    /// Stores `obj`, replacing (and returning) what was stored under its key.
    pub(crate) fn insert(&mut self, obj: Arc<CachedObject>) -> Option<Arc<CachedObject>> {
        self.write().replace(Entry(obj)).map(|e| e.0)
    }

    /// Removes (and returns) the object stored under `key`.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Arc<CachedObject>> {
        self.write().take(key).map(|e| e.0)
    }

    /// Every key now stored.
    pub(crate) fn keys(&self) -> Vec<Box<str>> {
        self.store.read().iter().map(|e| e.0.key().into()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::object::IndexFields;

    fn obj(ns: &str, name: &str) -> Arc<CachedObject> {
        Arc::new(CachedObject::new(
            ns,
            name,
            b"{}".to_vec().into(),
            &IndexFields::default(),
        ))
    }

    fn names(v: &[Arc<CachedObject>]) -> Vec<String> {
        v.iter()
            .map(|o| format!("{}/{}", o.namespace(), o.name()))
            .collect()
    }

    #[test]
    fn selects_by_namespace_and_resumes_after_a_key() {
        let mut w = Writer::new();
        for (ns, n) in [("b", "1"), ("a", "2"), ("a", "1"), ("ab", "0"), ("", "c")] {
            assert!(w.insert(obj(ns, n)).is_none());
        }
        assert!(w.insert(obj("a", "1")).is_some(), "replaced");
        let r = w.as_reader();
        assert_eq!(r.len(), 5);
        assert_eq!(
            names(&r.filter(|_| true)),
            ["/c", "a/1", "a/2", "ab/0", "b/1"]
        );
        assert_eq!(names(&r.select(Some("a"), None, |_| true)), ["a/1", "a/2"]);
        assert_eq!(
            names(&r.select(Some("a"), Some(("a", "1")), |_| true)),
            ["a/2"]
        );
        assert!(r.select(Some("a"), Some(("a", "2")), |_| true).is_empty());
        assert!(r.select(Some("a"), Some(("b", "")), |_| true).is_empty());
        assert_eq!(
            names(&r.select(Some("b"), Some(("a", "9")), |_| true)),
            ["b/1"]
        );
        assert_eq!(
            names(&r.select(None, Some(("a", "2")), |_| true)),
            ["ab/0", "b/1"]
        );
        assert!(r.select(Some("zz"), None, |_| true).is_empty());
        assert!(r.get("a", "2").is_some() && r.get("b", "2").is_none());
        assert!(w.remove(&key_of("a", "2")).is_some());
        assert_eq!(w.keys().len(), 4);
    }
}
