//! The in-memory backend of [`Event`] for native unit tests. It shares
//! [`crate::pointer`] with the host, so a plugin's unit tests see what
//! production sinks get. Not in wasm builds.

use serde_json::Value;

use crate::{Change, Event, EventError};

/// An in-memory event for native unit tests: the same [`Event`] API with no
/// host and no wasm. (Not in wasm builds.)
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    /// Added, modified or deleted.
    pub change: Change,
    /// The object as the plugin chain has left it.
    pub object: Value,
    /// The previous state.
    pub old: Option<Value>,
}

impl TestEvent {
    /// An event of `change` for `object`.
    pub fn new(change: Change, object: Value) -> Self {
        TestEvent {
            change,
            object,
            old: None,
        }
    }

    /// An ADDED event.
    pub fn added(object: Value) -> Self {
        Self::new(Change::Added, object)
    }

    /// A MODIFIED event from `old` to `new`.
    pub fn modified(old: Value, new: Value) -> Self {
        Self::new(Change::Modified, new).with_old(old)
    }

    /// A DELETED event; as in the host, the previous state is the last one.
    pub fn deleted(last: Value) -> Self {
        Self::new(Change::Deleted, last.clone()).with_old(last)
    }

    /// An event of `change` for the object in `json`.
    pub fn from_json(change: Change, json: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::new(change, serde_json::from_str(json)?))
    }

    /// Sets the previous state.
    pub fn with_old(mut self, old: Value) -> Self {
        self.old = Some(old);
        self
    }

    /// The [`Event`] view a plugin's `handle` receives.
    pub fn as_event(&mut self) -> Event<'_> {
        Event::memory(self)
    }

    pub(crate) fn string_at(&self, pointer: &str) -> Option<String> {
        crate::pointer::get(&self.object, pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub(crate) fn remove(&mut self, pointer: &str) -> bool {
        // As the host does: the previous state is pruned too.
        if let Some(old) = &mut self.old {
            crate::pointer::remove(old, pointer);
        }
        crate::pointer::remove(&mut self.object, pointer).is_some()
    }

    /// As the host does: the previous state gets the same value where it
    /// has one, so plugin unit tests see what production sinks get.
    pub(crate) fn set(&mut self, pointer: &str, json: &str) -> Result<(), EventError> {
        let value = value_of(pointer, json)?;
        crate::pointer::set_mirrored(
            &mut self.object,
            self.old.as_mut(),
            pointer,
            value,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .map_err(EventError::Rejected)
    }

    pub(crate) fn set_old(&mut self, pointer: &str, json: &str) -> Result<(), EventError> {
        let value = value_of(pointer, json)?;
        match &mut self.old {
            Some(old) => crate::pointer::replace(old, pointer, value, &mut Vec::new())
                .map(|_| ())
                .map_err(EventError::Rejected),
            None => Ok(()),
        }
    }
}

/// JSON text to set, parsed; the host words its error the same way.
fn value_of(pointer: &str, json: &str) -> Result<Value, EventError> {
    serde_json::from_str(json)
        .map_err(|e| EventError::Rejected(format!("invalid JSON for {pointer}: {e}")))
}
