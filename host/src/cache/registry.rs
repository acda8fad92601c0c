//! [`Cache`]: which stores exist, keyed by watch, and lookups by resource or kind.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use kube::api::ApiResource;

use super::object::CachedObject;
use super::store::Store;

/// The readers of one watch: one store per namespace scope of the watch (a watch of
/// all namespaces has one). Cheap to clone.
#[derive(Clone)]
pub struct CachedType {
    /// Id of the watch that fills these stores.
    pub watch: String,
    /// The resolved resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// Whether objects of this type live in namespaces.
    pub namespaced: bool,
    /// One store per namespace scope; their namespaces never overlap.
    pub(crate) stores: Vec<Store>,
}

impl std::fmt::Debug for CachedType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedType")
            .field("watch", &self.watch)
            .field("resource", &self.resource)
            .field("namespaced", &self.namespaced)
            .field("objects", &self.len())
            .finish()
    }
}

impl CachedType {
    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.stores.iter().map(Store::len).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One object by namespace (ignored for cluster-scoped types) and name.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<CachedObject>> {
        let ns = if self.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        self.stores.iter().find_map(|s| s.get(ns, name))
    }

    /// Every object for which `keep` holds. The store's read lock is held while
    /// `keep` runs, so keep it cheap.
    pub fn filter(&self, keep: impl Fn(&CachedObject) -> bool) -> Vec<Arc<CachedObject>> {
        self.select(None, None, keep)
    }

    /// The objects in `namespace` (all when `None`) after `after` (see
    /// [`Store::select`]) for which `keep` holds; in key order within each store.
    pub(crate) fn select(
        &self,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        keep: impl Fn(&CachedObject) -> bool,
    ) -> Vec<Arc<CachedObject>> {
        let mut out = Vec::new();
        for s in &self.stores {
            out.extend(s.select(namespace, after, &keep));
        }
        out
    }
}

/// `(namespace, name)` of an object; the namespace is `""` when cluster-scoped.
pub(crate) fn object_key(obj: &CachedObject) -> (&str, &str) {
    obj.key_pair()
}

/// The registry of cached types, shared by the source (which registers the readers of
/// the stores it writes) and the query API (which reads them). Cheap to clone.
#[derive(Clone, Default)]
pub struct Cache {
    types: Arc<RwLock<BTreeMap<String, CachedType>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.all()).finish()
    }
}

impl Cache {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CachedType>> {
        // The map is only ever replaced entry by entry, so a panic elsewhere cannot
        // leave it half-written.
        self.types.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or replaces) the stores of a watch.
    pub(crate) fn insert(&self, t: CachedType) {
        self.types
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(t.watch.clone(), t);
    }

    /// Forgets the stores of a watch.
    pub(crate) fn remove(&self, watch: &str) -> Option<CachedType> {
        self.types
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(watch)
    }

    /// The stores of one watch.
    pub fn get(&self, watch: &str) -> Option<CachedType> {
        self.read().get(watch).cloned()
    }

    /// Every cached type, by watch id.
    pub fn all(&self) -> Vec<CachedType> {
        self.read().values().cloned().collect()
    }

    /// The watches of `group` (empty for core), `version` and `resource`, which may be
    /// the plural (`deployments`) or the kind (`Deployment`, any case).
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Vec<CachedType> {
        self.read()
            .values()
            .filter(|t| {
                t.resource.group == group
                    && t.resource.version == version
                    && (t.resource.plural.eq_ignore_ascii_case(resource)
                        || t.resource.kind.eq_ignore_ascii_case(resource))
            })
            .cloned()
            .collect()
    }

    /// The plural of the type `find` would answer (a plural or a kind in a
    /// path), without cloning the watches.
    pub(crate) fn plural_of(&self, group: &str, version: &str, resource: &str) -> Option<String> {
        self.read()
            .values()
            .find(|t| {
                t.resource.group == group
                    && t.resource.version == version
                    && (t.resource.plural.eq_ignore_ascii_case(resource)
                        || t.resource.kind.eq_ignore_ascii_case(resource))
            })
            .map(|t| t.resource.plural.clone())
    }

    /// The watches of a kind in a group, at any version.
    pub(crate) fn find_kind(&self, group: &str, kind: &str) -> Vec<CachedType> {
        self.read()
            .values()
            .filter(|t| t.resource.group == group && t.resource.kind == kind)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::object::IndexFields;
    use crate::cache::store::Writer;

    fn pods() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        }
    }

    #[test]
    fn finds_by_plural_or_kind_and_reads_objects() {
        let mut w = Writer::new();
        let json = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"default","resourceVersion":"1"}}"#;
        let fields = IndexFields {
            resource_version: Some("1".into()),
            ..IndexFields::default()
        };
        w.insert(Arc::new(CachedObject::new(
            "default",
            "web-1",
            json.to_vec().into(),
            &fields,
        )));
        let cache = Cache::new();
        cache.insert(CachedType {
            watch: "pods".into(),
            resource: pods(),
            namespaced: true,
            stores: vec![w.as_reader()],
        });
        assert_eq!(cache.find("", "v1", "pods").len(), 1);
        assert_eq!(cache.find("", "v1", "POD").len(), 1);
        assert!(cache.find("apps", "v1", "pods").is_empty());
        let t = &cache.find_kind("", "Pod")[0];
        assert_eq!(t.len(), 1);
        assert!(t.get(Some("default"), "web-1").is_some());
        assert!(t.get(Some("other"), "web-1").is_none());
        assert_eq!(t.filter(|o| object_key(o).0 == "default").len(), 1);
        assert!(cache.remove("pods").is_some());
        assert!(cache.all().is_empty());
    }
}
