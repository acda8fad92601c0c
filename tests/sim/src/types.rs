//! Resource types the simulator serves: the built-in table and [`ResourceType`].

use std::fmt;

/// The verbs every simulated resource supports, in the order a real server lists them.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One kind of object the simulator serves, at one group/version.
///
/// Add your own with [`Sim::add_resource`](crate::Sim::add_resource), or by creating a
/// `CustomResourceDefinition` through the API.
///
/// ```
/// use herald_sim::ResourceType;
/// let widgets = ResourceType::new("example.com", "v1", "Widget", "widgets")
///     .short_names(&["wd"]);
/// assert_eq!(widgets.api_version(), "example.com/v1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group. Example: `apps`.
    pub group: String,
    /// Version within the group. Example: `v1`.
    pub version: String,
    /// Kind, as in `kind:`. Example: `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs. Example: `deployments`.
    pub plural: String,
    /// Singular name. Example: `deployment`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts. Example: `["deploy"]`.
    pub short_names: Vec<String>,
    /// Categories. Example: `["all"]`.
    pub categories: Vec<String>,
    /// Whether a `/status` subresource is served.
    pub status_subresource: bool,
}

impl ResourceType {
    /// A namespaced type with a `/status` subresource, singular derived from `kind`.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_ascii_lowercase(),
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            status_subresource: true,
        }
    }

    /// Sets whether the type is namespaced (`false`: cluster-scoped).
    pub fn namespaced(mut self, namespaced: bool) -> Self {
        self.namespaced = namespaced;
        self
    }

    /// Sets the short names.
    pub fn short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets the categories.
    pub fn categories(mut self, categories: &[&str]) -> Self {
        self.categories = categories.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets whether a `/status` subresource is served.
    pub fn status_subresource(mut self, on: bool) -> Self {
        self.status_subresource = on;
        self
    }

    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage identity: objects are shared by every version of a group/resource.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    /// Field paths (beyond `metadata.name`/`metadata.namespace`) a field selector may use.
    pub(crate) fn selectable_fields(&self) -> &'static [&'static str] {
        match (self.group.as_str(), self.plural.as_str()) {
            ("", "pods") => &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            ("", "secrets") => &["type"],
            ("", "namespaces") => &["status.phase"],
            ("", "nodes") => &["spec.unschedulable"],
            ("", "events") => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            ("apps", "replicasets") => &["status.replicas"],
            _ => &[],
        }
    }
}

/// A group and plural resource: the key objects are stored under.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group; empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// (group, version, kind, plural, short names, namespaced, status subresource, categories)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    bool,
    &'static [&'static str],
);

const BUILTINS: &[Row] = &[
    (
        "",
        "v1",
        "Namespace",
        "namespaces",
        &["ns"],
        false,
        true,
        &[],
    ),
    ("", "v1", "Node", "nodes", &["no"], false, true, &[]),
    ("", "v1", "Pod", "pods", &["po"], true, true, &["all"]),
    (
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        &["cm"],
        true,
        false,
        &[],
    ),
    ("", "v1", "Secret", "secrets", &[], true, false, &[]),
    (
        "",
        "v1",
        "Service",
        "services",
        &["svc"],
        true,
        true,
        &["all"],
    ),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        &["sa"],
        true,
        false,
        &[],
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc"],
        true,
        true,
        &[],
    ),
    ("", "v1", "Event", "events", &["ev"], true, false, &[]),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        &["deploy"],
        true,
        true,
        &["all"],
    ),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        &["rs"],
        true,
        true,
        &["all"],
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        &["sts"],
        true,
        true,
        &["all"],
    ),
    (
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        &["ds"],
        true,
        true,
        &["all"],
    ),
    ("batch", "v1", "Job", "jobs", &[], true, true, &["all"]),
    (
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        &["cj"],
        true,
        true,
        &["all"],
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        &[],
        true,
        false,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        &["ing"],
        true,
        true,
        &[],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        &[],
        true,
        false,
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        false,
        true,
        &["api-extensions"],
    ),
];

/// The types every simulator serves from the start.
pub fn builtin_types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(
            |&(group, version, kind, plural, short, namespaced, status, categories)| {
                ResourceType::new(group, version, kind, plural)
                    .short_names(short)
                    .namespaced(namespaced)
                    .status_subresource(status)
                    .categories(categories)
            },
        )
        .collect()
}

/// Orders versions as Kubernetes does: GA before beta before alpha, higher numbers
/// first, anything else last alphabetically. Returns the sort key (smaller = preferred).
pub(crate) fn version_priority(
    version: &str,
) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    use std::cmp::Reverse;
    let parse = |s: &str| -> Option<(u64, u8, u64)> {
        let rest = s.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 0, 0));
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n)
        } else {
            return None;
        };
        Some((major, level, num.parse().ok()?))
    };
    match parse(version) {
        Some((major, level, minor)) => (level, Reverse(major), Reverse(minor), String::new()),
        None => (3, Reverse(0), Reverse(0), version.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec![
            "v1alpha1", "foo", "v1", "v2beta1", "v1beta2", "v2", "v1beta1",
        ];
        v.sort_by_key(|s| version_priority(s));
        assert_eq!(
            v,
            [
                "v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn builtins_have_short_names() {
        let t = builtin_types();
        let pods = t.iter().find(|t| t.plural == "pods").expect("pods");
        assert_eq!(pods.short_names, ["po"]);
        assert!(pods.namespaced);
        let ns = t.iter().find(|t| t.plural == "namespaces").expect("ns");
        assert!(!ns.namespaced);
    }
}
