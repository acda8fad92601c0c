//! The order a real API server writes an object's keys in.
//!
//! kube-apiserver encodes a built-in type from its Go struct, so its keys come in the
//! struct's field order: `kind`, `apiVersion`, `metadata`, `spec`, `status`, and
//! `metadata`'s members in `ObjectMeta`'s order (`name`, `namespace`, `uid`,
//! `resourceVersion`, …, `labels`, `annotations`, `ownerReferences`, `finalizers`,
//! `managedFields`). A custom resource is unstructured JSON, written with every map's
//! keys sorted. (Both measured on kube-apiserver v1.28.)
//!
//! The simulator keeps that: a client that reads `metadata.labels` of a built-in
//! object finds it before the annotations, as against a real server, and one that
//! hashes or compares objects meets members out of sorted order. Below the levels
//! named here (a pod's `spec` and `status`, label and annotation maps, which Go sorts)
//! keys are sorted. One difference is left: objects are stored without `kind` and
//! `apiVersion` (stamped per served version), which are written first, so a custom
//! resource's top-level key that sorts between them (`data`, `items`) comes after
//! `kind` here and before it on a real server.

use std::io::Write as _;

use serde_json::{Map, Value};

/// How an object's keys are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrder {
    /// A built-in type: its Go struct's field order.
    Struct,
    /// A custom resource: sorted, at every level.
    Sorted,
}

impl KeyOrder {
    /// The order for objects of `api_version` (`v1`, `apps/v1`, `example.com/v1`).
    /// Built-in groups have no dot or end in `.k8s.io`; a CRD's group has a dot.
    pub fn of_api_version(api_version: &str) -> KeyOrder {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if !group.contains('.') || group.ends_with(".k8s.io") {
            KeyOrder::Struct
        } else {
            KeyOrder::Sorted
        }
    }

    /// The order for `v`, from its `apiVersion` (`Struct` when it has none).
    pub fn of(v: &Value) -> KeyOrder {
        v.get("apiVersion")
            .and_then(Value::as_str)
            .map_or(KeyOrder::Struct, KeyOrder::of_api_version)
    }
}

/// Top-level keys of a built-in object, in the order they are written.
const TOP: &[&str] = &["kind", "apiVersion", "metadata", "spec", "status"];

/// `ObjectMeta`'s fields in declaration order.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `OwnerReference`'s fields in declaration order.
const OWNER_REFERENCE: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];

/// `ManagedFieldsEntry`'s fields in declaration order.
const MANAGED_FIELDS_ENTRY: &[&str] = &[
    "manager",
    "operation",
    "apiVersion",
    "time",
    "fieldsType",
    "fieldsV1",
    "subresource",
];

/// `v` as compact JSON as a real API server writes it: its keys in the order of
/// its `apiVersion`'s type ([`KeyOrder::of`]).
pub fn server_json(v: &Value) -> Vec<u8> {
    to_vec(v, KeyOrder::of(v))
}

/// `v` as compact JSON with its keys in `order`.
pub fn to_vec(v: &Value, order: KeyOrder) -> Vec<u8> {
    let mut out = Vec::new();
    match (order, v) {
        (KeyOrder::Struct, Value::Object(m)) => {
            object(&mut out, m, TOP, |key, value, out| match (key, value) {
                ("metadata", Value::Object(meta)) => {
                    object(out, meta, OBJECT_META, |key, value, out| {
                        match (key, value) {
                            ("ownerReferences", Value::Array(items)) => {
                                array(out, items, OWNER_REFERENCE);
                                true
                            }
                            ("managedFields", Value::Array(items)) => {
                                array(out, items, MANAGED_FIELDS_ENTRY);
                                true
                            }
                            _ => false,
                        }
                    });
                    true
                }
                _ => false,
            })
        }
        // serde_json's maps are sorted (no `preserve_order`).
        _ => write_value(&mut out, v),
    }
    out
}

/// Writes `m` with the keys of `first` first, in that order, then the rest
/// sorted; `nested` writes a member's value itself when it returns true.
fn object(
    out: &mut Vec<u8>,
    m: &Map<String, Value>,
    first: &[&str],
    mut nested: impl FnMut(&str, &Value, &mut Vec<u8>) -> bool,
) {
    out.push(b'{');
    let named = first
        .iter()
        .filter_map(|k| m.get_key_value(*k))
        .map(|(k, v)| (k.as_str(), v));
    let rest = m
        .iter()
        .filter(|(k, _)| !first.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v));
    for (i, (key, value)) in named.chain(rest).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, &Value::String(key.to_string()));
        out.push(b':');
        if !nested(key, value, out) {
            write_value(out, value);
        }
    }
    out.push(b'}');
}

/// Writes `items`, objects among them with the keys of `first` first.
fn array(out: &mut Vec<u8>, items: &[Value], first: &[&str]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match item {
            Value::Object(m) => object(out, m, first, |_, _, _| false),
            other => write_value(out, other),
        }
    }
    out.push(b']');
}

/// `Value`'s `Display`: compiled (optimised) inside serde_json, where a generic
/// `serde_json::to_writer` would be compiled in this crate, unoptimised in tests.
fn write_value(out: &mut Vec<u8>, v: &Value) {
    // Writing to a `Vec` does not fail.
    let _ = write!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(json: &[u8], pointer: &str) -> Vec<String> {
        // Key order of the object at `pointer`, read from the text itself.
        let v: Value = serde_json::from_slice(json).expect("json");
        let target = v.pointer(pointer).expect("pointer").clone();
        let text = String::from_utf8(json.to_vec()).expect("utf-8");
        let mut found: Vec<(usize, String)> = target
            .as_object()
            .expect("object")
            .keys()
            .map(|k| {
                let at = text.find(&format!("\"{k}\":")).expect("key in text");
                (at, k.clone())
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn a_built_in_object_is_written_in_its_structs_order_as_the_api_server_does() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "status": {"phase": "Running"}, "spec": {"nodeName": "n"},
            "metadata": {
                "managedFields": [{"time": "t", "manager": "m", "operation": "Update"}],
                "annotations": {"z": "1", "a": "2"},
                "labels": {"b": "1", "a": "2"},
                "uid": "u", "resourceVersion": "7", "namespace": "ns", "name": "p",
                "ownerReferences": [{"uid": "o", "kind": "ReplicaSet", "name": "rs",
                                     "apiVersion": "apps/v1", "controller": true}],
                "zzz-unknown": 1
            },
            "aaa-extra": true
        });
        let json = to_vec(&pod, KeyOrder::of(&pod));
        // Same content as serde's own writing.
        assert_eq!(serde_json::from_slice::<Value>(&json).expect("json"), pod);
        let text = String::from_utf8(json.clone()).expect("utf-8");
        assert!(text.starts_with(r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns","uid":"u","resourceVersion":"7","labels":{"a":"2","b":"1"},"annotations":{"a":"2","z":"1"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"o","controller":true}],"managedFields":[{"manager":"m","operation":"Update","time":"t"}],"zzz-unknown":1},"spec":"#), "{text}");
        assert_eq!(
            keys(&json, ""),
            [
                "kind",
                "apiVersion",
                "metadata",
                "spec",
                "status",
                "aaa-extra"
            ]
        );
    }

    #[test]
    fn a_custom_resource_is_written_sorted_and_groups_decide_which_is_which() {
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "w", "annotations": {"a": "1"}}, "spec": {"z": 1, "a": 2}});
        let json = to_vec(&w, KeyOrder::of(&w));
        assert_eq!(json, w.to_string().into_bytes());
        assert_eq!(keys(&json, "/metadata"), ["annotations", "name"]);
        for (api_version, order) in [
            ("v1", KeyOrder::Struct),
            ("apps/v1", KeyOrder::Struct),
            ("coordination.k8s.io/v1", KeyOrder::Struct),
            ("apiextensions.k8s.io/v1", KeyOrder::Struct),
            ("example.com/v1", KeyOrder::Sorted),
            ("stable.example.com/v1beta1", KeyOrder::Sorted),
        ] {
            assert_eq!(
                KeyOrder::of_api_version(api_version),
                order,
                "{api_version}"
            );
        }
        assert_eq!(KeyOrder::of(&json!({"metadata": {}})), KeyOrder::Struct);
        // Not an object: written as it is.
        assert_eq!(to_vec(&json!([1, "a"]), KeyOrder::Struct), br#"[1,"a"]"#);
    }
}
