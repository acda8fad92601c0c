//! The change event: what the source emits for every create, update and
//! delete of a watched object, and what flows through dedup and plugins.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod blocks;
mod deferred;
mod doc;
mod found;
mod patch;
pub(crate) mod raw;
mod splice;
#[cfg(test)]
mod testing;

pub use deferred::Deferred;
pub use doc::Doc;
pub use found::Found;
pub use patch::diff;

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    /// The object appeared.
    Added,
    /// The object changed.
    Modified,
    /// The object is gone.
    Deleted,
}

impl ChangeType {
    /// Lower-case name, as used in config and envelopes.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "added",
            ChangeType::Modified => "modified",
            ChangeType::Deleted => "deleted",
        }
    }
}

impl fmt::Display for ChangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ChangeType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "added" => Ok(ChangeType::Added),
            "modified" => Ok(ChangeType::Modified),
            "deleted" => Ok(ChangeType::Deleted),
            other => Err(format!(
                "unknown change type {other:?}: expected added, modified or deleted"
            )),
        }
    }
}

/// Group, version and kind of a watched type (`group` is empty for core).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gvk {
    /// API group, empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

impl From<&kube::api::ApiResource> for Gvk {
    fn from(r: &kube::api::ApiResource) -> Self {
        Gvk {
            group: r.group.clone(),
            version: r.version.clone(),
            kind: r.kind.clone(),
        }
    }
}

/// `metadata.resourceVersion` of an object, as a number (etcd's are; a
/// server whose are not gets `None`).
pub fn resource_version(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}/{}", self.version, self.kind)
        } else {
            write!(f, "{}/{}/{}", self.group, self.version, self.kind)
        }
    }
}

/// One change of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// The watched type the object belongs to.
    pub gvk: Gvk,
    /// The object as it is now (for deletes: its last state).
    pub object: Doc,
    /// The previous state from the cache, for modified and deleted events.
    pub old: Option<Doc>,
    /// When herald saw the change.
    pub observed_at: SystemTime,
    /// Id of the watch that saw the change (`crate::source::WatchSpec::id`); it picks
    /// the watch's plugins and sinks. Empty for events not made by a source.
    pub watch: String,
    /// A periodic resync or restart catch-up re-offering the current state,
    /// not a change the API server reported: the dedup stage drops it when
    /// that state was notified already (or, for a resync of an object never
    /// notified, just remembers it).
    pub resync: bool,
    /// Reported by a watch's first list (`initialList: notify`, or a state
    /// dir's restart catch-up), not by a change the watch saw happen.
    pub initial: bool,
    /// Part of the first list of a watch that was running when herald started,
    /// under `initialList: silent` with a state dir: the state records it without
    /// a notification, unless what it recorded before says the object is new or
    /// changed while herald was down.
    pub quiet: bool,
    /// Replayed by a stream resumed after its checkpoint at a restart: the
    /// first replayed change of an object carries no previous state, which
    /// the pipeline takes from the state dir.
    pub replayed: bool,
}

impl ChangeEvent {
    /// A change observed now, of parsed states.
    pub fn new(change: ChangeType, gvk: Gvk, object: Value, old: Option<Value>) -> Self {
        Self::of_docs(change, gvk, object.into(), old.map(Doc::from))
    }

    /// A change observed now.
    pub fn of_docs(change: ChangeType, gvk: Gvk, object: Doc, old: Option<Doc>) -> Self {
        ChangeEvent {
            change,
            gvk,
            object,
            old,
            observed_at: SystemTime::now(),
            watch: String::new(),
            resync: false,
            initial: false,
            quiet: false,
            replayed: false,
        }
    }

    /// The same event, attributed to the watch `id`.
    pub fn with_watch(mut self, id: impl Into<String>) -> Self {
        self.watch = id.into();
        self
    }

    /// `metadata.namespace`, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.object.namespace()
    }

    /// `metadata.name`, or empty.
    pub fn name(&self) -> &str {
        self.object.name().unwrap_or_default()
    }

    /// `metadata.uid`, or empty.
    pub fn uid(&self) -> &str {
        self.object.uid().unwrap_or_default()
    }

    /// `metadata.resourceVersion`, or empty.
    pub fn resource_version(&self) -> &str {
        self.object.resource_version().unwrap_or_default()
    }
}
