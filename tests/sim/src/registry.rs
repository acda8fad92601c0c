//! The set of served resource types: built-ins, types added at run time, and types
//! registered by CustomResourceDefinition objects.

use std::collections::HashMap;

use crate::types::{GroupResource, ResourceType, builtin_types, version_priority};

/// Served types, in registration order (which is discovery order).
pub struct Registry {
    types: Vec<ResourceType>,
    /// CRD name → the (group, version, plural) it registered.
    crds: HashMap<String, Vec<(String, String, String)>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            types: builtin_types(),
            crds: HashMap::new(),
        }
    }
}

impl Registry {
    /// The type served at `group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Some served version of a group/resource (the preferred one).
    pub fn by_group_resource(&self, gr: &GroupResource) -> Option<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == gr.group && t.plural == gr.resource)
            .min_by_key(|t| version_priority(&t.version))
    }

    /// Adds (or replaces) a type.
    pub fn add(&mut self, rt: ResourceType) {
        match self
            .types
            .iter_mut()
            .find(|t| t.group == rt.group && t.version == rt.version && t.plural == rt.plural)
        {
            Some(t) => *t = rt,
            None => self.types.push(rt),
        }
    }

    /// Removes a type; returns whether it was served.
    pub fn remove(&mut self, group: &str, version: &str, plural: &str) -> bool {
        let before = self.types.len();
        self.types
            .retain(|t| !(t.group == group && t.version == version && t.plural == plural));
        before != self.types.len()
    }

    /// Replaces whatever the CRD `name` registered with `types`.
    pub fn set_crd(&mut self, name: &str, types: Vec<ResourceType>) {
        self.remove_crd(name);
        let ids = types
            .iter()
            .map(|t| (t.group.clone(), t.version.clone(), t.plural.clone()))
            .collect();
        for t in types {
            self.add(t);
        }
        self.crds.insert(name.to_string(), ids);
    }

    /// Unregisters what the CRD `name` registered; returns the removed types' ids.
    pub fn remove_crd(&mut self, name: &str) -> Vec<(String, String, String)> {
        let ids = self.crds.remove(name).unwrap_or_default();
        for (g, v, p) in &ids {
            self.remove(g, v, p);
        }
        ids
    }

    /// Non-core groups with their versions, most preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
                Some(_) => {}
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, vs) in &mut out {
            vs.sort_by_key(|v| version_priority(v));
        }
        out
    }

    /// Types served at `group/version`.
    pub fn resources(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect()
    }

    /// Resolves a name as kubectl would: `pods`, `po`, `Pod`, `deployments.apps`,
    /// `deploy.apps`, `apps/v1/deployments` or `v1/pods`.
    pub fn resolve(&self, spec: &str) -> Option<&ResourceType> {
        let parts: Vec<&str> = spec.split('/').collect();
        match parts.as_slice() {
            [g, v, p] => return self.lookup(g, v, p),
            [v, p] => return self.lookup("", v, p),
            _ => {}
        }
        let names = |t: &ResourceType, n: &str| {
            t.plural == n
                || t.singular == n
                || t.kind.eq_ignore_ascii_case(n)
                || t.short_names.iter().any(|s| s == n)
        };
        let best = |group: Option<&str>, n: &str| {
            let mut found: Vec<&ResourceType> = self
                .types
                .iter()
                .filter(|t| group.is_none_or(|g| t.group == g) && names(t, n))
                .collect();
            // Core first, then registration order; preferred version within a group.
            found.sort_by_key(|t| (!t.group.is_empty(), version_priority(&t.version)));
            found.first().copied()
        };
        if let Some((n, g)) = spec.split_once('.')
            && let Some(t) = best(Some(g), n)
        {
            return Some(t);
        }
        best(None, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_kubectl() {
        let r = Registry::default();
        for (spec, plural) in [
            ("pods", "pods"),
            ("po", "pods"),
            ("Pod", "pods"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("apps/v1/replicasets", "replicasets"),
            ("v1/configmaps", "configmaps"),
            ("crd", "customresourcedefinitions"),
        ] {
            assert_eq!(
                r.resolve(spec).map(|t| t.plural.as_str()),
                Some(plural),
                "{spec}"
            );
        }
        assert!(r.resolve("nothing").is_none());
    }

    #[test]
    fn crd_types_come_and_go() {
        let mut r = Registry::default();
        let t = ResourceType::new("example.com", "v1", "Widget", "widgets");
        r.set_crd(
            "widgets.example.com",
            vec![
                t.clone(),
                ResourceType {
                    version: "v1beta1".into(),
                    ..t
                },
            ],
        );
        assert!(r.lookup("example.com", "v1", "widgets").is_some());
        let g = r.groups();
        let (_, versions) = g.iter().find(|(g, _)| g == "example.com").expect("group");
        assert_eq!(versions, &["v1", "v1beta1"]);
        assert_eq!(r.remove_crd("widgets.example.com").len(), 2);
        assert!(r.lookup("example.com", "v1", "widgets").is_none());
    }
}
