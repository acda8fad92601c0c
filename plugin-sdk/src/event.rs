//! The event a plugin sees, backed by the host (in wasm) or by memory (in
//! native unit tests). Both backends behave the same.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

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

/// One change of one Kubernetes object.
///
/// Accessors that take a `pointer` use RFC 6901 JSON pointers
/// (`/metadata/labels/app`); [`crate::pointer::escape`] escapes a key that
/// contains `/` or `~`.
pub struct Event<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Host(&'a wit::Event),
    // Native builds only: keeps the in-memory backend out of plugin .wasm files.
    #[cfg(not(target_arch = "wasm32"))]
    Memory(&'a mut TestEvent),
}

impl<'a> Event<'a> {
    pub(crate) fn host(event: &'a wit::Event) -> Self {
        Event {
            inner: Inner::Host(event),
        }
    }

    /// Added, modified or deleted.
    pub fn change(&self) -> Change {
        match &self.inner {
            Inner::Host(e) => e.change().into(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.change,
        }
    }

    /// `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(&self) -> String {
        match &self.inner {
            Inner::Host(e) => e.api_version(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.string_at("/apiVersion").unwrap_or_default(),
        }
    }

    /// `kind`, e.g. `Deployment`.
    pub fn kind(&self) -> String {
        match &self.inner {
            Inner::Host(e) => e.kind(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.string_at("/kind").unwrap_or_default(),
        }
    }

    /// `metadata.namespace`; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.namespace(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.string_at("/metadata/namespace"),
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> String {
        match &self.inner {
            Inner::Host(e) => e.name(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.string_at("/metadata/name").unwrap_or_default(),
        }
    }

    /// The value at `pointer` as JSON text.
    pub fn get_json(&self, pointer: &str) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.get(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.object.pointer(pointer).map(Value::to_string),
        }
    }

    /// The value at `pointer`, parsed.
    pub fn get(&self, pointer: &str) -> Option<Value> {
        self.get_json(pointer)
            .and_then(|t| serde_json::from_str(&t).ok())
    }

    /// The value at `pointer` deserialised into `T`; `None` if absent,
    /// `Some(Err)` if it has another shape.
    pub fn get_as<T: DeserializeOwned>(&self, pointer: &str) -> Option<Result<T, String>> {
        self.get_json(pointer)
            .map(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    }

    /// The value at `pointer` if it is a string. The cheap accessor: no JSON
    /// crosses the boundary.
    pub fn get_str(&self, pointer: &str) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.get_string(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.string_at(pointer),
        }
    }

    /// The label `key` of the object.
    pub fn label(&self, key: &str) -> Option<String> {
        self.get_str(&format!("/metadata/labels/{}", crate::pointer::escape(key)))
    }

    /// The annotation `key` of the object.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.get_str(&format!(
            "/metadata/annotations/{}",
            crate::pointer::escape(key)
        ))
    }

    /// The value at `pointer` in the previous state (modified and deleted
    /// events), as JSON text.
    pub fn get_old_json(&self, pointer: &str) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.get_old(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m
                .old
                .as_ref()
                .and_then(|o| o.pointer(pointer))
                .map(Value::to_string),
        }
    }

    /// The value at `pointer` in the previous state, parsed.
    pub fn get_old(&self, pointer: &str) -> Option<Value> {
        self.get_old_json(pointer)
            .and_then(|t| serde_json::from_str(&t).ok())
    }

    /// Removes every pointer that exists, from the object and from the
    /// previous state, and returns how many were removed from the object.
    ///
    /// A field a plugin removes or overwrites is removed or overwritten in
    /// the previous state too, so no sink renders, in `old` or in a
    /// diff/patch, a value the chain hid.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::modified(
    ///     json!({"status": {"phase": "Pending"}, "spec": {}}),
    ///     json!({"status": {"phase": "Running"}, "spec": {}}),
    /// );
    /// assert_eq!(e.as_event().remove(&["/status"]), 1);
    /// assert_eq!(e.old, Some(json!({"spec": {}})));
    /// ```
    pub fn remove<S: AsRef<str>>(&mut self, pointers: &[S]) -> u32 {
        match &mut self.inner {
            Inner::Host(e) => {
                let list: Vec<String> = pointers.iter().map(|p| p.as_ref().to_string()).collect();
                e.remove(&list)
            }
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => pointers.iter().filter(|p| m.remove(p.as_ref())).count() as u32,
        }
    }

    /// Sets the value at `pointer`, creating missing parents in the object.
    /// Where the previous state has a value at `pointer`, it gets the same
    /// value; nothing is created there.
    ///
    /// A field a plugin removes or overwrites is removed or overwritten in
    /// the previous state too, so no sink renders, in `old` or in a
    /// diff/patch, a value the chain hid.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::modified(
    ///     json!({"data": {"password": "b2xk"}}),
    ///     json!({"data": {"password": "bmV3", "user": "dQ=="}}),
    /// );
    /// let mut event = e.as_event();
    /// event.set("/data/password", "<redacted>").unwrap();
    /// event.set("/data/user", "<redacted>").unwrap();
    /// assert_eq!(e.old, Some(json!({"data": {"password": "<redacted>"}})));
    /// ```
    pub fn set<T: Serialize + ?Sized>(&mut self, pointer: &str, value: &T) -> Result<(), String> {
        let json = serde_json::to_string(value).map_err(|e| e.to_string())?;
        self.set_json(pointer, &json)
    }

    /// [`Event::set`] from JSON text.
    pub fn set_json(&mut self, pointer: &str, json: &str) -> Result<(), String> {
        match &mut self.inner {
            Inner::Host(e) => e.set(pointer, json),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.set(pointer, json),
        }
    }

    /// Sets the value at `pointer` in the previous state only, where it has
    /// one; nothing is created, and the object is left alone. For hiding a
    /// value the object no longer has: a redacted key the change deleted.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::modified(
    ///     json!({"data": {"legacy": "b2xk"}}),
    ///     json!({"data": {}}),
    /// );
    /// e.as_event().set_old("/data/legacy", "<redacted>").unwrap();
    /// assert_eq!(e.old, Some(json!({"data": {"legacy": "<redacted>"}})));
    /// assert_eq!(e.object, json!({"data": {}}));
    /// ```
    pub fn set_old<T: Serialize + ?Sized>(
        &mut self,
        pointer: &str,
        value: &T,
    ) -> Result<(), String> {
        let json = serde_json::to_string(value).map_err(|e| e.to_string())?;
        self.set_old_json(pointer, &json)
    }

    /// [`Event::set_old`] from JSON text.
    pub fn set_old_json(&mut self, pointer: &str, json: &str) -> Result<(), String> {
        match &mut self.inner {
            Inner::Host(e) => e.set_old(pointer, json),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.set_old(pointer, json),
        }
    }

    /// The whole object as JSON text.
    pub fn to_json(&self) -> String {
        match &self.inner {
            Inner::Host(e) => e.to_json(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.object.to_string(),
        }
    }

    /// The whole object, parsed. Costs a full parse: prefer the accessors.
    pub fn object(&self) -> Value {
        serde_json::from_str(&self.to_json()).unwrap_or(Value::Null)
    }

    /// The whole previous state, parsed, if there is one.
    pub fn old_object(&self) -> Option<Value> {
        let text = match &self.inner {
            Inner::Host(e) => e.old_to_json(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.old.as_ref().map(Value::to_string),
        }?;
        serde_json::from_str(&text).ok()
    }
}

/// An in-memory event for native unit tests: the same [`Event`] API with no
/// host and no wasm. (Not in wasm builds.)
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    /// Added, modified or deleted.
    pub change: Change,
    /// The object as the plugin chain has left it.
    pub object: Value,
    /// The previous state.
    pub old: Option<Value>,
}

#[cfg(not(target_arch = "wasm32"))]
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
        Event {
            inner: Inner::Memory(self),
        }
    }

    fn string_at(&self, pointer: &str) -> Option<String> {
        self.object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn remove(&mut self, pointer: &str) -> bool {
        // As the host does: the previous state is pruned too.
        if let Some(old) = &mut self.old {
            crate::pointer::remove(old, pointer);
        }
        crate::pointer::remove(&mut self.object, pointer).is_some()
    }

    /// As the host does: the previous state gets the same value where it
    /// has one, so plugin unit tests see what production sinks get.
    fn set(&mut self, pointer: &str, json: &str) -> Result<(), String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON for {pointer}: {e}"))?;
        crate::pointer::set_mirrored(
            &mut self.object,
            self.old.as_mut(),
            pointer,
            value,
            &mut Vec::new(),
            &mut Vec::new(),
        )
    }

    fn set_old(&mut self, pointer: &str, json: &str) -> Result<(), String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON for {pointer}: {e}"))?;
        match &mut self.old {
            Some(old) => crate::pointer::replace(old, pointer, value, &mut Vec::new()).map(|_| ()),
            None => Ok(()),
        }
    }
}
