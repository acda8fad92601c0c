//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}`, and the resource
//! lists of each group/version, in both the legacy form and the aggregated
//! (`apidiscovery.k8s.io/v2`) form clients ask for with an `Accept` header.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::types::{ResourceType, VERBS};

/// The `Content-Type` of an aggregated discovery answer, by requested version.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// Which aggregated discovery version (`v2` or `v2beta1`) an `Accept` header asks for
/// first, if any.
///
/// Clients list media types in preference order (kube-rs sends v2, then v2beta1, then
/// plain JSON); the first one this server can produce wins.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let Some((mime, rest)) = params.split_first() else {
            continue;
        };
        if *mime != "application/json" && *mime != "*/*" {
            continue;
        }
        let get = |k: &str| {
            rest.iter()
                .find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        match (get("g"), get("v"), get("as")) {
            (Some("apidiscovery.k8s.io"), Some("v2"), Some("APIGroupDiscoveryList")) => {
                return Some("v2");
            }
            (Some("apidiscovery.k8s.io"), Some("v2beta1"), Some("APIGroupDiscoveryList")) => {
                return Some("v2beta1");
            }
            (None, None, None) => return None,
            _ => {}
        }
    }
    None
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": "v1.34.0-herald-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api` (legacy `APIVersions`).
pub fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]
    })
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// `/apis/{group}` (an `APIGroup`), if the group is served.
pub fn group(reg: &Registry, name: &str) -> Option<Value> {
    let (g, versions) = reg.groups().into_iter().find(|(g, _)| g == name)?;
    Some(group_doc(&g, &versions, true))
}

fn group_doc(g: &str, versions: &[String], with_type: bool) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| group_version(g, v)).collect();
    let mut doc = json!({
        "name": g,
        "versions": vs,
        "preferredVersion": versions.first().map(|v| group_version(g, v)),
    });
    if with_type {
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
    }
    doc
}

/// `/apis` (legacy `APIGroupList`).
pub fn groups(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .map(|(g, vs)| group_doc(g, vs, false))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/{group}/{version}` (`APIResourceList`), if served.
pub fn resources(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = reg.resources(group, version);
    if types.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for t in types {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        list.push(r);
        if t.status_subresource {
            list.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": list,
    }))
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let mut r = json!({
        "resource": t.plural,
        "responseKind": gvk,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": VERBS,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if t.status_subresource {
        r["subresources"] = json!([{
            "subresource": "status",
            "responseKind": gvk,
            "verbs": ["get", "patch", "update"],
        }]);
    }
    r
}

fn aggregated_group(reg: &Registry, group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let rs: Vec<Value> = reg
                .resources(group, v)
                .into_iter()
                .map(aggregated_resource)
                .collect();
            json!({"version": v, "resources": rs, "freshness": "Current"})
        })
        .collect();
    let mut meta = json!({"creationTimestamp": null});
    if !group.is_empty() {
        meta["name"] = json!(group);
    }
    json!({"metadata": meta, "versions": vs})
}

fn aggregated_list(version: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// `/api` in aggregated form.
pub fn aggregated_core(reg: &Registry, version: &str) -> Value {
    aggregated_list(
        version,
        vec![aggregated_group(reg, "", &["v1".to_string()])],
    )
}

/// `/apis` in aggregated form.
pub fn aggregated_groups(reg: &Registry, version: &str) -> Value {
    let items = reg
        .groups()
        .iter()
        .map(|(g, vs)| aggregated_group(reg, g, vs))
        .collect();
    aggregated_list(version, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let kube = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(kube), Some("v2"));
        assert_eq!(wants_aggregated("application/json"), None);
        assert_eq!(wants_aggregated(""), None);
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some("v2beta1")
        );
    }

    #[test]
    fn resource_lists_include_status() {
        let reg = Registry::default();
        let r = resources(&reg, "apps", "v1").expect("apps/v1");
        let names: Vec<&str> = r["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/status"));
        assert!(resources(&reg, "apps", "v9").is_none());
        let g = groups(&reg);
        assert!(
            g["groups"]
                .as_array()
                .is_some_and(|a| a.iter().any(|g| g["name"] == "apps"))
        );
    }
}
