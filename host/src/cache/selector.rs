//! Label and field selectors for the query API and the watch config: the
//! workspace's one implementation (`herald-selectors`, which the plugins use
//! too) with the API server's syntax, matched against cached objects.

use std::collections::BTreeMap;

use herald_selectors::{Syntax, label};

pub(super) use herald_selectors::SelectorError;

/// A parsed label selector: equality (`a=b`, `a==b`, `a!=b`), set (`a in (x,y)`,
/// `a notin (x)`), existence (`a`, `!a`) and numeric (`a>1`, `a<1`) requirements
/// joined by commas, as the API server takes them. The empty selector matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(label::Selector);

impl LabelSelector {
    /// Parses `labelSelector` syntax.
    ///
    /// # Errors
    /// [`SelectorError`] naming the term that does not parse.
    pub(crate) fn parse(s: &str) -> Result<Self, SelectorError> {
        label::Selector::parse_with(s, Syntax::ApiServer).map(Self)
    }

    /// Whether `labels` satisfy every requirement.
    #[cfg(test)]
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_by(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels `label` looks up (key → value) satisfy every requirement.
    pub(crate) fn matches_by<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.matches(label)
    }

    /// Whether every requirement of `selector` (a `matchLabels` map, as in a Service's
    /// `spec.selector`) holds. An empty map selects nothing, as for Services.
    #[cfg(test)]
    pub(crate) fn map_selects(
        selector: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        Self::map_selects_by(selector, |k| labels.get(k).map(String::as_str))
    }

    /// Whether every requirement of `selector` (a `matchLabels` map, as in a
    /// Service's `spec.selector`) holds for the labels `label` looks up. An
    /// empty map selects nothing, as for Services.
    pub(crate) fn map_selects_by<'a>(
        selector: &BTreeMap<String, String>,
        label: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        label::match_labels(selector, label)
    }
}

/// A parsed field selector: `field=value`, `field==value` and `field!=value` terms
/// joined by commas. The cache can answer `metadata.name` and `metadata.namespace`;
/// the API server decides which other fields a type supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(herald_selectors::FieldSelector);

/// Fields [`FieldSelector::matches`] can evaluate.
pub(crate) const CACHE_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

impl FieldSelector {
    /// Parses `fieldSelector` syntax.
    ///
    /// # Errors
    /// [`SelectorError`] naming the term that does not parse.
    pub(crate) fn parse(s: &str) -> Result<Self, SelectorError> {
        herald_selectors::FieldSelector::parse(s).map(Self)
    }

    /// The first field the cache cannot evaluate, if any.
    pub(crate) fn unsupported_field(&self) -> Option<&str> {
        self.0.fields().find(|f| !CACHE_FIELDS.contains(f))
    }

    /// Whether an object with this namespace (`""` when cluster-scoped) and name
    /// satisfies every term. Terms on other fields never match.
    pub(crate) fn matches(&self, namespace: &str, name: &str) -> bool {
        self.0.matches_by(|field| match field {
            "metadata.name" => Some(name),
            "metadata.namespace" => Some(namespace),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// Was the type's doc example; the type is crate-private now.
    #[test]
    fn doc_example_matches() {
        let s = LabelSelector::parse("app=web,tier in (front,edge),!canary").unwrap();
        let labels = BTreeMap::from([("app".into(), "web".into()), ("tier".into(), "edge".into())]);
        assert!(s.matches(&labels));
    }

    #[test]
    fn equality_and_set_based_label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("tier in (front, edge)", true),
            ("tier in (edge)", false),
            ("tier notin (edge)", true),
            ("missing notin (x)", true),
            ("missing in (x)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("n>4", true),
            ("n<5", false),
            ("app=web,tier in (front),!canary", true),
            ("app=web,tier=back", false),
            ("example.com/team", false),
        ] {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn bad_label_selectors_are_rejected() {
        for sel in [
            "app in (web",
            "app in web)",
            "app = (x)",
            "app foo (x)",
            "-bad=x",
            "app=not valid",
            "n>x",
            "UPPER.example.com/x=y",
        ] {
            assert!(LabelSelector::parse(sel).is_err(), "{sel}");
        }
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let s = FieldSelector::parse("metadata.namespace=web,metadata.name!=a").expect("parses");
        assert!(s.matches("web", "b"));
        assert!(!s.matches("web", "a"));
        assert!(!s.matches("db", "b"));
        assert_eq!(s.unsupported_field(), None);
        let s = FieldSelector::parse("status.phase=Running").expect("parses");
        assert_eq!(s.unsupported_field(), Some("status.phase"));
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("bad field=x").is_err());
    }

    #[test]
    fn map_selector_needs_every_pair_and_selects_nothing_when_empty() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::map_selects(&labels(&[("app", "web")]), &l));
        assert!(!LabelSelector::map_selects(
            &labels(&[("app", "web"), ("x", "y")]),
            &l
        ));
        assert!(!LabelSelector::map_selects(&BTreeMap::new(), &l));
    }
}
