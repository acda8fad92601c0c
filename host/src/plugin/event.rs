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

/// An event lent to a plugin for one call, with the undo log of its changes.
pub struct EventState {
    pub(crate) index: usize,
    pub(crate) data: EventData,
    pub(crate) undo: Vec<Undo>,
    /// Undo log of the previous state (`remove` prunes both states).
    pub(crate) undo_old: Vec<Undo>,
}

impl EventState {
    pub(crate) fn new(index: usize, data: EventData) -> Self {
        EventState {
            index,
            data,
            undo: Vec::new(),
            undo_old: Vec::new(),
        }
    }

    /// Takes back every change the plugin made in this call.
    pub(crate) fn rollback(&mut self) {
        let log = std::mem::take(&mut self.undo);
        pointer::undo(&mut self.data.object, log);
        let log = std::mem::take(&mut self.undo_old);
        if let Some(old) = &mut self.data.old {
            pointer::undo(old, log);
        }
    }

    pub(crate) fn string_at(&self, p: &str) -> Option<String> {
        self.data
            .object
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Removes the pointers from the object and from the previous state: a
    /// field pruned from a notification (a Secret's data, say) must not
    /// reach a sink through `old` or a diff either. Counts the object's.
    pub(crate) fn remove(&mut self, pointers: &[String]) -> u32 {
        let mut n = 0;
        for p in pointers {
            if let Some(step) = pointer::remove(&mut self.data.object, p) {
                self.undo.push(step);
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

    pub(crate) fn set(&mut self, p: &str, json: &str) -> Result<(), String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON for {p}: {e}"))?;
        pointer::set(&mut self.data.object, p, value, &mut self.undo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
