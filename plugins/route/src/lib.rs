//! route: sends each event to sinks chosen by ordered rules.
//!
//! Rules are tried in order; every rule whose `match` holds adds its sinks
//! (in order, without duplicates) until a matching rule has `stop: true`.
//! An object whose annotation `herald.io/route` names sinks (comma-separated)
//! always goes to those sinks too, ahead of the rules' sinks. When nothing
//! matches, the event goes to `defaultSinks` if set, else the plugin passes
//! and herald uses the watch's default sinks.
//!
//! A `match` holds when all of its keys hold; an empty `match` (`{}`) holds
//! for every event.
//!
//! # Config
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `rules` | list | `{match, sinks, stop}`, tried in order |
//! | `rules[].match.namespaces` | names or globs (`*`, `?`) | the object's namespace is one of these (cluster-scoped objects never match) |
//! | `rules[].match.labels` | Kubernetes selector | as the filter plugin's `labelSelector` |
//! | `rules[].match.kinds` | list of kinds | case-insensitive |
//! | `rules[].sinks` | list of sink names | at least one |
//! | `rules[].stop` | bool, default `false` | no later rule is tried after this one matches |
//! | `defaultSinks` | list of sink names | where unmatched events go (default: pass, so the watch's sinks) |
//! | `annotation` | string, default `herald.io/route` | the routing annotation; `""` turns it off |
//!
//! # Example
//!
//! ```yaml
//! rules:
//!   - match: { namespaces: ["payments-*"], labels: "tier=frontend" }
//!     sinks: [payments-hook]
//!     stop: true
//!   - match: { kinds: [Secret, ConfigMap] }
//!     sinks: [audit]
//!   - match: { labels: "team" }
//!     sinks: [ops-slack]
//! defaultSinks: [catch-all]
//! ```

use filter_matchers::glob::GlobSet;
use filter_matchers::selector::Selector;
use herald_plugin_sdk::{Event, Plugin, Verdict};
use serde::Deserialize;

/// The annotation an object names its own sinks with.
pub const ROUTE_ANNOTATION: &str = "herald.io/route";

/// The plugin's config; see the crate doc.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Rules, tried in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Sinks for events no rule matches. Example: `[ops-slack]`
    #[serde(default)]
    pub default_sinks: Option<Vec<String>>,
    /// The routing annotation; empty disables it. Example: `herald.io/route`
    #[serde(default = "default_annotation")]
    pub annotation: String,
}

fn default_annotation() -> String {
    ROUTE_ANNOTATION.to_string()
}

/// One rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// When the rule applies. Example: `{namespaces: [payments]}`
    #[serde(rename = "match", default)]
    pub matches: MatchConfig,
    /// Sinks to add. Example: `[payments-hook]`
    pub sinks: Vec<String>,
    /// Stop after this rule when it matches.
    #[serde(default)]
    pub stop: bool,
}

/// A rule's conditions; all must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Names or globs. Example: `["payments-*"]`
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// A label selector. Example: `"tier=frontend"`
    #[serde(default)]
    pub labels: Option<String>,
    /// Kinds, case-insensitive. Example: `[Deployment]`
    #[serde(default)]
    pub kinds: Vec<String>,
}

#[derive(Debug)]
struct Rule {
    namespaces: GlobSet,
    labels: Selector,
    kinds: Vec<String>,
    sinks: Vec<String>,
    stop: bool,
}

impl Rule {
    fn matches(&self, event: &Event<'_>) -> bool {
        if !self.kinds.is_empty() {
            let kind = event.kind();
            if !self.kinds.iter().any(|k| k.eq_ignore_ascii_case(&kind)) {
                return false;
            }
        }
        if !self.namespaces.is_empty() {
            match event.namespace() {
                Some(ns) if self.namespaces.matches(&ns) => {}
                _ => return false,
            }
        }
        self.labels.matches(|k| event.label(k))
    }
}

/// Routes events by rules.
#[derive(Debug)]
pub struct Route {
    rules: Vec<Rule>,
    default_sinks: Option<Vec<String>>,
    annotation: Option<String>,
}

impl Plugin for Route {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.into_iter().enumerate() {
            let at = |e: String| format!("rules[{i}]: {e}");
            check_sinks(&r.sinks).map_err(at)?;
            let labels = match &r.matches.labels {
                Some(text) => {
                    Selector::parse(text).map_err(|e| at(format!("match.labels: {e}")))?
                }
                None => Selector::default(),
            };
            rules.push(Rule {
                namespaces: GlobSet::new(&r.matches.namespaces),
                labels,
                kinds: r.matches.kinds,
                sinks: r.sinks,
                stop: r.stop,
            });
        }
        if let Some(sinks) = &config.default_sinks {
            check_sinks(sinks).map_err(|e| format!("defaultSinks: {e}"))?;
        }
        Ok(Route {
            rules,
            default_sinks: config.default_sinks,
            annotation: Some(config.annotation).filter(|a| !a.is_empty()),
        })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        let mut sinks: Vec<String> = Vec::new();
        if let Some(key) = &self.annotation
            && let Some(value) = event.annotation(key)
        {
            for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                add(&mut sinks, name);
            }
        }
        for rule in &self.rules {
            if rule.matches(event) {
                for name in &rule.sinks {
                    add(&mut sinks, name);
                }
                if rule.stop {
                    break;
                }
            }
        }
        if !sinks.is_empty() {
            return Verdict::Route(sinks);
        }
        match &self.default_sinks {
            Some(defaults) => Verdict::route(defaults.iter().cloned()),
            None => Verdict::Pass,
        }
    }
}

herald_plugin_sdk::export_plugin!(Route);

fn add(sinks: &mut Vec<String>, name: &str) {
    if !sinks.iter().any(|s| s == name) {
        sinks.push(name.to_string());
    }
}

fn check_sinks(sinks: &[String]) -> Result<(), String> {
    if sinks.is_empty() {
        return Err("sinks: at least one sink is required".into());
    }
    match sinks.iter().find(|s| s.trim().is_empty()) {
        Some(_) => Err("sinks: a sink name is empty".into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::{Value, json};

    fn route(config: Value) -> Route {
        testing::init::<Route>(&config.to_string()).unwrap()
    }

    fn init_err(config: Value) -> String {
        testing::init::<Route>(&config.to_string()).err().unwrap()
    }

    fn obj(kind: &str, ns: Option<&str>, labels: Value, annotations: Value) -> TestEvent {
        let mut v = json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {"name": "x", "labels": labels, "annotations": annotations}
        });
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        TestEvent::added(v)
    }

    fn pod(ns: &str, labels: Value) -> TestEvent {
        obj("Pod", Some(ns), labels, json!({}))
    }

    #[test]
    fn no_rules_and_no_match_pass() {
        let mut r = route(json!({}));
        assert_eq!(
            testing::run(&mut r, &mut pod("a", json!({}))),
            Verdict::Pass
        );
        let mut r = route(json!({"rules": [{"match": {"namespaces": ["x"]}, "sinks": ["s"]}]}));
        assert_eq!(
            testing::run(&mut r, &mut pod("a", json!({}))),
            Verdict::Pass
        );
    }

    #[test]
    fn matching_rules_accumulate_in_order_until_stop() {
        let mut r = route(json!({"rules": [
            {"match": {"namespaces": ["pay-*"]}, "sinks": ["pay", "audit"]},
            {"match": {"labels": "tier=frontend"}, "sinks": ["web", "pay"], "stop": true},
            {"match": {}, "sinks": ["all"]},
        ]}));
        assert_eq!(
            testing::run(&mut r, &mut pod("pay-eu", json!({"tier": "frontend"}))),
            Verdict::route(["pay", "audit", "web"])
        );
        assert_eq!(
            testing::run(&mut r, &mut pod("pay-eu", json!({}))),
            Verdict::route(["pay", "audit", "all"])
        );
        assert_eq!(
            testing::run(&mut r, &mut pod("ops", json!({}))),
            Verdict::route(["all"])
        );
    }

    #[test]
    fn stop_on_a_rule_that_does_not_match_does_not_stop() {
        let mut r = route(json!({"rules": [
            {"match": {"kinds": ["Secret"]}, "sinks": ["sec"], "stop": true},
            {"match": {}, "sinks": ["all"]},
        ]}));
        assert_eq!(
            testing::run(&mut r, &mut pod("a", json!({}))),
            Verdict::route(["all"])
        );
        let mut secret = obj("Secret", Some("a"), json!({}), json!({}));
        assert_eq!(testing::run(&mut r, &mut secret), Verdict::route(["sec"]));
    }

    #[test]
    fn match_keys_all_must_hold() {
        let mut r = route(json!({"rules": [{
            "match": {"namespaces": ["web"], "labels": "app in (api,ui), !legacy",
                      "kinds": ["deployment"]},
            "sinks": ["web"]
        }]}));
        let mut hit = |kind, ns, labels| {
            testing::run(&mut r, &mut obj(kind, ns, labels, json!({}))) == Verdict::route(["web"])
        };
        assert!(hit("Deployment", Some("web"), json!({"app": "ui"})));
        assert!(!hit("Pod", Some("web"), json!({"app": "ui"})));
        assert!(!hit("Deployment", Some("ops"), json!({"app": "ui"})));
        assert!(!hit("Deployment", None, json!({"app": "ui"})));
        assert!(!hit("Deployment", Some("web"), json!({"app": "db"})));
        assert!(!hit(
            "Deployment",
            Some("web"),
            json!({"app": "ui", "legacy": "1"})
        ));
    }

    #[test]
    fn annotation_always_routes_first() {
        let mut r = route(json!({"rules": [{"match": {}, "sinks": ["all"], "stop": true}]}));
        let mut e = obj(
            "Pod",
            Some("a"),
            json!({}),
            json!({"herald.io/route": " team-a , all,,team-b"}),
        );
        assert_eq!(
            testing::run(&mut r, &mut e),
            Verdict::route(["team-a", "all", "team-b"])
        );
        // Also without any rule, and instead of the defaults.
        let mut r = route(json!({"defaultSinks": ["d"]}));
        let mut e = obj("Pod", None, json!({}), json!({"herald.io/route": "x"}));
        assert_eq!(testing::run(&mut r, &mut e), Verdict::route(["x"]));
    }

    #[test]
    fn annotation_can_be_renamed_or_turned_off() {
        let mut e = obj(
            "Pod",
            Some("a"),
            json!({}),
            json!({"herald.io/route": "x", "example.com/sinks": "y"}),
        );
        let mut r = route(json!({"annotation": "example.com/sinks"}));
        assert_eq!(testing::run(&mut r, &mut e), Verdict::route(["y"]));
        let mut r = route(json!({"annotation": ""}));
        assert_eq!(testing::run(&mut r, &mut e), Verdict::Pass);
    }

    #[test]
    fn default_sinks_take_unmatched_events() {
        let mut r = route(json!({
            "rules": [{"match": {"namespaces": ["pay"]}, "sinks": ["pay"]}],
            "defaultSinks": ["ops", "audit"]
        }));
        assert_eq!(
            testing::run(&mut r, &mut pod("web", json!({}))),
            Verdict::route(["ops", "audit"])
        );
        assert_eq!(
            testing::run(&mut r, &mut pod("pay", json!({}))),
            Verdict::route(["pay"])
        );
    }

    #[test]
    fn config_errors_name_the_rule() {
        let err = init_err(json!({"rules": [{"match": {"labels": "a in (x"}, "sinks": ["s"]}]}));
        assert!(
            err.starts_with("rules[0]: match.labels: label selector"),
            "{err}"
        );
        assert!(err.contains("unbalanced"), "{err}");
        let err = init_err(json!({"rules": [{"match": {}, "sinks": ["s"]}, {"sinks": []}]}));
        assert_eq!(err, "rules[1]: sinks: at least one sink is required");
        let err = init_err(json!({"rules": [{"match": {"namespace": ["a"]}, "sinks": ["s"]}]}));
        assert!(err.contains("unknown field `namespace`"), "{err}");
        let err = init_err(json!({"defaultSinks": []}));
        assert_eq!(err, "defaultSinks: sinks: at least one sink is required");
        let err = init_err(json!({"rules": [{"match": {}}]}));
        assert!(err.contains("missing field `sinks`"), "{err}");
    }
}
