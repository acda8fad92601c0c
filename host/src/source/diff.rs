//! [`Differ`]: turns watcher events into store writes and change events.
//!
//! kube's `Writer` keeps the store; the differ looks at the store *before* each write
//! to find the previous state. During a (re)list — `Init`, `InitApply`…, `InitDone` —
//! it compares every listed object with the store and, at `InitDone`, reports the
//! objects the list no longer has as deleted: that is how a delete that happened while
//! the watch was down still reaches the change stream.

use std::collections::HashSet;
use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject, TypeMeta};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;
use serde_json::Value;

use crate::change::{ChangeEvent, ChangeType, Gvk};

use super::settings::InitialList;

/// What a watch reports and keeps; see the module docs.
pub(crate) struct Differ {
    writer: Writer<DynamicObject>,
    reader: Store<DynamicObject>,
    resource: ApiResource,
    gvk: Gvk,
    watch: String,
    events: Vec<ChangeType>,
    ignore_namespaces: Vec<String>,
    initial_list: InitialList,
    /// The first list completed.
    synced: bool,
    /// Keys listed so far while a list is in progress.
    listed: Option<HashSet<(String, String)>>,
}

/// An object a change reports: the event's own (borrowed, not copied) or a stored one.
enum Obj<'a> {
    Event(&'a DynamicObject),
    Stored(Arc<DynamicObject>),
}

impl Obj<'_> {
    fn get(&self) -> &DynamicObject {
        match self {
            Obj::Event(o) => o,
            Obj::Stored(o) => o,
        }
    }
}

/// A change before it becomes a [`ChangeEvent`]: what happened, the object, the
/// previous state.
type Change<'a> = (ChangeType, Obj<'a>, Option<Arc<DynamicObject>>);

impl Differ {
    pub(crate) fn new(
        resource: ApiResource,
        watch: String,
        events: Vec<ChangeType>,
        ignore_namespaces: Vec<String>,
        initial_list: InitialList,
    ) -> Self {
        let writer = Writer::new(resource.clone());
        let reader = writer.as_reader();
        Self {
            gvk: Gvk {
                group: resource.group.clone(),
                version: resource.version.clone(),
                kind: resource.kind.clone(),
            },
            writer,
            reader,
            resource,
            watch,
            events,
            ignore_namespaces,
            initial_list,
            synced: false,
            listed: None,
        }
    }

    /// A reader of the store this differ writes.
    pub(crate) fn reader(&self) -> Store<DynamicObject> {
        self.reader.clone()
    }

    /// Whether the first list has completed.
    #[cfg(test)]
    pub(crate) fn synced(&self) -> bool {
        self.synced
    }

    fn key(o: &DynamicObject) -> (String, String) {
        (
            o.metadata.namespace.clone().unwrap_or_default(),
            o.metadata.name.clone().unwrap_or_default(),
        )
    }

    fn stored(&self, o: &DynamicObject) -> Option<Arc<DynamicObject>> {
        let mut r = ObjectRef::new_with(
            o.metadata.name.as_deref().unwrap_or_default(),
            self.resource.clone(),
        );
        r.namespace = o.metadata.namespace.clone();
        self.reader.get(&r)
    }

    /// `ignoreNamespaces` is also sent to the server as a field selector; this guards
    /// the store when a server ignores it.
    fn ignored(&self, o: &DynamicObject) -> bool {
        o.metadata
            .namespace
            .as_ref()
            .is_some_and(|ns| self.ignore_namespaces.contains(ns))
    }

    fn same_version(a: &DynamicObject, b: &DynamicObject) -> bool {
        a.metadata.resource_version.is_some()
            && a.metadata.resource_version == b.metadata.resource_version
    }

    /// The changes between the stored state of a key and a new state of it.
    fn compare(old: Option<Arc<DynamicObject>>, new: &DynamicObject) -> Vec<Change<'_>> {
        match old {
            None => vec![(ChangeType::Added, Obj::Event(new), None)],
            // The same version again (a replayed event, an unchanged object in a
            // relist): nothing changed.
            Some(old) if Self::same_version(&old, new) => Vec::new(),
            // Deleted and created again while we were not watching: two objects.
            Some(old) if old.metadata.uid.is_some() && old.metadata.uid != new.metadata.uid => {
                vec![
                    (ChangeType::Deleted, Obj::Stored(old.clone()), Some(old)),
                    (ChangeType::Added, Obj::Event(new), None),
                ]
            }
            Some(old) => vec![(ChangeType::Modified, Obj::Event(new), Some(old))],
        }
    }

    /// Writes one watcher event to the store and returns the changes it means, in order.
    pub(crate) fn apply(&mut self, event: Event<DynamicObject>) -> Vec<ChangeEvent> {
        // List items come without apiVersion and kind; give every object both so the
        // cache and the change stream look the same whatever path an object took.
        let types = TypeMeta {
            api_version: self.resource.api_version.clone(),
            kind: self.resource.kind.clone(),
        };
        let event = event.modify(|o| {
            if o.types.is_none() {
                o.types = Some(types.clone());
            }
        });
        let changes: Vec<Change<'_>> = match &event {
            Event::Init => {
                self.listed = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(o) => {
                if self.ignored(o) {
                    return Vec::new();
                }
                self.listed.get_or_insert_default().insert(Self::key(o));
                let quiet = !self.synced && self.initial_list == InitialList::Silent;
                if quiet {
                    Vec::new()
                } else {
                    Self::compare(self.stored(o), o)
                }
            }
            Event::InitDone => {
                let listed = self.listed.take().unwrap_or_default();
                let mut gone = self
                    .reader
                    .state_filter(|o| !listed.contains(&Self::key(o)));
                gone.sort_by(|a, b| Self::key(a).cmp(&Self::key(b)));
                gone.into_iter()
                    .map(|o| (ChangeType::Deleted, Obj::Stored(o.clone()), Some(o)))
                    .collect()
            }
            Event::Apply(o) => {
                if self.ignored(o) {
                    return Vec::new();
                }
                Self::compare(self.stored(o), o)
            }
            Event::Delete(o) => {
                if self.ignored(o) {
                    return Vec::new();
                }
                vec![(ChangeType::Deleted, Obj::Event(o), self.stored(o))]
            }
        };
        self.writer.apply_watcher_event(&event);
        if matches!(event, Event::InitDone) {
            self.synced = true;
        }
        changes
            .into_iter()
            .filter(|(change, _, _)| self.events.contains(change))
            .filter_map(|(change, obj, old)| self.event(change, obj.get(), old.as_deref()))
            .collect()
    }

    fn event(
        &self,
        change: ChangeType,
        obj: &DynamicObject,
        old: Option<&DynamicObject>,
    ) -> Option<ChangeEvent> {
        let to_value = |o: &DynamicObject| match serde_json::to_value(o) {
            Ok(v) => Some(v),
            Err(error) => {
                // Only a map with non-string keys fails, which JSON input cannot make.
                tracing::warn!(%error, name = ?o.metadata.name, "object does not serialise; change dropped");
                None
            }
        };
        let object = to_value(obj)?;
        let old = match old {
            Some(o) => Some(to_value(o)?),
            None => None::<Value>,
        };
        Some(ChangeEvent::new(change, self.gvk.clone(), object, old).with_watch(self.watch.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event::*;

    fn cms() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        }
    }

    fn cm(ns: &str, name: &str, rv: &str) -> DynamicObject {
        let mut o = DynamicObject::new(name, &cms()).within(ns);
        o.types = None; // as in a list
        o.metadata.resource_version = Some(rv.into());
        o
    }

    fn differ(initial: InitialList) -> Differ {
        Differ::new(
            cms(),
            "cm".into(),
            vec![ChangeType::Added, ChangeType::Modified, ChangeType::Deleted],
            vec!["ignored".into()],
            initial,
        )
    }

    fn summary(evs: &[ChangeEvent]) -> Vec<(ChangeType, String, Option<String>)> {
        evs.iter()
            .map(|e| {
                (
                    e.change,
                    format!(
                        "{}@{}",
                        e.name(),
                        e.object["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or("")
                    ),
                    e.old.as_ref().map(|o| {
                        o["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    }),
                )
            })
            .collect()
    }

    fn run(
        d: &mut Differ,
        evs: Vec<Event<DynamicObject>>,
    ) -> Vec<(ChangeType, String, Option<String>)> {
        let out: Vec<ChangeEvent> = evs.into_iter().flat_map(|e| d.apply(e)).collect();
        for e in &out {
            assert_eq!(e.object["kind"], "ConfigMap", "types filled in");
            assert_eq!(e.watch, "cm");
        }
        summary(&out)
    }

    #[test]
    fn silent_first_list_then_watch_events_carry_old_state() {
        let mut d = differ(InitialList::Silent);
        let out = run(
            &mut d,
            vec![
                Init,
                InitApply(cm("a", "x", "1")),
                InitApply(cm("a", "y", "2")),
                InitDone,
            ],
        );
        assert!(out.is_empty(), "{out:?}");
        assert!(d.synced());
        let out = run(
            &mut d,
            vec![
                Apply(cm("a", "z", "3")),
                Apply(cm("a", "x", "4")),
                Apply(cm("a", "x", "4")), // replayed: no change
                Delete(cm("a", "y", "5")),
                Apply(cm("ignored", "q", "6")),
            ],
        );
        use ChangeType::*;
        assert_eq!(
            out,
            [
                (Added, "z@3".into(), None),
                (Modified, "x@4".into(), Some("1".into())),
                (Deleted, "y@5".into(), Some("2".into())),
            ]
        );
        assert_eq!(d.reader().len(), 2);
    }

    #[test]
    fn relist_reports_differences_including_missed_deletes() {
        use ChangeType::*;
        let mut d = differ(InitialList::Notify);
        let out = run(
            &mut d,
            vec![
                Init,
                InitApply(cm("a", "x", "1")),
                InitApply(cm("a", "y", "2")),
                InitDone,
            ],
        );
        assert_eq!(
            out,
            [(Added, "x@1".into(), None), (Added, "y@2".into(), None)]
        );
        // Relist: x unchanged, y gone, z new, w changed-before-seen is new.
        run(&mut d, vec![Apply(cm("a", "w", "3"))]);
        let out = run(
            &mut d,
            vec![
                Init,
                InitApply(cm("a", "x", "1")),
                InitApply(cm("a", "w", "7")),
                InitApply(cm("a", "z", "8")),
                InitDone,
            ],
        );
        assert_eq!(
            out,
            [
                (Modified, "w@7".into(), Some("3".into())),
                (Added, "z@8".into(), None),
                (Deleted, "y@2".into(), Some("2".into())),
            ]
        );
        let mut names: Vec<String> = d
            .reader()
            .state()
            .iter()
            .map(|o| o.metadata.name.clone().unwrap_or_default())
            .collect();
        names.sort();
        assert_eq!(names, ["w", "x", "z"]);
    }

    #[test]
    fn only_a_complete_relist_decides_what_is_gone() {
        use ChangeType::*;
        let mut d = differ(InitialList::Silent);
        run(
            &mut d,
            vec![
                Init,
                InitApply(cm("a", "x", "1")),
                InitApply(cm("a", "y", "2")),
                InitDone,
            ],
        );
        // A relist that fails after one page starts over with Init; only the complete
        // one decides what is gone.
        let out = run(
            &mut d,
            vec![
                Init,
                InitApply(cm("a", "x", "1")),
                Init,
                InitApply(cm("a", "y", "2")),
                InitDone,
            ],
        );
        assert_eq!(out, [(Deleted, "x@1".into(), Some("1".into()))]);
    }

    #[test]
    fn an_object_recreated_under_the_same_name_is_a_delete_and_an_add() {
        use ChangeType::*;
        let mut d = differ(InitialList::Silent);
        let mut x = cm("a", "x", "1");
        x.metadata.uid = Some("u1".into());
        run(&mut d, vec![Init, InitApply(x), InitDone]);
        let mut x2 = cm("a", "x", "9");
        x2.metadata.uid = Some("u2".into());
        let out = run(&mut d, vec![Init, InitApply(x2), InitDone]);
        assert_eq!(
            out,
            [
                (Deleted, "x@1".into(), Some("1".into())),
                (Added, "x@9".into(), None)
            ]
        );
    }

    #[test]
    fn event_filter_keeps_the_cache_whole() {
        let mut d = Differ::new(
            cms(),
            "cm".into(),
            vec![ChangeType::Deleted],
            vec![],
            InitialList::Notify,
        );
        let out = run(
            &mut d,
            vec![
                Init,
                InitApply(cm("a", "x", "1")),
                InitDone,
                Apply(cm("a", "x", "2")),
                Delete(cm("a", "x", "3")),
            ],
        );
        assert_eq!(out, [(ChangeType::Deleted, "x@3".into(), Some("2".into()))]);
    }
}
