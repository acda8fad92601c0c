//! The HTTP front end: authentication, injected failures, routing of discovery and
//! resource paths, and rendering of objects and `Status` failures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::api::Preconditions;
use crate::discovery;
use crate::error::ApiError;
use crate::list::{self, ListRequest};
use crate::object::{Obj, View, parse_json, put_json_str};
use crate::patch::{self, PatchKind};
use crate::registry::Registry;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::Shared;
use crate::types::ResourceType;
use crate::watch::{self, WatchRequest};

/// Response body: whole documents, or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Largest request body accepted (the real server's limit is about 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

const JSON: &str = "application/json";

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn respond(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    respond(code, JSON, v.to_string())
}

/// A `Status` failure response, with `Retry-After` when the error has one.
pub fn status_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

fn obj_response(code: u16, obj: &Obj, rt: &ResourceType, metadata_only: bool) -> Response<Body> {
    let mut b = BytesMut::with_capacity(obj.body.len() + 64);
    let av = rt.api_version();
    let view = if metadata_only {
        View::Metadata
    } else {
        View::Full {
            api_version: &av,
            kind: &rt.kind,
        }
    };
    obj.write_as(&mut b, &view);
    respond(code, JSON, b.freeze())
}

/// Decodes a query string (`+` is a space, `%XX` escapes), last value wins.
fn parse_query(q: &str) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    shared.record(req.method().as_str(), &path);
    if shared.config.require_token {
        let want = format!("Bearer {}", shared.config.token);
        let got = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return Ok(status_response(&ApiError::new(
                401,
                "Unauthorized",
                "Unauthorized",
            )));
        }
    }
    if let Some(e) = shared.faults.take_failure() {
        return Ok(status_response(&e));
    }
    Ok(match route(&shared, req).await {
        Ok(r) => r,
        Err(e) => status_response(&e),
    })
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let is_get = req.method() == Method::GET;
    let discovery = |v: Option<Value>| -> Result<Response<Body>, ApiError> {
        if !is_get {
            return Err(ApiError::method_not_allowed());
        }
        v.map(|v| json_response(200, &v))
            .ok_or_else(ApiError::no_route)
    };
    match segs.as_slice() {
        ["version"] => discovery(Some(discovery::version())),
        ["healthz"] | ["livez"] | ["readyz"] => Ok(respond(200, "text/plain", "ok")),
        ["api"] | ["apis"] if is_get => {
            let reg = shared.api.registry();
            let core = segs[0] == "api";
            Ok(match discovery::wants_aggregated(&accept) {
                Some(v) => {
                    let doc = if core {
                        discovery::aggregated_core(&reg, v)
                    } else {
                        discovery::aggregated_groups(&reg, v)
                    };
                    let mut r = json_response(200, &doc);
                    if let Ok(ct) = HeaderValue::from_str(&discovery::aggregated_content_type(v)) {
                        r.headers_mut().insert(header::CONTENT_TYPE, ct);
                    }
                    r.headers_mut()
                        .insert(header::VARY, HeaderValue::from_static("Accept"));
                    r
                }
                None if core => {
                    json_response(200, &discovery::core_versions(&shared.addr().to_string()))
                }
                None => json_response(200, &discovery::groups(&reg)),
            })
        }
        ["api", v] => discovery(discovery::resources(&shared.api.registry(), "", v)),
        ["apis", "authentication.k8s.io", "v1", "tokenreviews"] if req.method() == Method::POST => {
            let review = review_body(req).await?;
            Ok(json_response(201, &shared.reviews.token_review(&review)))
        }
        ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"]
            if req.method() == Method::POST =>
        {
            let review = review_body(req).await?;
            Ok(json_response(201, &shared.reviews.access_review(&review)))
        }
        // A group the server does not serve is not an API path at all: the real
        // server's mux answers plain text, not a Status.
        ["apis", g, ..] if discovery::group(&shared.api.registry(), g).is_none() => Ok(respond(
            404,
            "text/plain; charset=utf-8",
            "404 page not found\n",
        )),
        ["apis", g] => discovery(discovery::group(&shared.api.registry(), g)),
        ["apis", g, v] => discovery(discovery::resources(&shared.api.registry(), g, v)),
        ["api", v, rest @ ..] => {
            let (v, rest) = (v.to_string(), owned(rest));
            resource(shared, req, "", &v, &rest, &accept).await
        }
        ["apis", g, v, rest @ ..] => {
            let (g, v, rest) = (g.to_string(), v.to_string(), owned(rest));
            resource(shared, req, &g, &v, &rest, &accept).await
        }
        _ => Err(ApiError::no_route()),
    }
}

fn owned(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// What a resource path names.
enum Target {
    Collection {
        ns: Option<String>,
    },
    Item {
        ns: String,
        name: String,
        status: bool,
    },
}

fn parse_target(
    reg: &Registry,
    group: &str,
    version: &str,
    rest: &[String],
) -> Result<(ResourceType, Target, bool), ApiError> {
    let (watch_prefix, rest) = match rest.split_first() {
        Some((w, r)) if w == "watch" => (true, r),
        _ => (false, rest),
    };
    let lookup = |p: &str| reg.lookup(group, version, p).cloned();
    let namespaced = |p: &str| lookup(p).filter(|t| t.namespaced);
    let cluster = |p: &str| lookup(p).filter(|t| !t.namespaced);
    let sub = |rt: &ResourceType, s: &str| -> Result<bool, ApiError> {
        if s == "status" && rt.status_subresource {
            Ok(true)
        } else {
            Err(ApiError::no_route())
        }
    };
    let s: Vec<&str> = rest.iter().map(String::as_str).collect();
    let found = match s.as_slice() {
        [p] => lookup(p).map(|t| (t, Target::Collection { ns: None })),
        ["namespaces", ns, p] if namespaced(p).is_some() => namespaced(p).map(|t| {
            (
                t,
                Target::Collection {
                    ns: Some(ns.to_string()),
                },
            )
        }),
        ["namespaces", ns, p, name] => namespaced(p).map(|t| {
            let item = Target::Item {
                ns: ns.to_string(),
                name: name.to_string(),
                status: false,
            };
            (t, item)
        }),
        ["namespaces", ns, p, name, s] => match namespaced(p) {
            Some(t) => {
                let status = sub(&t, s)?;
                let item = Target::Item {
                    ns: ns.to_string(),
                    name: name.to_string(),
                    status,
                };
                Some((t, item))
            }
            None => None,
        },
        [p, name] => cluster(p).map(|t| {
            let item = Target::Item {
                ns: String::new(),
                name: name.to_string(),
                status: false,
            };
            (t, item)
        }),
        [p, name, s] => match cluster(p) {
            Some(t) => {
                let status = sub(&t, s)?;
                let item = Target::Item {
                    ns: String::new(),
                    name: name.to_string(),
                    status,
                };
                Some((t, item))
            }
            None => None,
        },
        _ => None,
    };
    let (rt, target) = found.ok_or_else(ApiError::no_route)?;
    Ok((rt, target, watch_prefix))
}

async fn review_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let (body, _) = read_body(req).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(400, "BadRequest", format!("not a review: {e}")))
}

async fn read_body(req: Request<Incoming>) -> Result<(Bytes, String), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(JSON)
        .to_string();
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large or could not be read",
            )
        })?
        .to_bytes();
    Ok((body, ct))
}

fn parse_object(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let v: Value = if content_type.contains("yaml") {
        serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        parse_json(body).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was not a JSON object",
        ));
    }
    Ok(v)
}

fn selectors(
    rt: &ResourceType,
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(|e| ApiError::bad_request(e.0))?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        rt.selectable_fields(),
    )
    .map_err(|e| ApiError::bad_request(e.0))?;
    Ok((labels, fields))
}

fn is_true(q: &HashMap<String, String>, k: &str) -> bool {
    matches!(q.get(k).map(String::as_str), Some("true" | "1"))
}

async fn resource(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    group: &str,
    version: &str,
    rest: &[String],
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    let (rt, target, watch_prefix) = parse_target(&shared.api.registry(), group, version, rest)?;
    let q = parse_query(req.uri().query().unwrap_or_default());
    let metadata_only = accept.contains("as=PartialObjectMetadata");
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    let api = &shared.api;
    let method = req.method().clone();
    let watching = watch_prefix || is_true(&q, "watch");
    if let (Target::Collection { ns }, &Method::GET) = (&target, &method)
        && shared.faults.is_forbidden(&rt.plural)
    {
        let verb = if watching { "watch" } else { "list" };
        return Err(ApiError::forbidden(verb, group, &rt.plural, ns.as_deref()));
    }
    match (target, method) {
        (Target::Collection { ns }, Method::GET) if watching => {
            start_watch(shared, rt, ns, None, &q, metadata_only).await
        }
        (
            Target::Item {
                ns,
                name,
                status: false,
            },
            Method::GET,
        ) if watching => {
            let ns = (!ns.is_empty()).then_some(ns);
            start_watch(shared, rt, ns, Some(name), &q, metadata_only).await
        }
        (Target::Collection { ns }, Method::GET) => {
            let (labels, fields) = selectors(&rt, &q)?;
            let limit =
                match q.get("limit") {
                    Some(l) if !l.is_empty() => Some(l.parse::<usize>().map_err(|_| {
                        ApiError::bad_request(format!("limit: invalid value {l:?}"))
                    })?),
                    _ => None,
                };
            let lr = ListRequest {
                rt,
                namespace: ns,
                labels,
                fields,
                limit,
                continue_token: q.get("continue").cloned(),
                resource_version: q.get("resourceVersion").cloned(),
                resource_version_match: q.get("resourceVersionMatch").cloned(),
                metadata_only,
            };
            Ok(respond(200, JSON, list::list(shared, &lr)?))
        }
        (Target::Collection { ns }, Method::POST) => {
            let (body, ct) = read_body(req).await?;
            let v = parse_object(&body, &ct)?;
            let o = api.create(&rt, ns.as_deref().unwrap_or_default(), v, dry_run)?;
            Ok(obj_response(201, &o, &rt, metadata_only))
        }
        (Target::Collection { ns }, Method::DELETE) => {
            let (labels, fields) = selectors(&rt, &q)?;
            let gr = rt.group_resource();
            let mut deleted = Vec::new();
            for key in api.store.keys(&gr, ns.as_deref()) {
                let Some(o) = api.store.get(&gr, &key) else {
                    continue;
                };
                if !(labels.matches(&o.labels) && fields.matches(|f| o.field(f))) {
                    continue;
                }
                if let Ok((o, _)) =
                    api.delete(&rt, &key.0, &key.1, &Preconditions::default(), dry_run)
                {
                    deleted.push(o);
                }
            }
            let mut b = BytesMut::new();
            b.put_slice(b"{\"kind\":");
            put_json_str(&mut b, &format!("{}List", rt.kind));
            b.put_slice(b",\"apiVersion\":");
            put_json_str(&mut b, &rt.api_version());
            b.put_slice(
                format!(
                    ",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[",
                    api.store.current_rv()
                )
                .as_bytes(),
            );
            for (i, o) in deleted.iter().enumerate() {
                if i > 0 {
                    b.put_u8(b',');
                }
                b.put_slice(&o.body);
            }
            b.put_slice(b"]}");
            Ok(respond(200, JSON, b.freeze()))
        }
        (Target::Item { ns, name, .. }, Method::GET) => {
            let o = api.get(&rt, &ns, &name)?;
            Ok(obj_response(200, &o, &rt, metadata_only))
        }
        (Target::Item { ns, name, status }, Method::PUT) => {
            let (body, ct) = read_body(req).await?;
            let v = parse_object(&body, &ct)?;
            let o = api.update(&rt, &ns, &name, v, status, dry_run)?;
            Ok(obj_response(200, &o, &rt, metadata_only))
        }
        (Target::Item { ns, name, status }, Method::PATCH) => {
            let (body, ct) = read_body(req).await?;
            let kind = PatchKind::from_content_type(&ct).ok_or_else(|| {
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"),
                )
            })?;
            if kind == PatchKind::Apply && q.get("fieldManager").is_none_or(String::is_empty) {
                return Err(ApiError::invalid(
                    "PatchOptions.meta.k8s.io",
                    "",
                    "fieldManager: Required value: is required for apply patch",
                ));
            }
            let p = patch::parse(kind, &body)?;
            let (o, created) = api.patch(&rt, &ns, &name, kind, &p, status, dry_run)?;
            Ok(obj_response(
                if created { 201 } else { 200 },
                &o,
                &rt,
                metadata_only,
            ))
        }
        (
            Target::Item {
                ns,
                name,
                status: false,
            },
            Method::DELETE,
        ) => {
            let (body, _) = read_body(req).await?;
            let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                parse_json(&body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding DeleteOptions: {e}"))
                })?
            };
            let s = |p: &str| opts.pointer(p).and_then(Value::as_str).map(str::to_string);
            let pre = Preconditions {
                uid: s("/preconditions/uid"),
                resource_version: s("/preconditions/resourceVersion"),
            };
            let dry_run = dry_run
                || opts
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
            let (o, gone) = api.delete(&rt, &ns, &name, &pre, dry_run)?;
            Ok(obj_response(
                if gone { 200 } else { 202 },
                &o,
                &rt,
                metadata_only,
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

async fn start_watch(
    shared: &Arc<Shared>,
    rt: ResourceType,
    ns: Option<String>,
    name: Option<String>,
    q: &HashMap<String, String>,
    metadata_only: bool,
) -> Result<Response<Body>, ApiError> {
    let (labels, mut fields) = selectors(&rt, q)?;
    if let Some(name) = name {
        // The deprecated per-object watch path is a watch with a name field selector.
        let extra = format!("metadata.name={name}");
        let combined = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => format!("{s},{extra}"),
            None => extra,
        };
        fields = FieldSelector::parse(&combined, rt.selectable_fields())
            .map_err(|e| ApiError::bad_request(e.0))?;
    }
    let timeout =
        match q.get("timeoutSeconds") {
            Some(t) if !t.is_empty() => Some(Duration::from_secs(t.parse().map_err(|_| {
                ApiError::bad_request(format!("timeoutSeconds: invalid value {t:?}"))
            })?)),
            _ => None,
        };
    let send_initial_events = match q.get("sendInitialEvents").map(String::as_str) {
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        _ => None,
    };
    let w = WatchRequest {
        rt,
        namespace: ns,
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
        bookmarks: is_true(q, "allowWatchBookmarks"),
        send_initial_events,
        timeout,
        labels,
        fields,
        metadata_only,
    };
    // A stalled server does not even answer with headers.
    let mut faults = shared.faults.subscribe();
    while faults.borrow_and_update().stalled {
        if faults.changed().await.is_err() {
            break;
        }
    }
    let mut rx = watch::spawn(shared.clone(), w)?;
    let stream =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|c| c.map(|c| c.map(Frame::data))));
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x&bad=%zz");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(q["bad"], "%zz");
    }

    #[test]
    fn targets() {
        let reg = Registry::default();
        let t = |p: &str| {
            let rest = owned(&p.split('/').collect::<Vec<_>>());
            parse_target(&reg, "", "v1", &rest).map(|(rt, t, w)| {
                let d = match t {
                    Target::Collection { ns } => format!("list {ns:?}"),
                    Target::Item { ns, name, status } => format!("item {ns}/{name} {status}"),
                };
                (rt.plural, d, w)
            })
        };
        assert_eq!(t("pods").map(|x| x.1).ok().as_deref(), Some("list None"));
        assert_eq!(
            t("namespaces/a/pods").map(|x| x.1).ok().as_deref(),
            Some("list Some(\"a\")")
        );
        assert_eq!(
            t("namespaces/a/pods/p").map(|x| x.1).ok().as_deref(),
            Some("item a/p false")
        );
        assert_eq!(
            t("namespaces/a/pods/p/status").map(|x| x.1).ok().as_deref(),
            Some("item a/p true")
        );
        assert_eq!(
            t("namespaces/a").map(|x| (x.0, x.1)).ok(),
            Some(("namespaces".into(), "item /a false".into()))
        );
        assert_eq!(
            t("namespaces/a/status").map(|x| x.1).ok().as_deref(),
            Some("item /a true")
        );
        assert_eq!(t("watch/namespaces/a/pods").map(|x| x.2).ok(), Some(true));
        assert!(t("pods/p").is_err());
        assert!(t("namespaces/a/pods/p/exec").is_err());
        assert!(t("nothing").is_err());
    }
}
