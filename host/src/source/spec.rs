//! [`WatchSpec`]: what to watch, as a user writes it in config or POSTs to the admin API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::{FieldSelector, LabelSelector};
use crate::change::{ChangeType, Gvk};

use super::error::{Error, Result};
use super::secrets::SecretData;

/// One watched type.
///
/// ```
/// use herald::source::WatchSpec;
/// let spec: WatchSpec = serde_json::from_str(r#"{
///     "group": "apps", "version": "v1", "kind": "Deployment",
///     "namespaces": ["payments"], "labelSelector": "tier=frontend",
///     "events": ["added", "deleted"]
/// }"#).unwrap();
/// assert_eq!(spec.id(), "deployment.v1.apps");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchSpec {
    /// Id of the watch, unique among watches; defaults to `kind.version.group`
    /// (lower case, `core` for the core group). Needed when one type is watched twice.
    /// Example: `payments-deployments`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// API group; empty or `core` for the core group. Example: `apps`
    #[serde(default)]
    pub group: String,
    /// API version; the group's preferred version when absent. Example: `v1`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind, plural or short name, as kubectl takes them. Example: `Deployment`, `deploy`
    pub kind: String,
    /// Namespaces to watch; empty means all. Example: `[payments, web]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces to leave out. Example: `[kube-system]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_namespaces: Vec<String>,
    /// Label selector, passed to the API server. Example: `tier=frontend,env in (prod)`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Field selector, passed to the API server. Example: `status.phase=Running`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    /// Changes to emit; the cache is kept whatever this says, so an empty list watches
    /// a type only for the query API. Default: all three. Example: `[added, deleted]`
    #[serde(default = "all_changes")]
    pub events: Vec<ChangeType>,
    /// Plugin chain for this watch's events, in order. Example: `[prune-noise]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<String>,
    /// Sinks this watch's events go to. Example: `[ops-slack]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<String>,
    /// Restart a watch that has heard nothing from the server (no event, no bookmark)
    /// for this long; overrides the source-wide setting. Example: `2m`
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub stall_timeout: Option<Duration>,
    /// For Secrets: `redact` (default) replaces the values of `data` and
    /// `stringData`, and the last-applied annotation, by a keyed digest before
    /// anything keeps them; `include` lets them flow to plugins and sinks.
    /// Example: `include`
    #[serde(default, skip_serializing_if = "SecretData::is_redact")]
    pub(crate) secret_data: SecretData,
}

fn all_changes() -> Vec<ChangeType> {
    vec![ChangeType::Added, ChangeType::Modified, ChangeType::Deleted]
}

impl WatchSpec {
    /// A spec for `group`/`version`/`kind` (or plural or short name) with defaults:
    /// all namespaces, all changes.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self {
            name: None,
            group: group.to_string(),
            version: (!version.is_empty()).then(|| version.to_string()),
            kind: kind.to_string(),
            namespaces: Vec::new(),
            ignore_namespaces: Vec::new(),
            label_selector: None,
            field_selector: None,
            events: all_changes(),
            plugins: Vec::new(),
            sinks: Vec::new(),
            stall_timeout: None,
            secret_data: SecretData::Redact,
        }
    }

    /// The id: [`WatchSpec::name`], or `kind.version.group` in lower case.
    pub fn id(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let group = if self.group().is_empty() {
            "core"
        } else {
            self.group()
        };
        match &self.version {
            Some(v) => format!("{}.{v}.{group}", self.kind).to_ascii_lowercase(),
            None => format!("{}.{group}", self.kind).to_ascii_lowercase(),
        }
    }

    /// The API group, `""` for core (`core` is accepted as its name).
    pub fn group(&self) -> &str {
        match self.group.as_str() {
            "core" => "",
            g => g,
        }
    }

    /// The type as written (before discovery resolves names), for messages.
    pub fn gvk(&self) -> Gvk {
        Gvk {
            group: self.group().to_string(),
            version: self.version.clone().unwrap_or_default(),
            kind: self.kind.clone(),
        }
    }

    /// Whether changes of this type are emitted.
    pub(crate) fn emits(&self, change: ChangeType) -> bool {
        self.events.contains(&change)
    }

    /// Checks everything that can be checked before discovery.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let id = self.id();
        let invalid = |reason: String| Error::InvalidSpec {
            id: id.clone(),
            reason,
        };
        if let Some(name) = &self.name
            && !is_dns_label(name)
        {
            return Err(invalid(format!(
                "name {name:?}: expected lower-case letters, digits and '-', at most 63"
            )));
        }
        if self.kind.trim().is_empty() {
            return Err(invalid("kind: required".into()));
        }
        if let Some(v) = &self.version
            && (v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(invalid(format!(
                "version {v:?}: expected e.g. v1 or v1beta1"
            )));
        }
        for (field, list) in [
            ("namespaces", &self.namespaces),
            ("ignoreNamespaces", &self.ignore_namespaces),
        ] {
            for ns in list {
                if !is_dns_label(ns) {
                    return Err(invalid(format!("{field}: {ns:?} is not a namespace name")));
                }
            }
        }
        if !self.namespaces.is_empty() && self.scopes().is_empty() {
            return Err(invalid(
                "namespaces: every listed namespace is in ignoreNamespaces".into(),
            ));
        }
        if let Some(s) = &self.label_selector {
            LabelSelector::parse(s).map_err(|e| invalid(format!("labelSelector: {e}")))?;
        }
        if let Some(s) = &self.field_selector {
            FieldSelector::parse(s).map_err(|e| invalid(format!("fieldSelector: {e}")))?;
        }
        if self
            .stall_timeout
            .is_some_and(|d| d < Duration::from_millis(100))
        {
            return Err(invalid("stallTimeout: at least 100ms".into()));
        }
        Ok(())
    }

    /// The namespace scopes to watch: `[None]` for all namespaces, else one per listed
    /// namespace that is not ignored (deduplicated, in order).
    pub(crate) fn scopes(&self) -> Vec<Option<String>> {
        if self.namespaces.is_empty() {
            return vec![None];
        }
        let mut out: Vec<Option<String>> = Vec::new();
        for ns in &self.namespaces {
            let scope = Some(ns.clone());
            if !self.ignore_namespaces.contains(ns) && !out.contains(&scope) {
                out.push(scope);
            }
        }
        out
    }

    /// The field selector sent to the server for a scope: the user's, plus
    /// `metadata.namespace!=X` for each ignored namespace when watching all of them.
    pub(crate) fn server_field_selector(&self, scope: Option<&str>) -> Option<String> {
        let mut terms: Vec<String> = self
            .field_selector
            .iter()
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .collect();
        if scope.is_none() {
            terms.extend(
                self.ignore_namespaces
                    .iter()
                    .map(|ns| format!("metadata.namespace!={ns}")),
            );
        }
        (!terms.is_empty()).then(|| terms.join(","))
    }
}

/// RFC 1123 label: what namespace names and watch names must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_camel_case_with_defaults_and_rejects_unknown_fields() {
        let s: WatchSpec = serde_json::from_str(
            r#"{"group":"core","version":"v1","kind":"Pod","ignoreNamespaces":["kube-system"],
                "stallTimeout":"90s","plugins":["p"],"sinks":["s"]}"#,
        )
        .expect("parses");
        assert_eq!(s.group(), "");
        assert_eq!(s.id(), "pod.v1.core");
        assert_eq!(s.events.len(), 3);
        assert_eq!(s.stall_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.plugins, ["p"]);
        s.validate().expect("valid");
        let err = serde_json::from_str::<WatchSpec>(r#"{"kind":"Pod","labelselector":"a"}"#)
            .expect_err("unknown field");
        assert!(err.to_string().contains("labelselector"), "{err}");
        // Round trip keeps the meaning.
        let back: WatchSpec =
            serde_json::from_str(&serde_json::to_string(&s).expect("ser")).expect("de");
        assert_eq!(back, s);
    }

    #[test]
    fn scopes_and_server_field_selectors() {
        let mut s = WatchSpec::new("", "v1", "Pod");
        s.ignore_namespaces = vec!["kube-system".into(), "b".into()];
        s.field_selector = Some("status.phase=Running".into());
        assert_eq!(s.scopes(), [None]);
        assert_eq!(
            s.server_field_selector(None).as_deref(),
            Some("status.phase=Running,metadata.namespace!=kube-system,metadata.namespace!=b")
        );
        s.namespaces = vec!["a".into(), "b".into(), "a".into()];
        assert_eq!(s.scopes(), [Some("a".to_string())]);
        assert_eq!(
            s.server_field_selector(Some("a")).as_deref(),
            Some("status.phase=Running")
        );
        s.namespaces = vec!["b".into()];
        assert!(s.validate().is_err(), "every namespace ignored");
    }

    #[test]
    fn validation_names_the_field() {
        let mut s = WatchSpec::new("apps", "v1", "Deployment");
        s.label_selector = Some("tier in (a".into());
        let e = s.validate().expect_err("bad selector").to_string();
        assert!(
            e.contains("labelSelector") && e.contains("deployment.v1.apps"),
            "{e}"
        );
        let mut s = WatchSpec::new("apps", "v1", "Deployment");
        s.namespaces = vec!["Not_A_Namespace".into()];
        assert!(
            s.validate()
                .expect_err("bad ns")
                .to_string()
                .contains("namespaces")
        );
        let s = WatchSpec::new("apps", "v1", " ");
        assert!(s.validate().is_err());
    }
}
