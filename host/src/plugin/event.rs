//! The host side of the `event` resource: the object stays parsed on the
//! host, plugins read and change it through a handle.

use herald_plugin_sdk::pointer::{self, Undo};
use serde_json::Value;

use crate::change::ChangeType;

/// An event's data as the chain carries it between plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// The object, with the changes of plugins so far.
    pub object: Value,
    /// The previous state, if any.
    pub old: Option<Value>,
}

impl EventData {
    /// An event of `change` for `object`.
    pub fn new(change: ChangeType, object: Value, old: Option<Value>) -> Self {
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
}

impl EventState {
    pub(crate) fn new(index: usize, data: EventData) -> Self {
        EventState {
            index,
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
        pointer::undo(&mut self.data.object, log);
        let log = std::mem::take(&mut self.undo_old);
        if let Some(old) = &mut self.data.old {
            pointer::undo(old, log);
        }
    }

    pub(crate) fn string_at(&self, p: &str) -> Option<String> {
        pointer::get(&self.data.object, p)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Removes the pointers from the object and from the previous state: a
    /// field pruned from a notification (a Secret's data, say) must not
    /// reach a sink through `old` or a diff either. Counts the object's.
    ///
    /// A pointer that is not valid or names the object's identity is
    /// skipped (and not counted): `remove` has no error to return, and the
    /// SDK refuses such pointers before they get here.
    pub(crate) fn remove(&mut self, pointers: &[String]) -> u32 {
        let mut n = 0;
        for p in pointers {
            if pointer::check_writable(p).is_err() {
                continue;
            }
            if let Some(step) = pointer::remove(&mut self.data.object, p) {
                self.undo.push(step);
                self.edits.removed.push(p.clone());
                n += 1;
            }
            if let Some(old) = &mut self.data.old
                && let Some(step) = pointer::remove(old, p)
            {
                self.undo_old.push(step);
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
        pointer::set_mirrored(
            &mut self.data.object,
            self.data.old.as_mut(),
            p,
            value,
            &mut self.undo,
            &mut self.undo_old,
        )?;
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
        match &mut self.data.old {
            Some(old) => pointer::replace(old, p, value, &mut self.undo_old).map(|_| ()),
            None => Ok(()),
        }
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
        assert_eq!((&e.data.object, e.data.old.as_ref()), (&pod, Some(&pod)));
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
        assert_eq!(e.data.old, Some(old));
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
            e.data.old,
            Some(json!({"data": {"password": "<redacted>", "gone": "Zw=="}, "items": [3]})),
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
            e.data.old,
            Some(json!({"data": {"password": "b2xk", "gone": "<redacted>"}, "items": [3]}))
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
        assert_eq!(e.data.old, Some(json!({"items": [3]})));
        e.rollback();
        assert_eq!(e.data, before);
    }
}
