//! A stored object: its JSON serialised once, plus the few fields reads filter on.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

use crate::order::{self, KeyOrder};

/// Namespace (empty when cluster-scoped) and name: the order objects are listed in.
pub type Key = (String, String);

/// One version of one object, immutable once stored.
#[derive(Debug)]
pub struct Obj {
    /// Namespace (empty for cluster-scoped objects) and `metadata.name`.
    pub key: Key,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`, numeric.
    pub rv: u64,
    /// `metadata.labels`, for label selectors.
    pub labels: BTreeMap<String, String>,
    /// Values of the type's selectable fields, for field selectors.
    pub fields: Vec<(&'static str, String)>,
    /// The object without `kind`/`apiVersion` (as list items are sent), starting with `{`,
    /// its keys in the order a real API server writes them (see [`order`]).
    pub body: Bytes,
    /// `{"metadata":...}` for PartialObjectMetadata responses, built on first use.
    meta: OnceLock<Bytes>,
}

impl Obj {
    /// Builds a stored object from a complete value; `kind`/`apiVersion` are dropped
    /// (they are added back per request version on output).
    pub fn from_value(mut v: Value, selectable: &[&'static str]) -> Self {
        let fields = selectable
            .iter()
            .map(|f| (*f, field_value(&v, f)))
            .collect();
        let meta = v.get("metadata");
        let s = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let namespace = s("namespace");
        let name = s("name");
        let uid = s("uid");
        let rv = s("resourceVersion").parse().unwrap_or(0);
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let order = KeyOrder::of(&v);
        if let Some(m) = v.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        let body = Bytes::from(order::to_vec(&v, order));
        Self {
            key: (namespace, name),
            uid,
            rv,
            labels,
            fields,
            body,
            meta: OnceLock::new(),
        }
    }

    /// Namespace, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        &self.key.0
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.key.1
    }

    /// The value of a field for a field selector.
    pub fn field(&self, path: &str) -> &str {
        match path {
            "metadata.name" => &self.key.1,
            "metadata.namespace" => &self.key.0,
            _ => self
                .fields
                .iter()
                .find(|(f, _)| *f == path)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default(),
        }
    }

    /// The full object as a value, with `apiVersion` and `kind`.
    pub fn to_value(&self, api_version: &str, kind: &str) -> Value {
        let mut v = decode(&self.body).unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(m) = v.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(api_version.into()));
            m.insert("kind".into(), Value::String(kind.into()));
        }
        v
    }

    /// Writes the object with `apiVersion` and `kind` into `out`.
    pub fn write_full(&self, out: &mut BytesMut, api_version: &str, kind: &str) {
        write_typed(out, &self.body, api_version, kind);
    }

    /// Writes the object as `PartialObjectMetadata` into `out`.
    pub fn write_metadata(&self, out: &mut BytesMut) {
        let meta = self.meta.get_or_init(|| {
            let v = decode(&self.body).unwrap_or(Value::Null);
            let m = v
                .get("metadata")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let mut o = Map::new();
            o.insert("metadata".into(), m);
            // A built-in type, whatever the object's own type.
            Bytes::from(order::to_vec(&Value::Object(o), KeyOrder::Struct))
        });
        write_typed(out, meta, "meta.k8s.io/v1", "PartialObjectMetadata");
    }

    /// Writes the object the way the request asked for it.
    pub fn write_as(&self, out: &mut BytesMut, view: &View<'_>) {
        match view {
            View::Full { api_version, kind } => self.write_full(out, api_version, kind),
            View::Metadata => self.write_metadata(out),
        }
    }
}

/// How a request wants objects rendered.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    /// The whole object at the requested version.
    Full {
        /// `apiVersion` to stamp.
        api_version: &'a str,
        /// `kind` to stamp.
        kind: &'a str,
    },
    /// `PartialObjectMetadata` (Accept `as=PartialObjectMetadata`).
    Metadata,
}

/// `{"kind":..,"apiVersion":..,` (a built-in type's order; `apiVersion` first for
/// a custom resource's, which is sorted) + the rest of `body`.
fn write_typed(out: &mut BytesMut, body: &[u8], api_version: &str, kind: &str) {
    out.reserve(body.len() + api_version.len() + kind.len() + 32);
    let ([first, second], [a, b]) = match KeyOrder::of_api_version(api_version) {
        KeyOrder::Struct => (["kind", "apiVersion"], [kind, api_version]),
        KeyOrder::Sorted => (["apiVersion", "kind"], [api_version, kind]),
    };
    out.put_u8(b'{');
    put_json_str(out, first);
    out.put_u8(b':');
    put_json_str(out, a);
    out.put_u8(b',');
    put_json_str(out, second);
    out.put_u8(b':');
    put_json_str(out, b);
    let rest = body.get(1..).unwrap_or_default();
    if rest.first().is_some_and(|&b| b != b'}') {
        out.put_u8(b',');
    }
    if rest.is_empty() {
        out.put_u8(b'}');
    } else {
        out.put_slice(rest);
    }
}

/// Parses JSON into a value, through serde_json's own (optimised) `FromStr`.
pub fn decode(b: &[u8]) -> Option<Value> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses a request body into a value; the error text is serde_json's.
pub fn parse_json(b: &[u8]) -> Result<Value, String> {
    std::str::from_utf8(b)
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|e: serde_json::Error| e.to_string())
}

/// Writes `s` as a JSON string.
pub fn put_json_str(out: &mut BytesMut, s: &str) {
    // Names, kinds and versions never need escaping, but stay correct if they do.
    match serde_json::to_vec(s) {
        Ok(v) => out.put_slice(&v),
        Err(_) => out.put_slice(b"\"\""),
    }
}

/// The value at a dotted path, as a field selector compares it (missing: empty).
fn field_value(v: &Value, path: &str) -> String {
    let mut cur = v;
    for part in path.split('.') {
        match cur.get(part) {
            Some(n) => cur = n,
            None => {
                // Booleans default to false, as the server's field conversion does.
                return if path == "spec.hostNetwork" || path == "spec.unschedulable" {
                    "false".into()
                } else {
                    String::new()
                };
            }
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_with_type_meta() {
        let o = Obj::from_value(
            json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"n",
                   "resourceVersion":"7","labels":{"x":"y"}},"status":{"phase":"Running"}}),
            &["status.phase", "spec.nodeName"],
        );
        assert_eq!(o.rv, 7);
        assert_eq!(o.field("status.phase"), "Running");
        assert_eq!(o.field("spec.nodeName"), "");
        assert_eq!(o.labels.get("x").map(String::as_str), Some("y"));
        assert!(!String::from_utf8_lossy(&o.body).contains("kind"));
        let mut b = BytesMut::new();
        o.write_full(&mut b, "v1", "Pod");
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["metadata"]["name"], "a");
        let mut m = BytesMut::new();
        o.write_metadata(&mut m);
        let v: Value = serde_json::from_slice(&m).expect("json");
        assert_eq!(v["kind"], "PartialObjectMetadata");
        assert!(v.get("status").is_none());
    }
}
