//! The event a plugin sees, backed by the host (in wasm) or by memory (in
//! native unit tests). Both backends behave the same.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[cfg(not(target_arch = "wasm32"))]
use crate::TestEvent;
use crate::bindings::herald::plugin::types as wit;
use crate::{Change, EventError};

mod removal;

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

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn memory(event: &'a mut TestEvent) -> Self {
        Event {
            inner: Inner::Memory(event),
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

    /// The value at `pointer` as JSON text (WIT `get`); `None` if absent or
    /// if `pointer` is not a valid pointer.
    pub fn get_json(&self, pointer: &str) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.get(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => crate::pointer::get(&m.object, pointer).map(Value::to_string),
        }
    }

    /// The value at `pointer`, parsed; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`EventError::Pointer`] for a pointer that is not valid (`~2`), and
    /// [`EventError::Unparsable`] for a value serde_json cannot read back
    /// (nested deeper than 128 levels).
    ///
    /// ```
    /// use herald_plugin_sdk::{TestEvent, Value};
    /// let mut e = TestEvent::added(serde_json::json!({"spec": {"replicas": 3}}));
    /// let event = e.as_event();
    /// assert_eq!(event.get("/spec/replicas").unwrap(), Some(Value::from(3)));
    /// assert_eq!(event.get("/spec/absent").unwrap(), None);
    /// assert!(event.get("/spec/~2").is_err());
    /// ```
    pub fn get(&self, pointer: &str) -> Result<Option<Value>, EventError> {
        crate::pointer::tokens(pointer)?;
        parse(pointer, self.get_json(pointer))
    }

    /// The value at `pointer` deserialised into `T`; `Ok(None)` if absent.
    ///
    /// # Errors
    /// Those of [`Event::get`], and [`EventError::WrongShape`] when the
    /// value is there but is not a `T`.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// let mut e = TestEvent::added(serde_json::json!({"spec": {"replicas": 3, "paused": "no"}}));
    /// let event = e.as_event();
    /// assert_eq!(event.get_as::<u32>("/spec/replicas").unwrap(), Some(3));
    /// assert_eq!(event.get_as::<u32>("/spec/absent").unwrap(), None);
    /// assert!(event.get_as::<bool>("/spec/paused").is_err());
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, pointer: &str) -> Result<Option<T>, EventError> {
        crate::pointer::tokens(pointer)?;
        let Some(text) = self.get_json(pointer) else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| EventError::WrongShape {
                pointer: pointer.to_string(),
                message: e.to_string(),
            })
    }

    /// The value at `pointer` if it is a string (WIT `get-string`). The
    /// cheap accessor: no JSON crosses the boundary.
    pub fn get_string(&self, pointer: &str) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.get_string(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.string_at(pointer),
        }
    }

    /// Old name of [`Event::get_string`].
    #[deprecated(note = "use get_string, the WIT's name")]
    pub fn get_str(&self, pointer: &str) -> Option<String> {
        self.get_string(pointer)
    }

    /// The label `key` of the object.
    pub fn label(&self, key: &str) -> Option<String> {
        self.get_string(&format!("/metadata/labels/{}", crate::pointer::escape(key)))
    }

    /// The annotation `key` of the object.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.get_string(&format!(
            "/metadata/annotations/{}",
            crate::pointer::escape(key)
        ))
    }

    /// The value at `pointer` in the previous state (modified and deleted
    /// events), as JSON text (WIT `get-old`).
    pub fn get_old_json(&self, pointer: &str) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.get_old(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m
                .old
                .as_ref()
                .and_then(|o| crate::pointer::get(o, pointer))
                .map(Value::to_string),
        }
    }

    /// The value at `pointer` in the previous state, parsed; `Ok(None)` if
    /// absent or if there is no previous state.
    ///
    /// # Errors
    /// As [`Event::get`].
    pub fn get_old(&self, pointer: &str) -> Result<Option<Value>, EventError> {
        crate::pointer::tokens(pointer)?;
        parse(pointer, self.get_old_json(pointer))
    }

    /// The keys of the map at `pointer`, each once in the object's order, or
    /// the indices of the array there (`"0"`, `"1"`, …); `None` if absent or
    /// a scalar (WIT `keys`). Walks a map or an array without copying its
    /// values into the plugin.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::added(json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    ///                                     "metadata": {"labels": {"app": "web", "tier": "db"}}}));
    /// let e = e.as_event();
    /// assert_eq!(e.keys("/spec/containers"), Some(vec!["0".into(), "1".into()]));
    /// assert_eq!(e.keys("/metadata/labels").map(|k| k.len()), Some(2));
    /// assert_eq!(e.keys("/spec/containers/0/name"), None);
    /// ```
    pub fn keys(&self, pointer: &str) -> Option<Vec<String>> {
        match &self.inner {
            Inner::Host(e) => e.keys(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => {
                crate::pointer::get(&m.object, pointer).and_then(crate::pointer::keys)
            }
        }
    }

    /// [`Event::keys`] in the previous state (WIT `keys-old`).
    pub fn keys_old(&self, pointer: &str) -> Option<Vec<String>> {
        match &self.inner {
            Inner::Host(e) => e.keys_old(pointer),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m
                .old
                .as_ref()
                .and_then(|o| crate::pointer::get(o, pointer))
                .and_then(crate::pointer::keys),
        }
    }

    /// Removes every pointer that exists, from the object and from the
    /// previous state, and returns how many were removed from the object.
    /// A `*` is a key like any other here (RFC 6901); for `prune`'s
    /// wildcards use [`Event::remove_matching`].
    ///
    /// A field a plugin removes or overwrites is removed or overwritten in
    /// the previous state too, so no sink renders, in `old` or in a
    /// diff/patch, a value the chain hid.
    ///
    /// # Errors
    /// [`EventError::Pointer`] if any pointer is invalid or read-only (the
    /// object's identity: `""`, `/apiVersion`, `/kind`, `/metadata`,
    /// `/metadata/name`, `namespace`, `uid`); nothing is removed then.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::modified(
    ///     json!({"status": {"phase": "Pending"}, "spec": {}}),
    ///     json!({"status": {"phase": "Running"}, "spec": {}}),
    /// );
    /// assert_eq!(e.as_event().remove(&["/status"]), Ok(1));
    /// assert_eq!(e.old, Some(json!({"spec": {}})));
    /// assert!(e.as_event().remove(&["/metadata/name"]).is_err());
    /// ```
    pub fn remove<S: AsRef<str>>(&mut self, pointers: &[S]) -> Result<u32, EventError> {
        for p in pointers {
            crate::pointer::check_writable(p.as_ref())?;
        }
        Ok(match &mut self.inner {
            Inner::Host(e) => {
                let list: Vec<String> = pointers.iter().map(|p| p.as_ref().to_string()).collect();
                e.remove(&list)
            }
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => pointers.iter().filter(|p| m.remove(p.as_ref())).count() as u32,
        })
    }

    /// Sets the value at `pointer`, creating missing parents in the object.
    /// Where the previous state has a value at `pointer`, it gets the same
    /// value; nothing is created there.
    ///
    /// A field a plugin removes or overwrites is removed or overwritten in
    /// the previous state too, so no sink renders, in `old` or in a
    /// diff/patch, a value the chain hid.
    ///
    /// # Errors
    /// [`EventError::Pointer`] for an invalid or read-only pointer (see
    /// [`Event::remove`]), [`EventError::InvalidValue`] for a value that is
    /// not JSON, [`EventError::Rejected`] for a change that cannot be made
    /// (an index out of bounds, a parent that is a string). Nothing changes
    /// then.
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
    /// assert!(event.set("/kind", "Other").is_err());
    /// assert_eq!(e.old, Some(json!({"data": {"password": "<redacted>"}})));
    /// ```
    pub fn set<T: Serialize + ?Sized>(
        &mut self,
        pointer: &str,
        value: &T,
    ) -> Result<(), EventError> {
        let json = to_json(pointer, value)?;
        self.set_json(pointer, &json)
    }

    /// [`Event::set`] from JSON text.
    pub fn set_json(&mut self, pointer: &str, json: &str) -> Result<(), EventError> {
        crate::pointer::check_writable(pointer)?;
        match &mut self.inner {
            Inner::Host(e) => e.set(pointer, json).map_err(EventError::Rejected),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.set(pointer, json),
        }
    }

    /// Sets the value at `pointer` in the previous state only, where it has
    /// one; nothing is created, and the object is left alone. For hiding a
    /// value the object no longer has: a redacted key the change deleted.
    ///
    /// # Errors
    /// As [`Event::set`].
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
    ) -> Result<(), EventError> {
        let json = to_json(pointer, value)?;
        self.set_old_json(pointer, &json)
    }

    /// [`Event::set_old`] from JSON text.
    pub fn set_old_json(&mut self, pointer: &str, json: &str) -> Result<(), EventError> {
        crate::pointer::check_writable(pointer)?;
        match &mut self.inner {
            Inner::Host(e) => e.set_old(pointer, json).map_err(EventError::Rejected),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.set_old(pointer, json),
        }
    }

    /// The whole object as JSON text (WIT `to-json`).
    pub fn to_json(&self) -> String {
        match &self.inner {
            Inner::Host(e) => e.to_json(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.object.to_string(),
        }
    }

    /// The whole previous state as JSON text, if there is one (WIT
    /// `old-to-json`).
    pub fn old_to_json(&self) -> Option<String> {
        match &self.inner {
            Inner::Host(e) => e.old_to_json(),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(m) => m.old.as_ref().map(Value::to_string),
        }
    }

    /// The whole object, parsed. Costs a full parse: prefer the accessors.
    ///
    /// # Errors
    /// [`EventError::Unparsable`] when serde_json cannot read it back.
    pub fn object(&self) -> Result<Value, EventError> {
        parse("", Some(self.to_json())).map(|v| v.unwrap_or(Value::Null))
    }

    /// The whole previous state, parsed, if there is one.
    ///
    /// # Errors
    /// As [`Event::object`].
    pub fn old_object(&self) -> Result<Option<Value>, EventError> {
        parse("", self.old_to_json())
    }
}

/// Parses JSON text the host (or memory) gave for `pointer`.
fn parse(pointer: &str, text: Option<String>) -> Result<Option<Value>, EventError> {
    let Some(text) = text else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| EventError::Unparsable {
            pointer: pointer.to_string(),
            message: e.to_string(),
        })
}

fn to_json<T: Serialize + ?Sized>(pointer: &str, value: &T) -> Result<String, EventError> {
    serde_json::to_string(value).map_err(|e| EventError::InvalidValue {
        pointer: pointer.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pointer::PointerError;
    use serde_json::json;

    fn pod() -> TestEvent {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "a", "namespace": "n", "uid": "u", "labels": {"app": "web"}},
                         "spec": {"replicas": 3}});
        TestEvent::modified(pod.clone(), pod)
    }

    #[test]
    fn identity_is_read_only_and_nothing_changes_when_refused() {
        let mut e = pod();
        let before = e.clone();
        let mut event = e.as_event();
        for p in [
            "",
            "/apiVersion",
            "/kind",
            "/metadata",
            "/metadata/name",
            "/metadata/uid",
        ] {
            assert_eq!(
                event.set(p, "x"),
                Err(EventError::Pointer(PointerError::ReadOnly(p.into()))),
                "{p}"
            );
            assert!(event.set_old(p, "x").is_err(), "{p}");
            // One read-only pointer among others: nothing is removed.
            assert!(event.remove(&["/spec", p]).is_err(), "{p}");
        }
        assert!(matches!(
            event.set("/metadata/~2", &1),
            Err(EventError::Pointer(PointerError::BadEscape(_)))
        ));
        assert!(event.remove(&["/metadata/~2"]).is_err());
        assert_eq!(e, before);
    }

    #[test]
    fn getters_report_bad_pointers_shapes_and_unparsable_values() {
        let mut e = pod();
        let event = e.as_event();
        assert_eq!(event.get_as::<u32>("/spec/replicas"), Ok(Some(3)));
        assert_eq!(event.get_as::<u32>("/spec/absent"), Ok(None));
        let err = event.get_as::<String>("/spec/replicas").unwrap_err();
        assert!(
            matches!(&err, EventError::WrongShape { pointer, message }
                if pointer == "/spec/replicas" && message.contains("expected a string")),
            "{err}"
        );
        assert!(matches!(
            event.get("/spec/~3"),
            Err(EventError::Pointer(PointerError::BadEscape(_)))
        ));
        assert_eq!(event.get_json("/spec/~3"), None);
        // Deeper than serde_json reads back: said, not swallowed.
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let mut d = TestEvent::added(json!({"deep": deep}));
        let event = d.as_event();
        assert!(matches!(event.object(), Err(EventError::Unparsable { .. })));
        assert!(matches!(
            event.get("/deep"),
            Err(EventError::Unparsable { pointer, .. }) if pointer == "/deep"
        ));
    }

    #[test]
    fn remove_matching_expands_stars_in_both_states_and_remove_does_not() {
        let old = json!({"kind": "Pod", "spec": {"containers": [{"env": 1}, {"env": 2}], "*": 1}});
        let new = json!({"kind": "Pod", "spec": {"containers": [{"env": 3}], "*": 2}});
        let mut e = TestEvent::modified(old, new);
        let mut event = e.as_event();
        assert_eq!(event.remove_matching(&["/spec/containers/*/env"]), Ok(1));
        assert_eq!(event.remove(&["/spec/*"]), Ok(1), "a literal key");
        assert_eq!(
            e.object,
            json!({"kind": "Pod", "spec": {"containers": [{}]}})
        );
        assert_eq!(
            e.old,
            Some(json!({"kind": "Pod", "spec": {"containers": [{}, {}]}}))
        );
        // A wildcard that reaches identity fields is refused as a whole.
        let mut p = pod();
        assert!(p.as_event().remove_matching(&["/metadata/*"]).is_err());
        assert_eq!(p, pod());
    }
}
