//! Whether a watch would see an object, and why not: what the API server
//! selects for a watch (type, namespace scopes, label and field selectors)
//! and what its [`Differ`](super::diff) keeps (`ignoreNamespaces`, `events`),
//! decided offline for `herald explain` and `herald replay`.
//!
//! NOTE: a watch's `kind` may be a plural or short name that discovery
//! resolves; offline, `kind` matches the object's kind, its lower case, or
//! its lower case plural with an `s`. A field selector on a field other than
//! `metadata.name` and `metadata.namespace` is read from the object by its
//! dotted path, as the API server's field selectors for built-in types do.

use serde_json::Value;

use crate::cache::LabelSelector;
use crate::change::ChangeType;

use super::secrets::{SecretData, SecretKey, redact};
use super::spec::WatchSpec;

/// Why a watch does not see an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoMatch {
    /// Another API group, version or kind.
    #[error("type: the object is {found}, the watch is for {wanted}")]
    Type {
        /// The object's `apiVersion` and `kind`.
        found: String,
        /// The watch's group, version and kind.
        wanted: String,
    },
    /// Its namespace is not one the watch lists.
    #[error("namespace {namespace:?} is not in namespaces {wanted:?}")]
    Namespace {
        /// The object's namespace.
        namespace: String,
        /// The watch's `namespaces`.
        wanted: Vec<String>,
    },
    /// Its namespace is one the watch ignores.
    #[error("namespace {0:?} is in ignoreNamespaces")]
    Ignored(String),
    /// The label selector does not select it.
    #[error("labelSelector {selector:?} does not select labels {labels}")]
    Labels {
        /// The watch's `labelSelector`.
        selector: String,
        /// The object's labels, as JSON.
        labels: String,
    },
    /// The field selector does not select it.
    #[error("fieldSelector {0:?} does not select it")]
    Fields(String),
    /// The watch does not emit this change.
    #[error("events: the watch emits {wanted:?}, not {change}")]
    Event {
        /// The change.
        change: ChangeType,
        /// The watch's `events`.
        wanted: Vec<ChangeType>,
    },
}

/// Whether `spec` sees a `change` of `object`: `Ok` when it does, else the
/// first rule that leaves it out.
///
/// # Errors
/// [`NoMatch`] naming the rule.
pub fn matches(spec: &WatchSpec, object: &Value, change: ChangeType) -> Result<(), NoMatch> {
    let str_at = |p: &str| object.pointer(p).and_then(Value::as_str);
    let api_version = str_at("/apiVersion").unwrap_or_default();
    let kind = str_at("/kind").unwrap_or_default();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let lower = kind.to_ascii_lowercase();
    let kind_ok = spec.kind == kind
        || spec.kind.to_ascii_lowercase() == lower
        || spec.kind.to_ascii_lowercase() == format!("{lower}s");
    let version_ok = spec.version.as_deref().is_none_or(|v| v == version);
    if !kind_ok || spec.group() != group || !version_ok {
        return Err(NoMatch::Type {
            found: format!("{api_version} {kind}"),
            wanted: format!(
                "{}{} {}",
                if spec.group().is_empty() {
                    String::new()
                } else {
                    format!("{}/", spec.group())
                },
                spec.version.as_deref().unwrap_or("(preferred version)"),
                spec.kind
            ),
        });
    }
    let namespace = str_at("/metadata/namespace");
    if let Some(ns) = namespace {
        if spec.ignore_namespaces.iter().any(|i| i == ns) {
            return Err(NoMatch::Ignored(ns.to_string()));
        }
        if !spec.scopes().contains(&None) && !spec.scopes().iter().flatten().any(|s| s == ns) {
            return Err(NoMatch::Namespace {
                namespace: ns.to_string(),
                wanted: spec.namespaces.clone(),
            });
        }
    }
    if let Some(text) = spec
        .label_selector
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        // Checked by `WatchSpec::validate` when the config was read.
        let selector = LabelSelector::parse(text).map_err(|_| NoMatch::Fields(text.into()))?;
        let labels = object.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        if !selector.matches_by(label) {
            return Err(NoMatch::Labels {
                selector: text.to_string(),
                labels: labels.map(Value::to_string).unwrap_or_else(|| "{}".into()),
            });
        }
    }
    if let Some(text) = spec
        .field_selector
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let selector = herald_selectors::FieldSelector::parse(text)
            .map_err(|_| NoMatch::Fields(text.into()))?;
        let selected = selector.matches_by(|field| {
            let pointer = format!("/{}", field.replace('.', "/"));
            match field {
                "metadata.namespace" => Some(namespace.unwrap_or_default()),
                _ => object.pointer(&pointer).and_then(Value::as_str),
            }
        });
        if !selected {
            return Err(NoMatch::Fields(text.to_string()));
        }
    }
    if !spec.emits(change) {
        return Err(NoMatch::Event {
            change,
            wanted: spec.events.clone(),
        });
    }
    Ok(())
}

/// The object as the watch keeps it: a Secret's values replaced by keyed
/// digests unless the watch says `secretData: include`. Returns whether
/// anything was replaced.
pub fn keep(spec: &WatchSpec, object: &mut Value, key: &SecretKey) -> bool {
    let is_secret = object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && object.get("kind").and_then(Value::as_str) == Some("Secret");
    is_secret && spec.secret_data == SecretData::Redact && redact(object, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "namespace": ns, "labels": {"app": app}},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn each_rule_names_itself() {
        let mut s = WatchSpec::new("", "v1", "Pod");
        assert_eq!(matches(&s, &pod("shop", "web"), ChangeType::Added), Ok(()));
        s.kind = "pods".into();
        assert_eq!(matches(&s, &pod("shop", "web"), ChangeType::Added), Ok(()));
        let d = WatchSpec::new("apps", "v1", "Deployment");
        assert!(matches!(
            matches(&d, &pod("shop", "web"), ChangeType::Added),
            Err(NoMatch::Type { .. })
        ));
        s.namespaces = vec!["shop".into()];
        let e = matches(&s, &pod("web", "web"), ChangeType::Added).expect_err("ns");
        assert!(e.to_string().contains("not in namespaces"), "{e}");
        s.namespaces.clear();
        s.ignore_namespaces = vec!["kube-system".into()];
        let e = matches(&s, &pod("kube-system", "web"), ChangeType::Added).expect_err("ign");
        assert!(e.to_string().contains("ignoreNamespaces"), "{e}");
        s.label_selector = Some("app in (db)".into());
        let e = matches(&s, &pod("shop", "web"), ChangeType::Added).expect_err("labels");
        assert!(e.to_string().contains("labelSelector"), "{e}");
        s.label_selector = None;
        s.field_selector = Some("status.phase=Pending".into());
        let e = matches(&s, &pod("shop", "web"), ChangeType::Added).expect_err("fields");
        assert!(e.to_string().contains("fieldSelector"), "{e}");
        s.field_selector = Some("status.phase=Running,metadata.name=web-1".into());
        s.events = vec![ChangeType::Deleted];
        let e = matches(&s, &pod("shop", "web"), ChangeType::Added).expect_err("events");
        assert!(e.to_string().contains("events"), "{e}");
        assert_eq!(
            matches(&s, &pod("shop", "web"), ChangeType::Deleted),
            Ok(())
        );
    }

    #[test]
    fn secrets_are_kept_as_the_watch_says() {
        let key = SecretKey::random();
        let mut s = WatchSpec::new("", "v1", "Secret");
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "db"}, "data": {"p": "aHVudGVyMg=="}});
        let mut v = secret.clone();
        assert!(keep(&s, &mut v, &key));
        assert_ne!(v["data"]["p"], secret["data"]["p"]);
        s.secret_data = SecretData::Include;
        let mut v = secret.clone();
        assert!(!keep(&s, &mut v, &key));
        assert_eq!(v, secret);
    }
}
