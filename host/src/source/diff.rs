//! [`Differ`]: turns watcher events into store writes and change events.
//!
//! The differ owns the store's [`Writer`] and looks at the store *before* each write
//! to find the previous state. During a (re)list — `Init`, `InitApply`…, `InitDone` —
//! it compares every listed object with the store and, at `InitDone`, reports the
//! objects the list no longer has as deleted: that is how a delete that happened while
//! the watch was down still reaches the change stream.
//!
//! Listed objects are written to the store as they arrive (kube's reflector buffers a
//! whole relist and swaps it in at the end, holding two copies meanwhile); what the list
//! no longer has leaves at `InitDone`.

use std::collections::HashSet;
use std::sync::Arc;

use kube::api::ApiResource;
use kube::runtime::watcher::Event;

use crate::cache::{CachedObject, Store, Writer};
use crate::change::{ChangeEvent, ChangeType, Doc, Gvk};

use super::object::WatchedObject;

/// What a watch does with the objects of its first list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstList {
    /// Fills the cache and reports nothing (present at herald's start, no state dir).
    Silent,
    /// Reports every object marked [`ChangeEvent::quiet`]: present at herald's start,
    /// for the state dir to record (and to compare with what it recorded before).
    Quiet,
    /// Reports every object as added (`initialList: notify`, or a watch that started
    /// after herald: none of its objects were present at start).
    Notify,
}

/// What a watch reports and keeps; see the module docs.
pub(crate) struct Differ {
    writer: Writer,
    resource: ApiResource,
    gvk: Gvk,
    watch: String,
    events: Vec<ChangeType>,
    ignore_namespaces: Vec<String>,
    first_list: FirstList,
    /// For Secrets not `secretData: include`: the key their values are digested with.
    redact: Option<super::SecretKey>,
    /// The first list completed.
    synced: bool,
    /// While a list is in progress: the keys stored when it began that it has not
    /// listed yet. Those left at `InitDone` are gone.
    unlisted: Option<HashSet<Box<str>>>,
}

/// A change before it becomes a [`ChangeEvent`]: what happened, the object, the
/// previous state.
type Change = (ChangeType, Arc<CachedObject>, Option<Arc<CachedObject>>);

impl Differ {
    pub(crate) fn new(
        resource: ApiResource,
        watch: String,
        events: Vec<ChangeType>,
        ignore_namespaces: Vec<String>,
        first_list: FirstList,
        redact: Option<super::SecretKey>,
    ) -> Self {
        Self {
            gvk: Gvk::from(&resource),
            writer: Writer::new(),
            resource,
            watch,
            events,
            ignore_namespaces,
            first_list,
            redact,
            synced: false,
            unlisted: None,
        }
    }

    /// A replay of this scope's stream after a checkpoint, decoded, filtered
    /// and redacted as its list and watch are.
    pub(crate) fn replay<'a>(
        &'a self,
        api: &'a kube::api::Api<WatchedObject>,
        config: &'a kube::runtime::watcher::Config,
        tx: &'a tokio::sync::mpsc::Sender<ChangeEvent>,
    ) -> super::resume::Replay<'a> {
        super::resume::Replay {
            api,
            config,
            resource: &self.resource,
            watch: &self.watch,
            events: &self.events,
            ignore_namespaces: &self.ignore_namespaces,
            redact: self.redact.as_ref(),
            tx,
        }
    }

    /// A reader of the store this differ writes.
    pub(crate) fn reader(&self) -> Store {
        self.writer.as_reader()
    }

    /// Whether the first list has completed.
    #[cfg(test)]
    pub(crate) fn synced(&self) -> bool {
        self.synced
    }

    /// `ignoreNamespaces` is also sent to the server as a field selector; this guards
    /// the store when a server ignores it.
    fn ignored(&self, o: &WatchedObject) -> bool {
        o.namespace()
            .is_some_and(|ns| self.ignore_namespaces.iter().any(|i| i == ns))
    }

    fn same_version(a: &CachedObject, b: &CachedObject) -> bool {
        a.resource_version().is_some() && a.resource_version() == b.resource_version()
    }

    /// Stores `new` and returns the changes from the stored state of its key. The
    /// same version again (a replayed event, an unchanged object in a relist) changes
    /// nothing, and the stored object is kept.
    fn upsert(&mut self, new: Arc<CachedObject>) -> Vec<Change> {
        let old = self.writer.get(new.key());
        match old {
            Some(old) if Self::same_version(&old, &new) => Vec::new(),
            old => {
                self.writer.insert(new.clone());
                match old {
                    None => vec![(ChangeType::Added, new, None)],
                    // Deleted and created again while we were not watching: two objects.
                    Some(old) if old.uid().is_some() && old.uid() != new.uid() => vec![
                        (ChangeType::Deleted, old.clone(), Some(old)),
                        (ChangeType::Added, new, None),
                    ],
                    Some(old) => vec![(ChangeType::Modified, new, Some(old))],
                }
            }
        }
    }

    /// Writes one watcher event to the store and returns the changes it means, in order.
    pub(crate) fn apply(&mut self, event: Event<WatchedObject>) -> Vec<ChangeEvent> {
        let first_list = !self.synced && matches!(event, Event::InitApply(_));
        let changes: Vec<Change> = match event {
            Event::Init => {
                self.unlisted = Some(self.writer.keys().into_iter().collect());
                Vec::new()
            }
            Event::InitApply(o) => {
                if self.ignored(&o) {
                    return Vec::new();
                }
                let new = Arc::new(o.into_cached(&self.resource, self.redact.as_ref()));
                if let Some(unlisted) = &mut self.unlisted {
                    unlisted.remove(new.key());
                }
                let changes = self.upsert(new);
                let silent = !self.synced && self.first_list == FirstList::Silent;
                if silent { Vec::new() } else { changes }
            }
            Event::InitDone => {
                self.synced = true;
                let mut gone: Vec<Box<str>> = self
                    .unlisted
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                gone.sort();
                gone.iter()
                    .filter_map(|k| self.writer.remove(k))
                    .map(|o| (ChangeType::Deleted, o.clone(), Some(o)))
                    .collect()
            }
            Event::Apply(o) => {
                if self.ignored(&o) {
                    return Vec::new();
                }
                self.upsert(Arc::new(
                    o.into_cached(&self.resource, self.redact.as_ref()),
                ))
            }
            Event::Delete(o) => {
                if self.ignored(&o) {
                    return Vec::new();
                }
                let obj = Arc::new(o.into_cached(&self.resource, self.redact.as_ref()));
                let old = self.writer.remove(obj.key());
                vec![(ChangeType::Deleted, obj, old)]
            }
        };
        changes
            .into_iter()
            .filter(|(change, _, _)| self.events.contains(change))
            .map(|(change, obj, old)| self.event(change, obj, old))
            .map(|mut ev| {
                ev.initial = first_list;
                ev.quiet = first_list && self.first_list == FirstList::Quiet;
                ev
            })
            .collect()
    }

    /// The change event, carrying the stored states: parsed only if a
    /// plugin or a sink reads them as trees.
    fn event(
        &self,
        change: ChangeType,
        obj: Arc<CachedObject>,
        old: Option<Arc<CachedObject>>,
    ) -> ChangeEvent {
        ChangeEvent::of_docs(
            change,
            self.gvk.clone(),
            Doc::stored(obj),
            old.map(Doc::stored),
        )
        .with_watch(self.watch.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::object::tests::watched;
    use kube::runtime::watcher::Event::*;
    use serde_json::json;

    fn cms() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        }
    }

    /// As in a list: no apiVersion or kind.
    fn cm(ns: &str, name: &str, rv: &str) -> WatchedObject {
        watched(&json!({"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}))
    }

    fn cm_uid(ns: &str, name: &str, rv: &str, uid: &str) -> WatchedObject {
        watched(
            &json!({"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "uid": uid}}),
        )
    }

    fn differ(initial: FirstList) -> Differ {
        Differ::new(
            cms(),
            "cm".into(),
            vec![ChangeType::Added, ChangeType::Modified, ChangeType::Deleted],
            vec!["ignored".into()],
            initial,
            None,
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
        evs: Vec<Event<WatchedObject>>,
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
        let mut d = differ(FirstList::Silent);
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
    fn a_quiet_first_list_reports_its_objects_marked_quiet_and_later_ones_not() {
        let mut d = differ(FirstList::Quiet);
        let first: Vec<ChangeEvent> = [Init, InitApply(cm("a", "x", "1")), InitDone]
            .into_iter()
            .flat_map(|e| d.apply(e))
            .collect();
        assert_eq!(first.len(), 1);
        assert!(first[0].initial && first[0].quiet, "{first:?}");
        let relist: Vec<ChangeEvent> = [Init, InitApply(cm("a", "y", "2")), InitDone]
            .into_iter()
            .flat_map(|e| d.apply(e))
            .collect();
        assert_eq!(relist.len(), 2, "y added, x gone: {relist:?}");
        assert!(relist.iter().all(|e| !e.initial && !e.quiet), "{relist:?}");
    }

    #[test]
    fn relist_reports_differences_including_missed_deletes() {
        use ChangeType::*;
        let mut d = differ(FirstList::Notify);
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
        let names: Vec<String> = d
            .reader()
            .filter(|_| true)
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        assert_eq!(names, ["w", "x", "z"]);
    }

    #[test]
    fn only_a_complete_relist_decides_what_is_gone() {
        use ChangeType::*;
        let mut d = differ(FirstList::Silent);
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
        let mut d = differ(FirstList::Silent);
        let x = cm_uid("a", "x", "1", "u1");
        run(&mut d, vec![Init, InitApply(x), InitDone]);
        let x2 = cm_uid("a", "x", "9", "u2");
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
            FirstList::Notify,
            None,
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
