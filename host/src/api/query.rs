//! The query API: list and get over the cache, with the API server's filters.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CachedObject, CachedType, FieldSelector, LabelSelector};

use super::body::{ApiPath, List, ListMeta, RawJson, object};
use super::error::{ApiError, log_server_errors};
use super::page::{decode, paginate};
use super::relations;

/// Where the query API lives.
pub(super) const PREFIX: &str = "/api/v1/resources";

/// The query API over `cache`:
///
/// - `GET /api/v1/resources`: the watched types.
/// - `GET /api/v1/resources/{group}/{version}/{resource}`: list; `namespace`,
///   `labelSelector`, `fieldSelector` (`metadata.name`, `metadata.namespace`),
///   `limit` and `continue` as on the API server. `{group}` is `core` for the core
///   group; `{resource}` is the plural or the kind.
/// - `GET …/{resource}/{namespace}/{name}` (or `…/{resource}/{name}` when
///   cluster-scoped): one object.
/// - `GET …/{resource}/{namespace}/{name}/{relation}`: related objects, e.g. a
///   Deployment's `replicasets` and `pods`, a Service's `pods` and `endpointslices`.
///
/// A type that is not watched answers 404 naming it.
/// `limit` above `max_limit` is capped to it.
pub fn query_router(cache: Cache, max_limit: usize) -> Router {
    Router::new()
        .route(PREFIX, get(index))
        .route(
            &format!("{PREFIX}/{{group}}/{{version}}/{{resource}}"),
            get(list),
        )
        .route(
            &format!("{PREFIX}/{{group}}/{{version}}/{{resource}}/{{name}}"),
            get(get_cluster_scoped),
        )
        .route(
            &format!("{PREFIX}/{{group}}/{{version}}/{{resource}}/{{namespace}}/{{name}}"),
            get(get_namespaced),
        )
        .route(
            &format!(
                "{PREFIX}/{{group}}/{{version}}/{{resource}}/{{namespace}}/{{name}}/{{relation}}"
            ),
            get(relations::related),
        )
        .with_state(cache)
        .layer(axum::Extension(MaxLimit(max_limit)))
        .layer(axum::middleware::map_response(log_server_errors))
}

/// The largest page a list answers.
#[derive(Clone, Copy)]
struct MaxLimit(usize);

/// `core` in paths means the core group (`""`).
pub(crate) fn group_of(path_group: &str) -> &str {
    if path_group == "core" { "" } else { path_group }
}

/// The watches of the type in a path, or 404 naming it.
pub(crate) fn lookup(
    cache: &Cache,
    group: &str,
    version: &str,
    resource: &str,
) -> Result<Vec<CachedType>, ApiError> {
    let types = cache.find(group_of(group), version, resource);
    if types.is_empty() {
        return Err(ApiError::NotWatched {
            resource: format!("{group}/{version}/{resource}"),
        });
    }
    Ok(types)
}

/// A watched type, as `GET /api/v1/resources` lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypeSummary {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
    watch: String,
    objects: usize,
    path: String,
}

async fn index(State(cache): State<Cache>) -> Json<Vec<TypeSummary>> {
    Json(
        cache
            .all()
            .into_iter()
            .map(|t| TypeSummary {
                path: format!(
                    "{PREFIX}/{}/{}/{}",
                    if t.resource.group.is_empty() {
                        "core"
                    } else {
                        &t.resource.group
                    },
                    t.resource.version,
                    t.resource.plural
                ),
                objects: t.len(),
                group: t.resource.group,
                version: t.resource.version,
                kind: t.resource.kind,
                plural: t.resource.plural,
                namespaced: t.namespaced,
                watch: t.watch,
            })
            .collect(),
    )
}

/// List parameters, named as on the API server.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ListParams {
    namespace: Option<String>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    limit: Option<usize>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

async fn list(
    State(cache): State<Cache>,
    axum::Extension(MaxLimit(max_limit)): axum::Extension<MaxLimit>,
    ApiPath((group, version, resource)): ApiPath<(String, String, String)>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<List, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest {
        what: "query",
        reason: e.body_text(),
    })?;
    if let Some(ns) = params.namespace.as_deref()
        && !ns.is_empty()
        && !is_dns_label(ns)
    {
        return Err(ApiError::BadRequest {
            what: "namespace",
            reason: format!("{ns:?} is not a namespace name (a DNS label: a-z, 0-9, -)"),
        });
    }
    for (what, s) in [
        ("labelSelector", &params.label_selector),
        ("fieldSelector", &params.field_selector),
    ] {
        if s.as_ref().is_some_and(|s| s.len() > MAX_SELECTOR) {
            return Err(ApiError::BadRequest {
                what,
                reason: format!("longer than {MAX_SELECTOR} bytes"),
            });
        }
    }
    let types = lookup(&cache, &group, &version, &resource)?;
    let labels_sel = LabelSelector::parse(params.label_selector.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest {
            what: "labelSelector",
            reason: e.to_string(),
        })?;
    let fields = FieldSelector::parse(params.field_selector.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest {
            what: "fieldSelector",
            reason: e.to_string(),
        })?;
    if let Some(f) = fields.unsupported_field() {
        return Err(ApiError::BadRequest {
            what: "fieldSelector",
            reason: format!("{f:?}: the cache answers metadata.name and metadata.namespace"),
        });
    }
    let after = params
        .continue_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(decode)
        .transpose()?;
    let namespace = params.namespace.as_deref().filter(|n| !n.is_empty());
    let after = after
        .as_ref()
        .map(|(ns, name)| (ns.as_str(), name.as_str()));
    // The store walks only `namespace` and only past `after`; selectors read the key
    // and the label index, never the JSON.
    let keep = |o: &CachedObject| {
        let (ns, name) = o.key_pair();
        fields.matches(ns, name) && labels_sel.matches_by(|k| o.label(k))
    };
    let mut items = Vec::new();
    for t in &types {
        items.extend(t.select(namespace, after, keep));
    }
    let limit = Some(
        params
            .limit
            .filter(|l| *l > 0)
            .map_or(max_limit, |l| l.min(max_limit)),
    );
    let page = paginate(items, limit, types.len() > 1);
    Ok(List {
        api_version: types[0].resource.api_version.clone(),
        kind: format!("{}List", types[0].resource.kind),
        metadata: ListMeta {
            continue_token: page.continue_token,
            remaining_item_count: page.remaining,
        },
        items: page.items,
    })
}

/// Longest selector a list accepts.
const MAX_SELECTOR: usize = 4096;

/// Whether `s` is a DNS label (RFC 1123), as namespace names are.
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// One object from the watches of a type.
pub(crate) fn find(
    types: &[CachedType],
    namespace: Option<&str>,
    name: &str,
) -> Result<Arc<CachedObject>, ApiError> {
    types
        .iter()
        .find_map(|t| t.get(namespace, name))
        .ok_or_else(|| ApiError::NotFound {
            kind: types
                .first()
                .map(|t| t.resource.kind.clone())
                .unwrap_or_default(),
            key: match namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.to_string(),
            },
        })
}

async fn get_namespaced(
    State(cache): State<Cache>,
    ApiPath((group, version, resource, namespace, name)): ApiPath<(
        String,
        String,
        String,
        String,
        String,
    )>,
) -> Result<RawJson, ApiError> {
    let types = lookup(&cache, &group, &version, &resource)?;
    if !types[0].namespaced {
        return Err(ApiError::BadRequest {
            what: "path",
            reason: format!(
                "{} is cluster-scoped: GET {PREFIX}/{group}/{version}/{resource}/{{name}}",
                types[0].resource.kind
            ),
        });
    }
    find(&types, Some(&namespace), &name).map(|o| object(&o))
}

async fn get_cluster_scoped(
    State(cache): State<Cache>,
    ApiPath((group, version, resource, name)): ApiPath<(String, String, String, String)>,
) -> Result<RawJson, ApiError> {
    let types = lookup(&cache, &group, &version, &resource)?;
    if types[0].namespaced {
        return Err(ApiError::BadRequest {
            what: "path",
            reason: format!(
                "{} is namespaced: GET {PREFIX}/{group}/{version}/{resource}/{{namespace}}/{{name}}",
                types[0].resource.kind
            ),
        });
    }
    find(&types, None, &name).map(|o| object(&o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{IndexFields, Writer};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use kube::api::ApiResource;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    fn app() -> Router {
        let ar = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
        };
        let mut w = Writer::new();
        for n in ["a", "b", "c"] {
            let json = json!({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": n, "labels": {"x": n}}});
            let fields = IndexFields {
                labels: vec![("x".into(), n.into())],
                ..IndexFields::default()
            };
            let bytes = serde_json::to_vec(&json).expect("json").into();
            w.insert(Arc::new(CachedObject::new("", n, bytes, &fields)));
        }
        let cache = Cache::new();
        cache.insert(CachedType {
            watch: "ns".into(),
            resource: ar,
            namespaced: false,
            stores: vec![w.as_reader()],
        });
        query_router(cache, 2)
    }

    async fn call(uri: &str) -> (StatusCode, Value) {
        let resp = app()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn lists_gets_and_answers_errors_as_json() {
        let (s, v) =
            call("/api/v1/resources/core/v1/namespaces?labelSelector=x%20in%20(a,c)").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["kind"], "NamespaceList");
        assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
        let (s, v) = call("/api/v1/resources/core/v1/namespace/b").await;
        assert_eq!(
            (s, v["metadata"]["name"].as_str()),
            (StatusCode::OK, Some("b"))
        );
        let (s, v) = call("/api/v1/resources/core/v1/namespaces/x/b").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "cluster-scoped: {v}");
        let (s, v) = call("/api/v1/resources/batch/v1/jobs").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["error"]["reason"], "NotWatched");
        assert_eq!(v["error"]["message"], "batch/v1/jobs is not watched");
        let (s, v) = call("/api/v1/resources/core/v1/namespaces?limit=x").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"]["code"], 400);
    }
}
