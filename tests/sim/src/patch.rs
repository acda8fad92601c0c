//! PATCH bodies: JSON patch, merge patch, strategic merge patch (approximated) and
//! server-side apply (approximated as a merge of the applied configuration).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch flavours, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`: a merge patch whose lists of named
    /// objects merge by `name`, honouring `$patch: delete|replace`.
    Strategic,
    /// `application/apply-patch+yaml`: the applied configuration merged into the object.
    Apply,
}

impl PatchKind {
    /// The kind for a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let mime = ct.split(';').next().unwrap_or_default().trim();
        match mime {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Parses a patch body once, before the store is locked.
///
/// # Errors
/// `400 BadRequest` for a body that does not parse.
pub fn parse(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    let bad = |e: String| ApiError::bad_request(format!("error decoding patch: {e}"));
    match kind {
        PatchKind::Apply => serde_yaml_ng::from_slice(body).map_err(|e| bad(e.to_string())),
        _ => crate::object::parse_json(body).map_err(bad),
    }
}

/// Applies a parsed patch to `doc`.
///
/// # Errors
/// `422 Invalid` when a JSON patch operation fails (a failed `test`, a missing path).
pub fn apply(kind: PatchKind, doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })
        }
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: patch is not an object",
                ));
            }
            json_patch::merge(doc, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: patch is not an object",
                ));
            }
            strategic_merge(doc, patch);
            Ok(())
        }
    }
}

fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = strip_directives(patch);
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *doc = Value::Null;
            return;
        }
        Some("replace") => {
            *doc = strip_directives(patch);
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(d) = doc else { return };
    for (k, pv) in p {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            d.remove(k);
            continue;
        }
        match (d.get_mut(k), pv) {
            (Some(dv @ Value::Array(_)), Value::Array(pa)) if named_list(dv) && named_items(pa) => {
                merge_named_list(dv, pa);
            }
            (Some(dv @ Value::Object(_)), Value::Object(_)) => strategic_merge(dv, pv),
            _ => {
                d.insert(k.clone(), strip_directives(pv));
            }
        }
    }
}

fn named_items(a: &[Value]) -> bool {
    !a.is_empty()
        && a.iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

fn named_list(v: &Value) -> bool {
    v.as_array().is_some_and(|a| {
        a.iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
    })
}

/// Lists like `containers`, `env` and `volumes` merge by their `name` key.
fn merge_named_list(doc: &mut Value, patch: &[Value]) {
    let Value::Array(items) = doc else { return };
    for p in patch {
        let name = p.get("name");
        let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
        match items.iter().position(|i| i.get("name") == name) {
            Some(i) if delete => {
                items.remove(i);
            }
            Some(i) => strategic_merge(&mut items[i], p),
            None if delete => {}
            None => items.push(strip_directives(p)),
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patch() {
        let mut d = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        apply(
            PatchKind::Merge,
            &mut d,
            &json!({"a": {"b": null, "d": 4}, "l": [3]}),
        )
        .expect("merge");
        assert_eq!(d, json!({"a": {"c": 2, "d": 4}, "l": [3]}));
        let p = json!([{"op": "replace", "path": "/a/c", "value": 9}, {"op": "add", "path": "/l/-", "value": 4}]);
        apply(PatchKind::Json, &mut d, &p).expect("json patch");
        assert_eq!(d, json!({"a": {"c": 9, "d": 4}, "l": [3, 4]}));
        let bad = json!([{"op": "test", "path": "/a/c", "value": 1}]);
        assert_eq!(
            apply(PatchKind::Json, &mut d, &bad).map_err(|e| e.code),
            Err(422)
        );
    }

    #[test]
    fn strategic_merges_named_lists() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let p = json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}],
                       "$setElementOrder/containers": [{"name": "a"}]}});
        apply(PatchKind::Strategic, &mut d, &p).expect("smp");
        assert_eq!(
            d,
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}})
        );
        let p = json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
        apply(PatchKind::Strategic, &mut d, &p).expect("smp delete");
        assert_eq!(d["spec"]["containers"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(PatchKind::from_content_type("application/json"), None);
        assert!(parse(PatchKind::Apply, b"metadata:\n  labels:\n    a: b\n").is_ok());
    }
}
