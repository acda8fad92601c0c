//! CustomResourceDefinition objects: validation, the status a real server gives them,
//! and the resource types they make the server serve.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::ids;
use crate::types::ResourceType;

/// The CRD group/resource.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";
/// The CRD plural.
pub const CRD_PLURAL: &str = "customresourcedefinitions";

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| Some(s.as_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The types a CRD object serves (one per served version).
///
/// # Errors
/// `422 Invalid` if the object is not a usable CRD.
pub fn served_types(crd: &Value) -> Result<Vec<ResourceType>, ApiError> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let invalid = |m: &str| ApiError::invalid("CustomResourceDefinition", name, m.to_string());
    let spec = crd
        .get("spec")
        .ok_or_else(|| invalid("spec: Required value"))?;
    let s = |p: &str| spec.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let group = s("/group");
    let plural = s("/names/plural");
    let kind = s("/names/kind");
    if group.is_empty() || !group.contains('.') {
        return Err(invalid(
            "spec.group: Invalid value: should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() || kind.is_empty() {
        return Err(invalid(
            "spec.names.plural and spec.names.kind: Required value",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(&format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        )));
    }
    let namespaced = match s("/scope") {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(invalid(&format!(
                "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            )));
        }
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("spec.versions: Invalid value: must have at least one version"))?;
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        return Err(invalid(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        ));
    }
    let singular = match s("/names/singular") {
        "" => kind.to_ascii_lowercase(),
        other => other.to_string(),
    };
    let short_names = strs(spec.pointer("/names/shortNames"));
    let categories = strs(spec.pointer("/names/categories"));
    let mut out = Vec::new();
    for v in versions {
        let vname = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if vname.is_empty() {
            return Err(invalid("spec.versions[].name: Required value"));
        }
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        out.push(ResourceType {
            group: group.to_string(),
            version: vname.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            namespaced,
            short_names: short_names.clone(),
            categories: categories.clone(),
            status_subresource: v.pointer("/subresources/status").is_some(),
        });
    }
    Ok(out)
}

/// Sets the status a real server reports once a CRD is established.
pub fn set_established(crd: &mut Value) {
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let names = spec.get("names").cloned().unwrap_or_else(|| json!({}));
    let mut accepted = names.clone();
    if accepted.get("listKind").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    if accepted.get("singular").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(kind.to_ascii_lowercase());
    }
    let stored: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let now = ids::now_rfc3339();
    let status = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    });
    if let Some(m) = crd.as_object_mut() {
        m.insert("status".into(), status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn parses_served_versions() {
        let t = served_types(&crd()).expect("valid");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].kind, "Widget");
        assert_eq!(t[0].singular, "widget");
        assert!(t[0].status_subresource);
        let mut c = crd();
        set_established(&mut c);
        assert_eq!(c["status"]["conditions"][1]["type"], "Established");
        assert_eq!(c["status"]["acceptedNames"]["listKind"], "WidgetList");
    }

    #[test]
    fn rejects_bad_names() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        assert_eq!(served_types(&c).map_err(|e| e.code), Err(422));
    }
}
