//! `metadata.managedFields` as a real API server writes them (opt-in:
//! [`SimBuilder::real_writes`](crate::SimBuilder::real_writes)).
//!
//! A real server replaces whatever `managedFields` a client sends with its own record
//! of who set which field: for a client that writes a whole pod, one `Update` entry
//! whose `fieldsV1` names every field the writer set, as a tree of small maps
//! (`{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{}}}}}`),
//! about 2.8 KB for the fixture pod. That tree is what makes a real object larger and
//! more costly to parse than the same object from a simulator that keeps what it was
//! given; this module writes it the same way for the writes the simulator takes.
//!
//! Simplifications: one entry, owned by the last writer (`herald-sim-client`), with
//! every field (a real server keeps one entry per manager and operation); lists of
//! maps are keyed by `name`, `uid`, `containerPort` or `type` as the real schemas
//! key them, other lists are atomic (`{}`).

use serde_json::{Map, Value, json};

/// The manager of the entry.
pub(crate) const MANAGER: &str = "herald-sim-client";

/// `metadata` fields the server owns; they are not in a writer's set.
const SERVER_META: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Sets `v`'s `metadata.managedFields` to one `Update` entry for every field it has.
pub(crate) fn stamp(v: &mut Value, api_version: &str, now: &str) {
    let fields = fields_v1(v);
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(
            "managedFields".into(),
            json!([{
                "manager": MANAGER,
                "operation": "Update",
                "apiVersion": api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }]),
        );
    }
}

/// The `fieldsV1` tree of an object: its fields but the type and server-owned ones.
fn fields_v1(v: &Value) -> Value {
    let mut out = Map::new();
    let Some(root) = v.as_object() else {
        return Value::Object(out);
    };
    for (k, child) in root {
        match k.as_str() {
            // Status is the server's (a new pod's is reset; the kubelet writes it).
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                let mut meta = Map::new();
                for (mk, mv) in child.as_object().into_iter().flatten() {
                    if !SERVER_META.contains(&mk.as_str()) {
                        meta.insert(format!("f:{mk}"), set_of(mv));
                    }
                }
                out.insert("f:metadata".into(), Value::Object(meta));
            }
            _ => {
                out.insert(format!("f:{k}"), set_of(child));
            }
        }
    }
    Value::Object(out)
}

/// The set of one value: `{}` for a leaf or an atomic list, `{".":{}, "f:…":…}` for a
/// map, `{"k:{…}": …}` per item for a keyed list.
fn set_of(v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut out = Map::new();
            out.insert(".".into(), json!({}));
            for (k, child) in m {
                out.insert(format!("f:{k}"), set_of(child));
            }
            Value::Object(out)
        }
        Value::Array(items) if !items.is_empty() => {
            let mut out = Map::new();
            for item in items {
                let Some(key) = item_key(item) else {
                    return json!({});
                };
                out.insert(format!("k:{key}"), set_of(item));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

/// The merge key of a list item, as compact JSON (`{"name":"web"}`).
fn item_key(item: &Value) -> Option<String> {
    let m = item.as_object()?;
    let key = if let Some(port) = m.get("containerPort") {
        json!({"containerPort": port, "protocol": m.get("protocol").cloned().unwrap_or(json!("TCP"))})
    } else {
        let (k, v) = ["name", "uid", "type"]
            .iter()
            .find_map(|k| Some((*k, m.get(*k)?)))?;
        json!({ k: v })
    };
    Some(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_field_the_writer_set_and_none_the_server_owns() {
        let mut p = crate::fixtures::pod("ns", "web-1", &[("app", "web")]);
        stamp(&mut p, "v1", "2026-01-01T00:00:00Z");
        let mf = &p["metadata"]["managedFields"];
        assert_eq!(mf.as_array().map(Vec::len), Some(1), "{mf}");
        assert_eq!(mf[0]["manager"], MANAGER);
        let f = &mf[0]["fieldsV1"];
        assert_eq!(f["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(f["f:metadata"].get("f:name").is_none());
        assert!(f["f:metadata"].get("f:managedFields").is_none());
        let web = &f["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(web["f:image"], json!({}));
        assert!(web["f:ports"]["k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"].is_object());
        assert!(web["f:env"]["k:{\"name\":\"SETTING_0\"}"]["f:value"].is_object());
        // Like the real server's entry for this pod (2.8 KB): a tree, not a few bytes.
        let size = mf.to_string().len();
        assert!((2_000..4_000).contains(&size), "{size}");
    }
}
