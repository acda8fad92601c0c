//! `TokenReview` and `SubjectAccessReview`, answered from rules a test sets:
//! which tokens belong to which users, and what each user may do. What a
//! real API server's authenticators and RBAC would answer, reduced to what
//! herald's delegated auth asks.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// Who a token belongs to.
#[derive(Clone, Debug)]
struct Identity {
    user: String,
    groups: Vec<String>,
}

/// One permission: `verbs` on `resource` of `group`, in `namespace` (or
/// everywhere).
#[derive(Clone, Debug)]
struct Rule {
    user: String,
    verbs: Vec<String>,
    group: String,
    resource: String,
    namespace: Option<String>,
}

/// The tokens and permissions a test configured.
#[derive(Default)]
pub struct Reviews {
    tokens: Mutex<HashMap<String, Identity>>,
    rules: Mutex<Vec<Rule>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reviews {
    /// `token` authenticates as `user` in `groups`.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        lock(&self.tokens).insert(
            token.to_string(),
            Identity {
                user: user.to_string(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
    }

    /// `user` may do `verbs` on `resource` of `group` in `namespace` (None: in
    /// every namespace and cluster-wide).
    pub fn allow(
        &self,
        user: &str,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) {
        lock(&self.rules).push(Rule {
            user: user.to_string(),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(String::from),
        });
    }

    /// Takes away every permission of `user`.
    pub fn revoke(&self, user: &str) {
        lock(&self.rules).retain(|r| r.user != user);
    }

    /// Answers a TokenReview.
    pub fn token_review(&self, review: &Value) -> Value {
        let token = review["spec"]["token"].as_str().unwrap_or_default();
        let status = match lock(&self.tokens).get(token) {
            Some(id) => json!({
                "authenticated": true,
                "user": {"username": id.user, "uid": format!("uid-{}", id.user), "groups": id.groups},
            }),
            None => json!({"authenticated": false, "error": "invalid bearer token"}),
        };
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": null},
            "spec": review["spec"],
            "status": status,
        })
    }

    /// Answers a SubjectAccessReview.
    pub fn access_review(&self, review: &Value) -> Value {
        let spec = &review["spec"];
        let user = spec["user"].as_str().unwrap_or_default();
        let attrs = &spec["resourceAttributes"];
        let s = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
        let (verb, group, resource, namespace) =
            (s("verb"), s("group"), s("resource"), s("namespace"));
        let allowed = lock(&self.rules).iter().any(|r| {
            r.user == user
                && (r.verbs.iter().any(|v| v == &verb || v == "*"))
                && r.group == group
                && (r.resource == resource || r.resource == "*")
                && match &r.namespace {
                    None => true,
                    Some(ns) => !namespace.is_empty() && ns == &namespace,
                }
        });
        let status = if allowed {
            json!({"allowed": true, "reason": "allowed by the simulator's rules"})
        } else {
            json!({"allowed": false})
        };
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": status,
        })
    }
}
