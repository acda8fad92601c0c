//! The host side of the `event` resource: the object stays parsed on the
//! host, plugins read and change it through a handle.

use herald_plugin_sdk::pointer::{self, Undo};
use serde_json::Value;

use crate::change::{ChangeType, Deferred, Doc, Found};

/// An event's data as the chain carries it between plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// The object, with the changes of plugins so far.
    pub object: Doc,
    /// The previous state, if any.
    pub old: Option<Doc>,
}

impl EventData {
    /// An event of `change` for `object`, of parsed states.
    pub fn new(change: ChangeType, object: Value, old: Option<Value>) -> Self {
        Self::of_docs(change, object.into(), old.map(Doc::from))
    }

    /// An event of `change` for `object`.
    pub fn of_docs(change: ChangeType, object: Doc, old: Option<Doc>) -> Self {
        EventData {
            change,
            object,
            old,
        }
    }
}

/// The JSON pointers one plugin call removed from or set in one event (for
/// `herald explain` and the decisions ring).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// Removed from the object.
    pub removed: Vec<String>,
    /// Set in the object.
    pub set: Vec<String>,
}

/// An event lent to a plugin for one call, with the undo log of its changes.
pub struct EventState {
    pub(crate) index: usize,
    pub(crate) data: EventData,
    pub(crate) undo: Vec<Undo>,
    /// Undo log of the previous state (`remove`, `set` and `set_old` reach it).
    pub(crate) undo_old: Vec<Undo>,
    /// The pointers this call removed and set.
    pub(crate) edits: Edits,
    /// The previous state's edits deferred before this call (see
    /// [`Doc::defer`]): the ones after are this call's.
    old_mark: usize,
    /// The object's bytes before this call, while it is its bytes: this
    /// call's edits of them roll back by going back to these.
    object_mark: Option<Option<std::sync::Arc<Vec<u8>>>>,
}

impl EventState {
    pub(crate) fn new(index: usize, data: EventData) -> Self {
        EventState {
            index,
            old_mark: data.old.as_ref().map_or(0, Doc::deferred_len),
            object_mark: data.object.mark(),
            data,
            undo: Vec::new(),
            undo_old: Vec::new(),
            edits: Edits::default(),
        }
    }

    /// Takes back every change the plugin made in this call.
    pub(crate) fn rollback(&mut self) {
        self.edits = Edits::default();
        let log = std::mem::take(&mut self.undo);
        if !self.data.object.restore(self.object_mark.clone()) {
            pointer::undo(&mut self.data.object, log);
        }
        let log = std::mem::take(&mut self.undo_old);
        if let Some(old) = &mut self.data.old {
            if old.is_parsed() {
                pointer::undo(old, log);
            } else {
                old.truncate_deferred(self.old_mark);
            }
        }
    }

    /// The previous state as a tree, parsed now if it was not (this call's
    /// deferred edits applied with their undo steps).
    pub(crate) fn old(&mut self) -> Option<&Value> {
        let mark = self.old_mark;
        let old = self.data.old.as_mut()?;
        Some(old.parse_split(mark, &mut self.undo_old))
    }

    /// The object as JSON text: its stored bytes while no plugin changed it.
    pub(crate) fn object_json(&self) -> String {
        // JSON text is UTF-8: no copy but the one `to_json` makes.
        String::from_utf8(self.data.object.to_json())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    pub(crate) fn string_at(&self, p: &str) -> Option<String> {
        self.data.object.lookup(p)?.as_string()
    }

    /// The value at `p` in the object, as JSON text (from its bytes while
    /// no plugin changed it).
    pub(crate) fn get_json(&self, p: &str) -> Option<String> {
        self.data.object.lookup(p).map(|f| f.to_json())
    }

    /// The value at `p` in the previous state, as JSON text: from its bytes
    /// when no edit waiting for its parse touches `p`, else parsed now.
    pub(crate) fn get_old_json(&mut self, p: &str) -> Option<String> {
        let old = self.data.old.as_ref()?;
        if let Some(found) = old.lookup_unparsed(p) {
            return found.map(|f| f.to_json());
        }
        pointer::get(self.old()?, p).map(Value::to_string)
    }

    /// The keys (or indices) of the map (or array) at `p` in the object.
    pub(crate) fn keys(&self, p: &str) -> Option<Vec<String>> {
        self.data.object.keys(p)
    }

    /// The keys (or indices) at `p` in the previous state: from its bytes
    /// when no edit waiting for its parse touches `p`, else parsed now.
    pub(crate) fn keys_old(&mut self, p: &str) -> Option<Vec<String>> {
        let old = self.data.old.as_ref()?;
        if let Some(keys) = old.keys_unparsed(p) {
            return keys;
        }
        Found::Tree(pointer::get(self.old()?, p)?).keys()
    }

    /// Removes what `paths` reach (a `*` step over every key or item) from
    /// the object and from the previous state, each expanded against its
    /// own keys: the object's now, the previous state's when something
    /// reads it ([`Deferred::RemovePaths`]); what a path reaches of the
    /// identity is left. Counts the object's.
    pub(crate) fn remove_paths(&mut self, paths: &[Vec<pointer::Step>]) -> u32 {
        // Writable pointers in removal order: made on the object's bytes
        // at once (one copy) while it is its bytes.
        let all = Deferred::removals(paths, |p| self.keys(p));
        let n = match self.data.object.remove_all_in_bytes(&all) {
            Some(found) => {
                let mut n = 0;
                for (p, _) in all.into_iter().zip(found).filter(|(_, f)| *f) {
                    self.edits.removed.push(p);
                    n += 1;
                }
                n
            }
            None => self.remove_from_object(&all),
        };
        // The previous state's keys are read when something reads it (a
        // sink sending `old` or a patch, a plugin): most never do.
        if let Some(old) = &mut self.data.old {
            old.defer(Deferred::RemovePaths(paths.to_vec()), &mut self.undo_old);
        }
        n
    }

    /// Removes the pointers from the object and from the previous state: a
    /// field pruned from a notification (a Secret's data, say) must not
    /// reach a sink through `old` or a diff either. Counts the object's.
    ///
    /// A pointer that is not valid or names the object's identity is
    /// skipped (and not counted): `remove` has no error to return, and the
    /// SDK refuses such pointers before they get here.
    pub(crate) fn remove(&mut self, pointers: &[String]) -> u32 {
        let n = self.remove_from_object(pointers);
        if let Some(old) = &mut self.data.old {
            for p in pointers
                .iter()
                .filter(|p| pointer::check_writable(p).is_ok())
            {
                old.defer(Deferred::Remove(p.clone()), &mut self.undo_old);
            }
        }
        n
    }

    /// [`EventState::remove`]'s part on the object.
    fn remove_from_object(&mut self, pointers: &[String]) -> u32 {
        let mut n = 0;
        for p in pointers {
            if pointer::check_writable(p).is_err() {
                continue;
            }
            let removed = self.data.object.remove_in_bytes(p).unwrap_or_else(|| {
                pointer::remove(&mut self.data.object, p)
                    .map(|step| self.undo.push(step))
                    .is_some()
            });
            if removed {
                self.edits.removed.push(p.clone());
                n += 1;
            }
        }
        n
    }

    /// Sets the value at `p` in the object and, where the previous state
    /// has a value at `p`, there too: a value a plugin overwrites (a
    /// redaction, say) must not reach a sink through `old` or a patch built
    /// from it. Nothing is created in the previous state: it is hidden,
    /// never invented.
    pub(crate) fn set(&mut self, p: &str, json: &str) -> Result<(), String> {
        pointer::check_writable(p).map_err(|e| e.to_string())?;
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON for {p}: {e}"))?;
        // As `pointer::set_mirrored`, with the previous state's part deferred
        // until something reads it. A value that is there is replaced in the
        // object's bytes while it is them.
        let copy = if self.data.object.replace_in_bytes(p, &value) == Some(true) {
            Some(value)
        } else {
            let copy = self.data.old.as_ref().map(|_| value.clone());
            pointer::set(&mut self.data.object, p, value, &mut self.undo)?;
            copy
        };
        if let (Some(old), Some(value)) = (&mut self.data.old, copy) {
            old.defer(Deferred::Replace(p.to_string(), value), &mut self.undo_old);
        }
        self.edits.set.push(p.to_string());
        Ok(())
    }

    /// Sets the value at `p` in the previous state only, where it has one:
    /// for hiding a value the object no longer has. A pointer the previous
    /// state lacks (or there is none) is left alone.
    pub(crate) fn set_old(&mut self, p: &str, json: &str) -> Result<(), String> {
        pointer::check_writable(p).map_err(|e| e.to_string())?;
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON for {p}: {e}"))?;
        if let Some(old) = &mut self.data.old {
            old.defer(Deferred::Replace(p.to_string(), value), &mut self.undo_old);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_fields_are_read_only_and_bad_escapes_refused() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "a", "namespace": "n", "uid": "u", "labels": {}}});
        let mut e = EventState::new(
            0,
            EventData::new(ChangeType::Modified, pod.clone(), Some(pod.clone())),
        );
        for p in [
            "",
            "/apiVersion",
            "/kind",
            "/metadata",
            "/metadata/name",
            "/metadata/namespace",
            "/metadata/uid",
        ] {
            let err = e.set(p, r#""x""#).expect_err(p);
            assert!(err.contains("is read-only"), "{p}: {err}");
            assert!(e.set_old(p, r#""x""#).is_err(), "{p}");
            assert_eq!(e.remove(&[p.to_string()]), 0, "{p}");
        }
        let err = e.set("/metadata/~2", "1").expect_err("bad escape");
        assert!(err.contains("`~` must be followed by `0` or `1`"), "{err}");
        assert_eq!(e.remove(&["/metadata/~2".to_string()]), 0);
        assert_eq!((&*e.data.object, e.data.old.as_deref()), (&pod, Some(&pod)));
        assert!(e.undo.is_empty() && e.undo_old.is_empty());
        // What is not identity stays writable.
        e.set("/metadata/labels/app", r#""web""#).expect("label");
        assert_eq!(e.remove(&["/metadata/labels".to_string()]), 1);
    }

    #[test]
    fn remove_prunes_the_previous_state_too_and_rollback_restores_both() {
        let new = json!({"data": {"password": "bmV3"}, "metadata": {"name": "s"}});
        let old = json!({"data": {"password": "b2xk"}, "metadata": {"name": "s"}});
        let mut e = EventState::new(
            0,
            EventData::new(ChangeType::Modified, new.clone(), Some(old.clone())),
        );
        assert_eq!(e.remove(&["/data".to_string(), "/absent".to_string()]), 1);
        assert!(e.data.object.get("data").is_none());
        assert!(
            e.data.old.as_ref().unwrap().get("data").is_none(),
            "the old password must not reach a sink"
        );
        e.rollback();
        assert_eq!(e.data.object, new);
        assert_eq!(e.data.old.as_deref(), Some(&old));
    }

    fn secret_event() -> EventState {
        EventState::new(
            0,
            EventData::new(
                ChangeType::Modified,
                json!({"data": {"password": "bmV3", "added": "YQ=="}, "items": [1, 2]}),
                Some(json!({"data": {"password": "b2xk", "gone": "Zw=="}, "items": [3]})),
            ),
        )
    }

    #[test]
    fn set_overwrites_the_previous_state_where_it_has_the_field_and_creates_nothing() {
        let mut e = secret_event();
        for p in [
            "/data/password",
            "/data/added",
            "/new/field",
            "/items/1",
            "/items/-",
        ] {
            e.set(p, r#""<redacted>""#).unwrap();
        }
        assert_eq!(
            e.data.object,
            json!({"data": {"password": "<redacted>", "added": "<redacted>"},
                   "items": [1, "<redacted>", "<redacted>"], "new": {"field": "<redacted>"}})
        );
        assert_eq!(
            e.data.old.as_deref(),
            Some(&json!({"data": {"password": "<redacted>", "gone": "Zw=="}, "items": [3]})),
            "only what the previous state has is overwritten"
        );
        // A whole map: the previous state's map is replaced by the same one.
        e.set("/data", r#"{"password": "<redacted>"}"#).unwrap();
        assert_eq!(
            e.data.old.as_ref().unwrap()["data"],
            json!({"password": "<redacted>"})
        );
        // A failed set changes neither state.
        let before = (e.data.object.clone(), e.data.old.clone());
        assert!(e.set("/items/9", "1").is_err());
        assert!(e.set("/data", "not json").is_err());
        assert_eq!((e.data.object.clone(), e.data.old.clone()), before);
    }

    #[test]
    fn set_old_hides_only_values_the_previous_state_has() {
        let mut e = secret_event();
        let object = e.data.object.clone();
        e.set_old("/data/gone", r#""<redacted>""#).unwrap();
        e.set_old("/data/added", r#""<redacted>""#).unwrap();
        e.set_old("/absent/x", "1").unwrap();
        assert_eq!(e.data.object, object, "the object is left alone");
        assert_eq!(
            e.data.old.as_deref(),
            Some(&json!({"data": {"password": "b2xk", "gone": "<redacted>"}, "items": [3]}))
        );
        assert!(e.set_old("data", "1").is_err(), "not a pointer");
        assert!(e.set_old("/data/gone", "{").is_err(), "not JSON");
        // No previous state: nothing to do.
        let mut added =
            EventState::new(0, EventData::new(ChangeType::Added, json!({"a": 1}), None));
        added.set_old("/a", "2").unwrap();
        assert_eq!(added.data.old, None);
    }

    #[test]
    fn rollback_restores_the_previous_state_after_set_and_set_old() {
        let mut e = secret_event();
        let before = e.data.clone();
        e.set("/data/password", r#""<redacted>""#).unwrap();
        e.set("/data", r#"{"x": 1}"#).unwrap();
        e.set("/whole", "true").unwrap();
        e.set_old("/data", r#"{"whole": true}"#).unwrap();
        e.remove(&["/whole".to_string(), "/data".to_string()]);
        assert_eq!(e.data.old.as_deref(), Some(&json!({"items": [3]})));
        e.rollback();
        assert_eq!(e.data, before);
    }

    fn stored(v: &Value) -> Doc {
        Doc::stored(std::sync::Arc::new(crate::cache::CachedObject::from_value(
            v,
        )))
    }

    #[test]
    fn edits_of_a_stored_previous_state_wait_for_a_read_and_roll_back_unread() {
        let new = json!({"kind": "Secret", "metadata": {"name": "s", "uid": "u"},
                         "data": {"password": "bmV3"}});
        let old = json!({"kind": "Secret", "metadata": {"name": "s", "uid": "u"},
                         "data": {"password": "b2xk", "gone": "Zw=="}});
        let mut e = EventState::new(
            0,
            EventData::of_docs(ChangeType::Modified, stored(&new), Some(stored(&old))),
        );
        assert_eq!(
            e.remove(&["/data/gone".to_string()]),
            0,
            "the object has none"
        );
        e.set("/data/password", r#""<redacted>""#).unwrap();
        e.set_old("/data/absent", "1").unwrap();
        let prev = e.data.old.as_ref().unwrap();
        assert!(!prev.is_parsed(), "nothing read the previous state");
        // A sink asks for its bytes: the edits are made on them, not a tree.
        let edited: Value = serde_json::from_slice(prev.raw_json().unwrap()).unwrap();
        assert_eq!(edited["data"], json!({"password": "<redacted>"}));
        assert!(!prev.is_parsed());
        // A failed call: its edits are dropped unparsed.
        e.rollback();
        let prev = e.data.old.as_ref().unwrap();
        assert!(!prev.is_parsed());
        assert_eq!(
            serde_json::from_slice::<Value>(prev.raw_json().unwrap()).unwrap(),
            old,
            "the bytes made before the rollback are not kept"
        );
        assert_eq!(e.data.object, new);

        // A call that succeeds: the edits show when the state is read.
        let mut e = EventState::new(0, e.data);
        e.remove(&["/data/gone".to_string()]);
        e.set("/data/password", r#""<redacted>""#).unwrap();
        let mut next = EventState::new(1, e.data);
        assert_eq!(
            next.old().unwrap()["data"],
            json!({"password": "<redacted>"}),
            "the later plugin sees what the earlier one hid"
        );
        next.rollback();
        assert_eq!(
            next.data.old.as_deref().unwrap()["data"],
            json!({"password": "<redacted>"}),
            "an earlier call's edits are not this call's to undo"
        );
    }

    #[test]
    fn keys_see_this_calls_removals_in_both_states() {
        let v = json!({"kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"i": "a"}, {"i": "b"}, {"i": "c"}]}});
        let data = EventData::of_docs(ChangeType::Modified, stored(&v), Some(stored(&v)));
        let mut e = EventState::new(0, data);
        let three: Vec<String> = vec!["0".into(), "1".into(), "2".into()];
        assert_eq!(e.keys("/spec/containers"), Some(three.clone()));
        assert_eq!(e.keys_old("/spec/containers"), Some(three));
        assert_eq!(e.remove(&["/spec/containers/1".to_string()]), 1);
        let two: Vec<String> = vec!["0".into(), "1".into()];
        assert_eq!(e.keys("/spec/containers"), Some(two.clone()));
        assert_eq!(
            e.keys_old("/spec/containers"),
            Some(two),
            "the deferred removal counts"
        );
        assert_eq!(e.keys_old("/spec/containers/0/i"), None, "a scalar");
        assert_eq!(e.keys_old("/metadata"), Some(vec!["name".into()]));
        let none = EventData::of_docs(ChangeType::Added, stored(&v), None);
        assert_eq!(
            EventState::new(0, none).keys_old("/spec"),
            None,
            "no previous state"
        );
    }

    #[test]
    fn remove_paths_expands_in_each_state_and_removes_from_both() {
        use pointer::Step::{Any, Key};
        let key = |k: &str| Key(k.to_string());
        let old = json!({"kind": "Pod", "metadata": {"name": "p", "managedFields": [1]},
                         "spec": {"containers": [{"i": "a", "env": [1]}, {"i": "b", "env": [2]},
                                                 {"i": "c", "env": [3]}]}});
        let new = json!({"kind": "Pod", "metadata": {"name": "p", "managedFields": [2]},
                         "spec": {"containers": [{"i": "a", "env": [1]}, {"i": "b"}]}});
        let data = EventData::of_docs(ChangeType::Modified, stored(&new), Some(stored(&old)));
        let mut e = EventState::new(0, data);
        let paths = vec![
            vec![key("spec"), key("containers"), Any, key("env")],
            vec![key("metadata"), key("managedFields")],
            vec![key("metadata"), Any],
            vec![key("absent"), Any],
        ];
        // The object's env of item 0 and managedFields; items 1 and 2 of
        // the previous state have env only there.
        assert_eq!(e.remove_paths(&paths), 2);
        // The previous state's keys are not read until it is: one edit
        // waits on its bytes, which a sink gets pruned without a tree.
        let old_doc = e.data.old.clone().expect("old");
        assert!(!old_doc.is_parsed());
        assert_eq!(old_doc.deferred_len(), 1);
        let settled: Value = serde_json::from_slice(old_doc.raw_json().expect("bytes")).unwrap();
        assert_eq!(
            settled,
            json!({"kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"i": "a"}, {"i": "b"}, {"i": "c"}]}})
        );
        assert!(!old_doc.is_parsed());
        assert_eq!(
            *e.data.object,
            json!({"kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"i": "a"}, {"i": "b"}]}})
        );
        assert_eq!(
            e.old().cloned(),
            Some(json!({"kind": "Pod", "metadata": {"name": "p"},
                        "spec": {"containers": [{"i": "a"}, {"i": "b"}, {"i": "c"}]}}))
        );
        e.rollback();
        assert_eq!(*e.data.object, new);
        assert_eq!(e.old().cloned(), Some(old));
    }

    #[test]
    fn removals_and_replacements_of_a_stored_object_stay_on_its_bytes_and_roll_back() {
        let v = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "n", "uid": "u",
                         "resourceVersion": "9", "managedFields": [{"m": 1}],
                         "annotations": {"secret": "s"}},
                       "spec": {"containers": [{"env": [{"name": "A"}], "i": "a"}, {"i": "b"}]}});
        let data = EventData::of_docs(ChangeType::Modified, stored(&v), Some(stored(&v)));
        let mut e = EventState::new(0, data);
        let removed = e.remove(&[
            "/spec/containers/0/env".to_string(),
            "/metadata/managedFields".to_string(),
            "/metadata/absent".to_string(),
        ]);
        assert_eq!(removed, 2);
        e.set("/metadata/annotations/secret", r#""<redacted>""#)
            .unwrap();
        let mut want = v.clone();
        want["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        want["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("env");
        want["metadata"]["annotations"]["secret"] = json!("<redacted>");
        let doc = &e.data.object;
        assert!(!doc.is_parsed(), "the edits were made on the bytes");
        let bytes = doc.raw_json().expect("the doc is its edited bytes");
        assert_eq!(serde_json::from_slice::<Value>(bytes).unwrap(), want);
        assert_eq!(doc.resource_version(), Some("9"));
        assert_eq!(
            e.get_json("/metadata/annotations/secret").as_deref(),
            Some(r#""<redacted>""#)
        );
        assert_eq!(
            e.edits.removed,
            ["/spec/containers/0/env", "/metadata/managedFields"]
        );
        // The previous state got the same edits, waiting for a read.
        assert_eq!(e.old().unwrap(), &want);

        // A second call edits on, reads the whole object (a tree), fails:
        // the object is the first call's bytes again.
        let mut e = EventState::new(1, e.data);
        e.remove(&["/spec/containers/1".to_string()]);
        e.set("/metadata/labels", r#"{"created": "by set"}"#)
            .unwrap();
        assert!(e.data.object.is_parsed(), "creating a value takes the tree");
        e.rollback();
        assert!(!e.data.object.is_parsed());
        assert_eq!(e.data.object, want);
        assert_eq!(e.data.old.as_deref(), Some(&want));
    }

    #[test]
    fn a_read_of_the_previous_state_within_a_call_keeps_that_call_undoable() {
        let old = json!({"kind": "Secret", "metadata": {"name": "s", "uid": "u"},
                         "data": {"a": "1", "b": "2"}});
        let first = EventData::of_docs(ChangeType::Modified, stored(&old), Some(stored(&old)));
        let mut e = EventState::new(0, first);
        e.remove(&["/data/a".to_string()]);
        // The next call removes b, reads the state (parsing it), fails.
        let mut e = EventState::new(1, e.data);
        e.remove(&["/data/b".to_string()]);
        assert_eq!(e.old().unwrap()["data"], json!({}));
        e.rollback();
        assert_eq!(
            e.data.old.as_deref().unwrap()["data"],
            json!({"b": "2"}),
            "the first call's removal stays, the failed call's is undone"
        );
        assert_eq!(e.data.object["data"], json!({"b": "2"}));
    }

    #[test]
    fn reads_of_stored_states_come_from_their_bytes_unless_an_edit_waits_on_the_path() {
        let v = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "n", "uid": "u",
                         "labels": {"app": "web"}, "managedFields": [{"m": 1}]},
                       "spec": {"containers": [{"env": [{"name": "A"}]}, {"env": []}]}});
        let mut e = EventState::new(
            0,
            EventData::of_docs(ChangeType::Modified, stored(&v), Some(stored(&v))),
        );
        assert_eq!(e.string_at("/metadata/labels/app").as_deref(), Some("web"));
        assert_eq!(
            e.get_json("/spec/containers/0/env/0").as_deref(),
            Some(r#"{"name":"A"}"#)
        );
        assert_eq!(e.get_json("/nope"), None);
        e.data.old.as_mut().unwrap().defer(
            Deferred::Remove("/metadata/managedFields".into()),
            &mut Vec::new(),
        );
        assert_eq!(
            e.get_old_json("/metadata/labels/app").as_deref(),
            Some(r#""web""#)
        );
        assert!(
            !e.data.object.is_parsed() && !e.data.old.as_ref().unwrap().is_parsed(),
            "nothing parsed for reads off the edited paths"
        );
        // A read the waiting edit touches parses, with the edit applied.
        assert_eq!(e.get_old_json("/metadata/managedFields"), None);
        assert!(e.data.old.as_ref().unwrap().is_parsed());
        // Removing item 0 moves item 1: a read past it sees the move.
        let mut e = EventState::new(
            0,
            EventData::of_docs(ChangeType::Modified, stored(&v), Some(stored(&v))),
        );
        e.remove(&["/spec/containers/0".to_string()]);
        assert_eq!(
            e.get_old_json("/spec/containers/0/env").as_deref(),
            Some("[]")
        );
        e.rollback();
        assert_eq!(
            e.get_old_json("/spec/containers/0/env/0/name").as_deref(),
            Some(r#""A""#)
        );
    }
}
