//! What a request to herald's APIs needs the API server to allow: the same
//! read on the same resource in the same namespace (a list of ConfigMaps in
//! `a` needs `list configmaps` in `a`), and for the admin API the verbs on
//! herald's own virtual resources (`watches.herald.io`, `sinks.herald.io`).

use axum::http::{Method, Uri};

use crate::cache::Cache;

use super::super::admin::ADMIN_PREFIX;
use super::super::decisions::DECISIONS_PATH;
use super::super::query::{PREFIX, group_of};

/// The API group of herald's own virtual resources.
pub(crate) const HERALD_GROUP: &str = "herald.io";

/// One permission a request needs, as a SubjectAccessReview's
/// `resourceAttributes` says it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Check {
    /// `get`, `list`, `create` or `delete`.
    pub verb: &'static str,
    /// API group; `""` for the core group.
    pub group: String,
    /// Resource (plural). Example: `configmaps`
    pub resource: String,
    /// Namespace; `""` means every namespace (or a cluster-scoped object).
    pub namespace: String,
    /// Object name, for `get` and `delete`.
    pub name: String,
}

impl Check {
    fn new(verb: &'static str, group: &str, resource: &str) -> Check {
        Check {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: String::new(),
            name: String::new(),
        }
    }

    fn in_namespace(mut self, namespace: &str) -> Check {
        self.namespace = namespace.to_string();
        self
    }

    fn named(mut self, name: &str) -> Check {
        self.name = name.to_string();
        self
    }

    /// As `kubectl auth can-i` would word it. Example: `list configmaps in namespace "a"`
    pub(crate) fn describe(&self) -> String {
        let what = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let name = if self.name.is_empty() {
            String::new()
        } else {
            format!(" {:?}", self.name)
        };
        let scope = if self.namespace.is_empty() {
            String::new()
        } else {
            format!(" in namespace {:?}", self.namespace)
        };
        format!("{} {what}{name}{scope}", self.verb)
    }
}

/// What a request needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Only a known caller (the list of watched types, unknown paths).
    Caller,
    /// A known caller allowed every one of these.
    All(Vec<Check>),
}

/// The permissions `method` on `uri` needs; `cache` names the plural of a
/// type a path names by kind.
pub(crate) fn required(method: &Method, uri: &Uri, cache: &Cache) -> Need {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix(PREFIX) {
        return query(rest, uri, cache);
    }
    if let Some(rest) = path.strip_prefix(ADMIN_PREFIX) {
        let id = percent_encoding::percent_decode_str(rest.trim_matches('/')).decode_utf8_lossy();
        let verb = match (method, id.is_empty()) {
            (&Method::POST, _) => "create",
            (&Method::DELETE, _) => "delete",
            (_, true) => "list",
            (_, false) => "get",
        };
        return Need::All(vec![Check::new(verb, HERALD_GROUP, "watches").named(&id)]);
    }
    if path == "/sinks" {
        return Need::All(vec![Check::new("list", HERALD_GROUP, "sinks")]);
    }
    // What herald decided about objects: listed like the objects, per
    // namespace (`?namespace=a` needs it in `a`; none needs it in all).
    if path == DECISIONS_PATH {
        let namespace = namespace_param(uri).unwrap_or_default();
        return Need::All(vec![
            Check::new("list", HERALD_GROUP, "decisions").in_namespace(&namespace),
        ]);
    }
    // The status page shows every watch and sink; its tail of decisions is
    // authorised as above, request by request.
    if path == "/" || path == "/status.js" {
        return Need::All(vec![
            Check::new("list", HERALD_GROUP, "watches"),
            Check::new("list", HERALD_GROUP, "sinks"),
        ]);
    }
    Need::Caller
}

fn query(rest: &str, uri: &Uri, cache: &Cache) -> Need {
    // Decoded as the router decodes path parameters, so that the check is
    // about exactly the namespace, name and type the handler reads.
    let decoded: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let resolve = |g: &str, v: &str, r: &str| -> (String, String) {
        let group = group_of(g);
        let plural = cache
            .plural_of(group, v, r)
            .unwrap_or_else(|| r.to_ascii_lowercase());
        (group.to_string(), plural)
    };
    match segs.as_slice() {
        [g, v, r] => {
            let (group, resource) = resolve(g, v, r);
            let namespace = namespace_param(uri).unwrap_or_default();
            Need::All(vec![
                Check::new("list", &group, &resource).in_namespace(&namespace),
            ])
        }
        [g, v, r, name] => {
            let (group, resource) = resolve(g, v, r);
            Need::All(vec![Check::new("get", &group, &resource).named(name)])
        }
        [g, v, r, ns, name] => {
            let (group, resource) = resolve(g, v, r);
            Need::All(vec![
                Check::new("get", &group, &resource)
                    .in_namespace(ns)
                    .named(name),
            ])
        }
        [g, v, r, ns, name, relation] => {
            let (group, resource) = resolve(g, v, r);
            let mut checks = vec![
                Check::new("get", &group, &resource)
                    .in_namespace(ns)
                    .named(name),
            ];
            // Every type the relation returns, listed in the object's namespace.
            let (rg, rr) = match *relation {
                "pods" => ("", "pods"),
                "replicasets" => ("apps", "replicasets"),
                "endpointslices" => ("discovery.k8s.io", "endpointslices"),
                other => ("", other),
            };
            checks.push(Check::new("list", rg, rr).in_namespace(ns));
            Need::All(checks)
        }
        _ => Need::Caller,
    }
}

/// The `namespace` query parameter, if any (the last one, as the handler reads it).
fn namespace_param(uri: &Uri) -> Option<String> {
    let q = uri.query()?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(q).ok()?;
    params
        .into_iter()
        .rev()
        .find(|(k, _)| k == "namespace")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, uri: &str) -> Need {
        required(&method, &uri.parse().expect("uri"), &Cache::new())
    }

    fn one(n: Need) -> Check {
        match n {
            Need::All(mut v) if v.len() == 1 => v.remove(0),
            n => panic!("not one check: {n:?}"),
        }
    }

    #[test]
    fn queries_need_the_same_read_on_the_api_server() {
        let c = one(need(
            Method::GET,
            "/api/v1/resources/core/v1/configmaps?namespace=a&limit=5",
        ));
        assert_eq!(c.describe(), "list configmaps in namespace \"a\"");
        let c = one(need(Method::GET, "/api/v1/resources/apps/v1/deployments"));
        assert_eq!(c.describe(), "list deployments.apps");
        let c = one(need(Method::GET, "/api/v1/resources/core/v1/secrets/b/db"));
        assert_eq!(c.describe(), "get secrets \"db\" in namespace \"b\"");
        let c = one(need(Method::GET, "/api/v1/resources/core/v1/namespaces/b"));
        assert_eq!(c.describe(), "get namespaces \"b\"");
        let Need::All(v) = need(
            Method::GET,
            "/api/v1/resources/apps/v1/deployments/a/web/pods",
        ) else {
            panic!("checks")
        };
        let d: Vec<String> = v.iter().map(Check::describe).collect();
        assert_eq!(
            d,
            [
                "get deployments.apps \"web\" in namespace \"a\"",
                "list pods in namespace \"a\""
            ]
        );
        assert_eq!(need(Method::GET, "/api/v1/resources"), Need::Caller);
        // Percent-encoded segments are checked as the handler reads them.
        let c = one(need(
            Method::GET,
            "/api/v1/resources/core/v1/secrets/%62/db",
        ));
        assert_eq!(c.describe(), "get secrets \"db\" in namespace \"b\"");
    }

    #[test]
    fn the_admin_api_needs_verbs_on_herald_watches() {
        let c = one(need(Method::POST, "/admin/v1/watches"));
        assert_eq!(c.describe(), "create watches.herald.io");
        let c = one(need(Method::DELETE, "/admin/v1/watches/pod.v1.core"));
        assert_eq!(c.describe(), "delete watches.herald.io \"pod.v1.core\"");
        let c = one(need(Method::GET, "/admin/v1/watches"));
        assert_eq!(c.describe(), "list watches.herald.io");
        let c = one(need(Method::GET, "/sinks"));
        assert_eq!(c.describe(), "list sinks.herald.io");
    }

    #[test]
    fn decisions_are_listed_per_namespace_and_the_page_needs_watches_and_sinks() {
        let c = one(need(
            Method::GET,
            "/api/v1/decisions?namespace=shop&fate=dropped",
        ));
        assert_eq!(
            c.describe(),
            "list decisions.herald.io in namespace \"shop\""
        );
        let c = one(need(
            Method::GET,
            "/api/v1/decisions?namespace=a&namespace=b",
        ));
        assert_eq!(c.namespace, "b", "the namespace the handler filters on");
        let c = one(need(Method::GET, "/api/v1/decisions"));
        assert_eq!(c.describe(), "list decisions.herald.io");
        let Need::All(v) = need(Method::GET, "/") else {
            panic!("checks")
        };
        let d: Vec<String> = v.iter().map(Check::describe).collect();
        assert_eq!(d, ["list watches.herald.io", "list sinks.herald.io"]);
    }
}
