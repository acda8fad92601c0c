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
}

impl EventState {
    pub(crate) fn new(index: usize, data: EventData) -> Self {
        EventState {
            index,
            data,
            undo: Vec::new(),
        }
    }

    /// Takes back every change the plugin made in this call.
    pub(crate) fn rollback(&mut self) {
        let log = std::mem::take(&mut self.undo);
        pointer::undo(&mut self.data.object, log);
    }

    pub(crate) fn string_at(&self, p: &str) -> Option<String> {
        self.data
            .object
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub(crate) fn remove(&mut self, pointers: &[String]) -> u32 {
        let mut n = 0;
        for p in pointers {
            if let Some(step) = pointer::remove(&mut self.data.object, p) {
                self.undo.push(step);
                n += 1;
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
