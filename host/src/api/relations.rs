//! Relations answered from the cache: a Deployment's ReplicaSets and Pods (owner
//! references), a Service's Pods (its selector) and EndpointSlices (the
//! `kubernetes.io/service-name` label).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;

use crate::cache::{Cache, CachedObject, CachedType, LabelSelector};

use super::body::{ApiPath, List, ListMeta};
use super::error::ApiError;
use super::page::paginate;
use super::query::{find, lookup};

/// Label EndpointSlices carry to name their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// (group, kind) → relations it has.
const RELATIONS: &[(&str, &str, &[&str])] = &[
    ("apps", "Deployment", &["replicasets", "pods"]),
    ("", "Service", &["pods", "endpointslices"]),
];

/// The watches of a related kind, or 404 saying the relation needs it watched.
fn watched(cache: &Cache, group: &str, kind: &str) -> Result<Vec<CachedType>, ApiError> {
    let types = cache.find_kind(group, kind);
    if types.is_empty() {
        let g = if group.is_empty() { "core" } else { group };
        return Err(ApiError::NotWatched {
            resource: format!("{g}/{kind} (needed for this relation)"),
        });
    }
    Ok(types)
}

/// Objects of `types` in `namespace` for which `keep` holds.
fn in_namespace(
    types: &[CachedType],
    namespace: &str,
    keep: impl Fn(&CachedObject) -> bool,
) -> Vec<Arc<CachedObject>> {
    let mut out = Vec::new();
    for t in types {
        out.extend(t.select(Some(namespace), None, &keep));
    }
    out
}

fn owned_by(o: &CachedObject, uids: &HashSet<&str>) -> bool {
    o.owner_uids().any(|u| uids.contains(u))
}

fn list_of(types: &[CachedType], items: Vec<Arc<CachedObject>>) -> List {
    let page = paginate(items, None, types.len() > 1);
    List {
        api_version: types[0].resource.api_version.clone(),
        kind: format!("{}List", types[0].resource.kind),
        metadata: ListMeta::default(),
        items: page.items,
    }
}

pub(crate) async fn related(
    State(cache): State<Cache>,
    ApiPath((group, version, resource, namespace, name, relation)): ApiPath<(
        String,
        String,
        String,
        String,
        String,
        String,
    )>,
) -> Result<List, ApiError> {
    let types = lookup(&cache, &group, &version, &resource)?;
    let owner = find(&types, Some(&namespace), &name)?;
    let (g, kind) = (
        types[0].resource.group.as_str(),
        types[0].resource.kind.as_str(),
    );
    let uid = owner.uid().unwrap_or_default();
    match (g, kind, relation.as_str()) {
        ("apps", "Deployment", "replicasets") => {
            let rs = watched(&cache, "apps", "ReplicaSet")?;
            let owners = HashSet::from([uid]);
            let items = in_namespace(&rs, &namespace, |o| owned_by(o, &owners));
            Ok(list_of(&rs, items))
        }
        ("apps", "Deployment", "pods") => {
            let rs = watched(&cache, "apps", "ReplicaSet")?;
            let pods = watched(&cache, "", "Pod")?;
            let owners = HashSet::from([uid]);
            let sets = in_namespace(&rs, &namespace, |o| owned_by(o, &owners));
            let set_uids: HashSet<&str> = sets.iter().filter_map(|o| o.uid()).collect();
            let items = in_namespace(&pods, &namespace, |o| owned_by(o, &set_uids));
            Ok(list_of(&pods, items))
        }
        ("", "Service", "pods") => {
            let pods = watched(&cache, "", "Pod")?;
            let selector = service_selector(&owner);
            let items = in_namespace(&pods, &namespace, |o| {
                LabelSelector::map_selects_by(&selector, |k| o.label(k))
            });
            Ok(list_of(&pods, items))
        }
        ("", "Service", "endpointslices") => {
            let slices = watched(&cache, "discovery.k8s.io", "EndpointSlice")?;
            let items = in_namespace(&slices, &namespace, |o| {
                o.label(SERVICE_NAME_LABEL) == Some(name.as_str())
            });
            Ok(list_of(&slices, items))
        }
        _ => Err(ApiError::NoRelation {
            kind: kind.to_string(),
            relation,
            supported: RELATIONS
                .iter()
                .find(|(rg, rk, _)| *rg == g && *rk == kind)
                .map_or_else(|| "none".to_string(), |(_, _, r)| r.join(", ")),
        }),
    }
}

/// `spec.selector` of a Service (string values only, as the API requires).
fn service_selector(svc: &CachedObject) -> std::collections::BTreeMap<String, String> {
    let svc = svc.to_value().ok();
    svc.as_ref()
        .and_then(|v| v.pointer("/spec/selector"))
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
