//! What happened to an object: added, modified or deleted.

use crate::bindings::herald::plugin::types as wit;

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The object appeared.
    Added,
    /// The object changed; [`Event::get_old`] reads the previous state.
    Modified,
    /// The object is gone; the event carries its last state.
    Deleted,
}

impl Change {
    /// `added`, `modified` or `deleted`, as config files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Modified => "modified",
            Change::Deleted => "deleted",
        }
    }

    /// Reads `added`, `modified` or `deleted`. By hand rather than with serde:
    /// a derived enum costs plugins more .wasm than this.
    ///
    /// ```
    /// use herald_plugin_sdk::Change;
    /// assert_eq!(Change::from_name("deleted"), Some(Change::Deleted));
    /// assert_eq!(Change::from_name("updated"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "added" => Some(Change::Added),
            "modified" => Some(Change::Modified),
            "deleted" => Some(Change::Deleted),
            _ => None,
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Change> for Change {
    fn from(c: wit::Change) -> Self {
        match c {
            wit::Change::Added => Change::Added,
            wit::Change::Modified => Change::Modified,
            wit::Change::Deleted => Change::Deleted,
        }
    }
}
