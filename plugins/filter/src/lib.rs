//! filter: passes only the events that meet every configured condition and
//! drops the rest with a reason naming the condition that failed.
//!
//! Conditions are checked cheapest first (change type, kind, namespace,
//! labels, fields) and read the object through the host's accessors, so the
//! plugin never parses a whole object. Regexes and the label selector are
//! compiled once, at init; a bad one is an init error.
//!
//! # Config
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `namespaces` | list of names or globs (`*`, `?`) | only these namespaces; cluster-scoped objects are dropped when set |
//! | `ignoreNamespaces` | list of names or globs | never these namespaces; wins over `namespaces` |
//! | `labelSelector` | Kubernetes selector | `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`; comma = AND |
//! | `kinds` | list of kinds | only these kinds (case-insensitive) |
//! | `changes` | subset of `added`, `modified`, `deleted` | only these change types |
//! | `fields` | list of conditions | each `{pointer, equals: <json>}`, `{pointer, exists: bool}` or `{pointer, regex}` |
//!
//! Every key is optional; an empty config passes everything. A `regex` is
//! matched against a string value (the syntax of [`regex`], unanchored: write
//! `^...$` for a whole-value match); a missing or non-string value fails it.
//!
//! # Example
//!
//! ```yaml
//! namespaces: [payments, "web-*"]
//! ignoreNamespaces: [web-sandbox]
//! labelSelector: "tier=frontend, env in (prod,staging), !legacy"
//! kinds: [Deployment, StatefulSet]
//! changes: [added, deleted]
//! fields:
//!   - { pointer: /spec/replicas, equals: 5 }
//!   - { pointer: /metadata/annotations/owner, exists: true }
//!   - { pointer: /metadata/name, regex: "^api-" }
//! ```
//!
//! Drop reasons look like `namespace kube-system is ignored`,
//! `label selector tier=frontend does not match` or
//! `/spec/replicas is 3, want 5`.
//!
//! The label selector and namespace globs live in the `filter-matchers`
//! crate next to this one (re-exported here as [`selector`] and [`glob`]),
//! which `route` and `noise` use too.

pub mod regex;

pub use filter_matchers::{glob, selector};

use std::fmt;

use herald_plugin_sdk::{Change, Event, Plugin, Verdict};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::glob::GlobSet;
use crate::selector::Selector;

/// The plugin's config; see the crate doc.
///
/// Read from JSON by hand rather than with serde's derive: the derived
/// visitors cost ~10 KB of .wasm, and this plugin must stay under 200 KB.
#[derive(Debug, Default)]
pub struct Config {
    /// Only these namespaces (names or globs). Example: `[payments, "web-*"]`
    pub namespaces: Vec<String>,
    /// Never these namespaces (names or globs). Example: `[kube-system]`
    pub ignore_namespaces: Vec<String>,
    /// A Kubernetes label selector. Example: `"tier=frontend,env in (prod)"`
    pub label_selector: Option<String>,
    /// Only these kinds, case-insensitive. Example: `[Deployment]`
    pub kinds: Vec<String>,
    /// Only these change types. Example: `[added, deleted]`
    pub changes: Vec<Change>,
    /// Field conditions. Example: `[{pointer: /spec/replicas, equals: 5}]`
    pub fields: Vec<FieldConfig>,
}

/// One field condition: a pointer and exactly one of `equals`, `exists`,
/// `regex`.
#[derive(Debug)]
pub struct FieldConfig {
    /// RFC 6901 pointer. Example: `/spec/replicas`
    pub pointer: String,
    /// The value must equal this JSON (`null` included). Example: `5`
    pub equals: Option<Value>,
    /// The value must exist (`true`) or be absent (`false`).
    pub exists: Option<bool>,
    /// The string value must match this regex. Example: `"^api-"`
    pub regex: Option<String>,
}

// === impl Deserialize, by hand ===

type Map = serde_json::Map<String, Value>;

fn object(v: Value, what: &str) -> Result<Map, String> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(format!(
            "invalid type: {}, expected {what}",
            kind_of(&other)
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a map",
    }
}

fn no_unknown(m: &Map, known: &[&str]) -> Result<(), String> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown field `{k}`, expected one of `{}`",
            known.join("`, `")
        )),
        None => Ok(()),
    }
}

fn string(v: Value, field: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "{field}: invalid type: {}, expected a string",
            kind_of(&other)
        )),
    }
}

fn strings(v: Option<Value>, field: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.into_iter().map(|i| string(i, field)).collect(),
        Some(other) => Err(format!(
            "{field}: invalid type: {}, expected a sequence",
            kind_of(&other)
        )),
    }
}

/// `added`, `modified`, `deleted`; the upper-case watch-event spellings too.
fn change_name(s: &str) -> Result<Change, String> {
    let upper = match s {
        "ADDED" => Some(Change::Added),
        "MODIFIED" => Some(Change::Modified),
        "DELETED" => Some(Change::Deleted),
        _ => None,
    };
    Change::from_name(s).or(upper).ok_or_else(|| {
        format!("unknown variant `{s}`, expected one of `added`, `modified`, `deleted`")
    })
}

impl FieldConfig {
    fn from_value(v: Value) -> Result<Self, String> {
        let mut m = object(v, "a field condition")?;
        no_unknown(&m, &["pointer", "equals", "exists", "regex"])?;
        let pointer = match m.remove("pointer") {
            Some(p) => string(p, "pointer")?,
            None => return Err("missing field `pointer`".into()),
        };
        let exists = match m.remove("exists") {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(other) => {
                return Err(format!(
                    "exists: invalid type: {}, expected a boolean",
                    kind_of(&other)
                ));
            }
        };
        let regex = m.remove("regex").map(|r| string(r, "regex")).transpose()?;
        Ok(FieldConfig {
            pointer,
            // An explicit `equals: null` is kept apart from a missing `equals`.
            equals: m.remove("equals"),
            exists,
            regex,
        })
    }
}

impl Config {
    fn from_value(v: Value) -> Result<Self, String> {
        let mut m = object(v, "the filter config (a map)")?;
        no_unknown(
            &m,
            &[
                "namespaces",
                "ignoreNamespaces",
                "labelSelector",
                "kinds",
                "changes",
                "fields",
            ],
        )?;
        let label_selector = match m.remove("labelSelector") {
            None | Some(Value::Null) => None,
            Some(v) => Some(string(v, "labelSelector")?),
        };
        let changes = strings(m.remove("changes"), "changes")?
            .iter()
            .map(|c| change_name(c))
            .collect::<Result<_, _>>()?;
        let fields = match m.remove("fields") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, f)| FieldConfig::from_value(f).map_err(|e| format!("fields[{i}]: {e}")))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "fields: invalid type: {}, expected a sequence",
                    kind_of(&other)
                ));
            }
        };
        Ok(Config {
            namespaces: strings(m.remove("namespaces"), "namespaces")?,
            ignore_namespaces: strings(m.remove("ignoreNamespaces"), "ignoreNamespaces")?,
            label_selector,
            kinds: strings(m.remove("kinds"), "kinds")?,
            changes,
            fields,
        })
    }
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Config::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A compiled field condition.
#[derive(Debug)]
enum Test {
    Equals(Value),
    Exists(bool),
    Regex(crate::regex::Regex),
}

#[derive(Debug)]
struct Field {
    pointer: String,
    test: Test,
}

/// Drops events that fail any configured condition.
#[derive(Debug)]
pub struct Filter {
    namespaces: GlobSet,
    ignore_namespaces: GlobSet,
    selector: Selector,
    kinds: Vec<String>,
    changes: Vec<Change>,
    fields: Vec<Field>,
}

impl Plugin for Filter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let selector = match &config.label_selector {
            Some(text) => Selector::parse(text).map_err(|e| format!("labelSelector: {e}"))?,
            None => Selector::default(),
        };
        let fields = config
            .fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| compile_field(f).map_err(|e| format!("fields[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            namespaces: GlobSet::new(&config.namespaces),
            ignore_namespaces: GlobSet::new(&config.ignore_namespaces),
            selector,
            kinds: config.kinds,
            changes: config.changes,
            fields,
        })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        match self.check(event) {
            Ok(()) => Verdict::Pass,
            Err(reason) => Verdict::Drop(reason),
        }
    }
}

herald_plugin_sdk::export_plugin!(Filter);

fn compile_field(f: FieldConfig) -> Result<Field, String> {
    if !f.pointer.starts_with('/') {
        return Err(format!(
            "pointer \"{}\" is not a JSON pointer (must start with /)",
            f.pointer
        ));
    }
    let test = match (f.equals, f.exists, f.regex) {
        (Some(v), None, None) => Test::Equals(v),
        (None, Some(b), None) => Test::Exists(b),
        (None, None, Some(r)) => Test::Regex(
            crate::regex::Regex::new(&r).map_err(|e| format!("invalid regex \"{r}\": {e}"))?,
        ),
        _ => {
            return Err(format!(
                "{}: give exactly one of equals, exists or regex",
                f.pointer
            ));
        }
    };
    Ok(Field {
        pointer: f.pointer,
        test,
    })
}

impl Filter {
    /// `Err(reason)` for the first condition that fails.
    fn check(&self, event: &Event<'_>) -> Result<(), String> {
        if !self.changes.is_empty() {
            let change = event.change();
            if !self.changes.contains(&change) {
                return Err(format!(
                    "change {change} is not in changes {}",
                    list(&self.changes)
                ));
            }
        }
        if !self.kinds.is_empty() {
            let kind = event.kind();
            if !self.kinds.iter().any(|k| k.eq_ignore_ascii_case(&kind)) {
                return Err(format!("kind {kind} is not in kinds {}", list(&self.kinds)));
            }
        }
        if !self.namespaces.is_empty() || !self.ignore_namespaces.is_empty() {
            self.check_namespace(event.namespace().as_deref())?;
        }
        if let Some(failed) = self.selector.first_mismatch(|k| event.label(k)) {
            return Err(if self.selector.requirements().len() > 1 {
                format!(
                    "label selector {} does not match ({failed} fails)",
                    self.selector
                )
            } else {
                format!("label selector {} does not match", self.selector)
            });
        }
        for field in &self.fields {
            field.check(event)?;
        }
        Ok(())
    }

    fn check_namespace(&self, namespace: Option<&str>) -> Result<(), String> {
        match namespace {
            Some(ns) if self.ignore_namespaces.matches(ns) => {
                Err(format!("namespace {ns} is ignored"))
            }
            Some(ns) if !self.namespaces.is_empty() && !self.namespaces.matches(ns) => Err(
                format!("namespace {ns} is not in namespaces {}", self.namespaces),
            ),
            None if !self.namespaces.is_empty() => Err(format!(
                "cluster-scoped object is not in namespaces {}",
                self.namespaces
            )),
            _ => Ok(()),
        }
    }
}

impl Field {
    fn check(&self, event: &Event<'_>) -> Result<(), String> {
        let p = &self.pointer;
        match &self.test {
            Test::Exists(want) => match (event.get_json(p).is_some(), want) {
                (true, true) | (false, false) => Ok(()),
                (false, true) => Err(format!("{p} is missing, want it to exist")),
                (true, false) => Err(format!("{p} exists, want it absent")),
            },
            Test::Equals(want) => {
                // A string is read with the cheap accessor; anything else
                // crosses as JSON text.
                if let Value::String(w) = want
                    && event.get_string(p).as_deref() == Some(w.as_str())
                {
                    return Ok(());
                }
                // A value that cannot be read fails the condition, saying why.
                match event.get(p).map_err(|e| e.to_string())? {
                    Some(got) if json_eq(&got, want) => Ok(()),
                    Some(got) => Err(format!("{p} is {}, want {}", short(&got), short(want))),
                    None => Err(format!("{p} is missing, want {}", short(want))),
                }
            }
            Test::Regex(re) => match event.get_string(p) {
                Some(s) if re.is_match(&s) => Ok(()),
                Some(s) => Err(format!(
                    "{p} is {}, want a match of {}",
                    short(&Value::String(s)),
                    re.as_str()
                )),
                None => match event.get(p).map_err(|e| e.to_string())? {
                    Some(got) => Err(format!(
                        "{p} is {}, want a string matching {}",
                        short(&got),
                        re.as_str()
                    )),
                    None => Err(format!("{p} is missing, want a match of {}", re.as_str())),
                },
            },
        }
    }
}

/// JSON equality where `5` equals `5.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value for a drop reason, cut to keep reasons one short line.
fn short(v: &Value) -> String {
    const MAX: usize = 80;
    let text = v.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::json;

    fn filter(config: Value) -> Filter {
        testing::init::<Filter>(&config.to_string()).unwrap()
    }

    fn init_err(config: Value) -> String {
        testing::init::<Filter>(&config.to_string()).err().unwrap()
    }

    fn deploy(ns: Option<&str>, labels: Value) -> Value {
        let mut v = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api-1", "labels": labels,
                         "annotations": {"owner": "team-a"}},
            "spec": {"replicas": 3, "paused": false, "selector": {"app": "api"}},
        });
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    fn run(f: &mut Filter, object: Value) -> Verdict {
        testing::run(f, &mut TestEvent::added(object))
    }

    #[test]
    fn empty_config_passes_everything() {
        let mut f = filter(json!({}));
        assert_eq!(run(&mut f, deploy(None, json!({}))), Verdict::Pass);
        let mut f = testing::init::<Filter>("").unwrap();
        assert_eq!(run(&mut f, deploy(Some("x"), json!({}))), Verdict::Pass);
    }

    #[test]
    fn namespaces_exact_and_glob() {
        let mut f = filter(json!({"namespaces": ["payments", "web-*"]}));
        assert_eq!(
            run(&mut f, deploy(Some("payments"), json!({}))),
            Verdict::Pass
        );
        assert_eq!(
            run(&mut f, deploy(Some("web-eu"), json!({}))),
            Verdict::Pass
        );
        assert_eq!(
            run(&mut f, deploy(Some("ops"), json!({}))),
            Verdict::drop("namespace ops is not in namespaces [payments, web-*]")
        );
        assert_eq!(
            run(&mut f, deploy(None, json!({}))),
            Verdict::drop("cluster-scoped object is not in namespaces [payments, web-*]")
        );
    }

    #[test]
    fn ignore_namespaces_wins_and_keeps_cluster_scoped() {
        let mut f = filter(json!({"namespaces": ["kube-*"], "ignoreNamespaces": ["kube-sys?em"]}));
        assert_eq!(
            run(&mut f, deploy(Some("kube-system"), json!({}))),
            Verdict::drop("namespace kube-system is ignored")
        );
        assert_eq!(
            run(&mut f, deploy(Some("kube-public"), json!({}))),
            Verdict::Pass
        );
        let mut f = filter(json!({"ignoreNamespaces": ["kube-system"]}));
        assert_eq!(run(&mut f, deploy(None, json!({}))), Verdict::Pass);
        assert_eq!(run(&mut f, deploy(Some("web"), json!({}))), Verdict::Pass);
    }

    #[test]
    fn label_selector_equality_and_set_based() {
        let mut f = filter(json!({"labelSelector": "tier=frontend"}));
        assert_eq!(
            run(&mut f, deploy(Some("a"), json!({"tier": "frontend"}))),
            Verdict::Pass
        );
        assert_eq!(
            run(&mut f, deploy(Some("a"), json!({"tier": "backend"}))),
            Verdict::drop("label selector tier=frontend does not match")
        );
        let mut f = filter(json!({"labelSelector": "tier=frontend, env notin (dev), !legacy"}));
        assert_eq!(
            run(&mut f, deploy(Some("a"), json!({"tier": "frontend"}))),
            Verdict::Pass
        );
        assert_eq!(
            run(
                &mut f,
                deploy(Some("a"), json!({"tier": "frontend", "env": "dev"}))
            ),
            Verdict::drop(
                "label selector tier=frontend, env notin (dev), !legacy does not match \
                 (env notin (dev) fails)"
            )
        );
    }

    #[test]
    fn bad_selector_is_an_init_error_naming_the_problem() {
        let err = init_err(json!({"labelSelector": "env in (prod"}));
        assert!(err.starts_with("labelSelector: label selector"), "{err}");
        assert!(err.contains("unbalanced parentheses"), "{err}");
    }

    #[test]
    fn kinds_are_case_insensitive() {
        let mut f = filter(json!({"kinds": ["deployment", "StatefulSet"]}));
        assert_eq!(run(&mut f, deploy(None, json!({}))), Verdict::Pass);
        let mut f = filter(json!({"kinds": ["Pod"]}));
        assert_eq!(
            run(&mut f, deploy(None, json!({}))),
            Verdict::drop("kind Deployment is not in kinds [Pod]")
        );
    }

    #[test]
    fn changes() {
        let mut f = filter(json!({"changes": ["added", "DELETED"]}));
        let obj = deploy(Some("a"), json!({}));
        assert_eq!(
            testing::run(&mut f, &mut TestEvent::added(obj.clone())),
            Verdict::Pass
        );
        assert_eq!(
            testing::run(&mut f, &mut TestEvent::deleted(obj.clone())),
            Verdict::Pass
        );
        assert_eq!(
            testing::run(&mut f, &mut TestEvent::modified(obj.clone(), obj)),
            Verdict::drop("change modified is not in changes [added, deleted]")
        );
        assert!(init_err(json!({"changes": ["updated"]})).contains("unknown variant `updated`"));
    }

    #[test]
    fn field_equals() {
        let obj = deploy(Some("a"), json!({}));
        let mut f = filter(json!({"fields": [{"pointer": "/spec/replicas", "equals": 3}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f = filter(json!({"fields": [{"pointer": "/spec/replicas", "equals": 3.0}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f = filter(json!({"fields": [{"pointer": "/spec/replicas", "equals": 5}]}));
        assert_eq!(
            run(&mut f, obj.clone()),
            Verdict::drop("/spec/replicas is 3, want 5")
        );
        let mut f = filter(json!({"fields": [{"pointer": "/metadata/name", "equals": "api-1"}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f =
            filter(json!({"fields": [{"pointer": "/spec/selector", "equals": {"app": "api"}}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f = filter(json!({"fields": [{"pointer": "/spec/paused", "equals": true}]}));
        assert_eq!(
            run(&mut f, obj.clone()),
            Verdict::drop("/spec/paused is false, want true")
        );
        let mut f = filter(json!({"fields": [{"pointer": "/spec/nope", "equals": null}]}));
        assert_eq!(
            run(&mut f, obj.clone()),
            Verdict::drop("/spec/nope is missing, want null")
        );
        let mut f = filter(json!({"fields": [{"pointer": "/spec/nope", "equals": "x"}]}));
        assert_eq!(
            run(&mut f, obj),
            Verdict::drop("/spec/nope is missing, want \"x\"")
        );
    }

    #[test]
    fn field_exists() {
        let obj = deploy(Some("a"), json!({}));
        let mut f =
            filter(json!({"fields": [{"pointer": "/metadata/annotations/owner", "exists": true}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f = filter(json!({"fields": [{"pointer": "/spec/x", "exists": true}]}));
        assert_eq!(
            run(&mut f, obj.clone()),
            Verdict::drop("/spec/x is missing, want it to exist")
        );
        let mut f = filter(json!({"fields": [{"pointer": "/spec/x", "exists": false}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f = filter(json!({"fields": [{"pointer": "/spec/replicas", "exists": false}]}));
        assert_eq!(
            run(&mut f, obj),
            Verdict::drop("/spec/replicas exists, want it absent")
        );
    }

    #[test]
    fn field_regex() {
        let obj = deploy(Some("a"), json!({}));
        let mut f =
            filter(json!({"fields": [{"pointer": "/metadata/name", "regex": "^api-[0-9]+$"}]}));
        assert_eq!(run(&mut f, obj.clone()), Verdict::Pass);
        let mut f = filter(json!({"fields": [{"pointer": "/metadata/name", "regex": "^web-"}]}));
        assert_eq!(
            run(&mut f, obj.clone()),
            Verdict::drop("/metadata/name is \"api-1\", want a match of ^web-")
        );
        let mut f = filter(json!({"fields": [{"pointer": "/spec/replicas", "regex": "3"}]}));
        assert_eq!(
            run(&mut f, obj.clone()),
            Verdict::drop("/spec/replicas is 3, want a string matching 3")
        );
        let mut f = filter(json!({"fields": [{"pointer": "/spec/x", "regex": "."}]}));
        assert_eq!(
            run(&mut f, obj),
            Verdict::drop("/spec/x is missing, want a match of .")
        );
    }

    #[test]
    fn all_conditions_must_hold_and_first_failure_is_reported() {
        let mut f = filter(json!({
            "namespaces": ["a"], "labelSelector": "app=api", "kinds": ["Deployment"],
            "changes": ["added"],
            "fields": [{"pointer": "/spec/replicas", "equals": 3},
                       {"pointer": "/metadata/name", "regex": "^api"}]
        }));
        assert_eq!(
            run(&mut f, deploy(Some("a"), json!({"app": "api"}))),
            Verdict::Pass
        );
        assert_eq!(
            run(&mut f, deploy(Some("b"), json!({"app": "web"}))),
            Verdict::drop("namespace b is not in namespaces [a]")
        );
        assert_eq!(
            run(&mut f, deploy(Some("a"), json!({"app": "web"}))),
            Verdict::drop("label selector app=api does not match")
        );
    }

    #[test]
    fn bad_fields_are_init_errors() {
        let err = init_err(json!({"fields": [{"pointer": "/a", "regex": "("}]}));
        assert!(err.starts_with("fields[0]: invalid regex \"(\""), "{err}");
        let err = init_err(json!({"fields": [{"pointer": "a", "exists": true}]}));
        assert!(err.contains("not a JSON pointer"), "{err}");
        let err = init_err(json!({"fields": [{"pointer": "/a"}]}));
        assert!(
            err.contains("exactly one of equals, exists or regex"),
            "{err}"
        );
        let err = init_err(json!({"fields": [{"pointer": "/a", "exists": true, "equals": 1}]}));
        assert!(err.contains("exactly one"), "{err}");
        let err = init_err(json!({"fields": [{"pointer": "/a", "matches": "x"}]}));
        assert!(err.contains("unknown field `matches`"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = init_err(json!({"namespace": ["a"]}));
        assert!(err.contains("unknown field `namespace`"), "{err}");
    }

    #[test]
    fn long_values_are_cut_in_reasons() {
        let mut obj = deploy(Some("a"), json!({}));
        obj["spec"]["replicas"] = json!("x".repeat(200));
        let mut f = filter(json!({"fields": [{"pointer": "/spec/replicas", "equals": 1}]}));
        let Verdict::Drop(reason) = run(&mut f, obj) else {
            panic!("expected a drop")
        };
        assert!(reason.len() < 120 && reason.contains('…'), "{reason}");
    }
}
