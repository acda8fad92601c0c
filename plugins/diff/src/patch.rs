//! RFC 6902 JSON Patch generation: the operations that turn one JSON value
//! into another. Written here rather than taken from `json-patch` (whose
//! `jsonptr` types and serde-tagged operations put the .wasm over 200 KB);
//! the output is the same as `json_patch::diff` (a test checks), written
//! straight to JSON text.

use herald_plugin_sdk::pointer;
use serde_json::Value;

/// One operation as JSON text: `{"op":…,"path":…,"value":…}`.
fn op(name: &str, path: &str, value: Option<&Value>) -> String {
    let mut out = String::from("{\"op\":\"");
    out.push_str(name);
    out.push_str("\",\"path\":");
    out.push_str(&Value::from(path).to_string());
    if let Some(v) = value {
        out.push_str(",\"value\":");
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// Appends to `ops` the operations (as JSON text) that turn `old` (at `at`) into `new`.
/// Maps: changed and new keys in `new`'s order, then removed keys. Arrays:
/// item by item; extra old items are removed from the end's side, so each
/// `remove` names the index as it is when it applies.
pub fn diff(old: &Value, new: &Value, at: &mut String, ops: &mut Vec<String>) {
    let len = at.len();
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, nv) in n {
                at.push('/');
                at.push_str(&pointer::escape(k));
                match o.get(k) {
                    Some(ov) => diff(ov, nv, at, ops),
                    None => ops.push(op("add", at, Some(nv))),
                }
                at.truncate(len);
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                at.push('/');
                at.push_str(&pointer::escape(k));
                ops.push(op("remove", at, None));
                at.truncate(len);
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                diff(ov, nv, at, ops);
                at.truncate(len);
            }
            // Extra old items: each removal at the same index shifts the
            // next one into place.
            for _ in n.len()..o.len() {
                at.push('/');
                at.push_str(&n.len().to_string());
                ops.push(op("remove", at, None));
                at.truncate(len);
            }
            for (i, nv) in n.iter().enumerate().skip(o.len()) {
                at.push('/');
                at.push_str(&i.to_string());
                ops.push(op("add", at, Some(nv)));
                at.truncate(len);
            }
        }
        (o, n) if o == n => {}
        (_, n) => ops.push(op("replace", at, Some(n))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(old: Value, new: Value) -> Value {
        let mut out = vec![];
        diff(&old, &new, &mut String::new(), &mut out);
        let text = format!("[{}]", out.join(","));
        // Whatever we produce must apply, old → new.
        let patch: json_patch::Patch = serde_json::from_str(&text).unwrap();
        let mut applied = old;
        json_patch::patch(&mut applied, &patch).unwrap();
        assert_eq!(applied, new, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn matches_json_patch_on_maps_arrays_and_scalars() {
        let cases = [
            (
                json!({"a": 1, "b": {"c": [1, 2, 3]}, "d/e~f": 1}),
                json!({"a": 2, "b": {"c": [1]}, "g": null}),
            ),
            (json!([1, 2]), json!([1, 2, {"x": 1}, 4])),
            (json!({"a": [1, {"b": 1}]}), json!({"a": {"b": 1}})),
            (json!("x"), json!(1)),
            (json!({}), json!({})),
        ];
        for (old, new) in cases {
            let ours = ops(old.clone(), new.clone());
            let theirs = serde_json::to_value(json_patch::diff(&old, &new)).unwrap();
            assert_eq!(ours, theirs, "{old} -> {new}");
        }
    }

    #[test]
    fn escapes_keys_and_shrinks_arrays_from_the_end() {
        assert_eq!(
            ops(json!({"a/b": [1, 2, 3], "~": 1}), json!({"a/b": [1]})),
            json!([
                {"op": "remove", "path": "/a~1b/1"},
                {"op": "remove", "path": "/a~1b/1"},
                {"op": "remove", "path": "/~0"}
            ])
        );
    }
}
