//! prune: removes and redacts fields of every object, so sinks never see
//! noise such as `managedFields` or secrets such as a Secret's `data`.
//!
//! # Config
//!
//! | field | default | what it does |
//! | --- | --- | --- |
//! | `remove` | `[]` | paths to delete; absent ones are skipped |
//! | `redact` | `[]` | paths whose value becomes `"<redacted>"`, where present |
//! | `secrets` | `false` | for `kind: Secret`, redact every value under `data` and `stringData` (keys stay); for every object, redact the `kubectl.kubernetes.io/last-applied-configuration` annotation |
//!
//! A path is an RFC 6901 pointer (`/metadata/managedFields`) or a dotted
//! path (`metadata.managedFields`, the watch-proxy `pruneFields` style). A
//! `*` step runs over every item of an array and every key of a map:
//! `/spec/containers/*/env` and `spec.containers.*.env` are the same path.
//! In dotted paths `\.` is a dot inside a key, `\*` a key named `*`, `\\` a
//! backslash; in pointers `~1` is `/` and `~0` is `~`. A path that does not
//! parse fails `init` with a message naming it.
//!
//! Removals run first (all in one host call), then redactions, then the
//! `secrets` preset. The plugin always passes.
//!
//! # Example
//!
//! ```yaml
//! remove: [/metadata/managedFields, status, spec.containers.*.env]
//! redact: [/spec/template/spec/containers/*/args]
//! secrets: true
//! ```
//!
//! ```
//! use herald_plugin_sdk::{TestEvent, Verdict, testing};
//! use serde_json::json;
//!
//! let prune = testing::init::<prune::Prune>(
//!     r#"{"remove": ["spec.containers.*.env"], "secrets": true}"#,
//! ).unwrap();
//! let mut secret = TestEvent::added(json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}}));
//! assert_eq!(testing::run(&prune, &mut secret), Verdict::Pass);
//! assert_eq!(secret.object["data"], json!({"password": "<redacted>"}));
//! ```

mod path;

use herald_plugin_sdk::{Event, Plugin, Verdict};
use serde::Deserialize;
use serde_json::Value;

pub use path::{Path, Segment};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// The annotation `kubectl apply` writes: a full copy of the last applied
/// object, Secret data included.
pub const LAST_APPLIED: &str =
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration";

/// The plugin's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Paths to delete; absent ones are skipped.
    /// Example: `remove: [/metadata/managedFields, spec.containers.*.env]`
    #[serde(default)]
    pub remove: Vec<String>,
    /// Paths whose value (of any type) becomes `"<redacted>"` where present.
    /// Example: `redact: [/spec/template/spec/containers/*/args]`
    #[serde(default)]
    pub redact: Vec<String>,
    /// Redact Secret `data`/`stringData` values and the last-applied
    /// annotation. Off by default so that a config naming only `remove`
    /// does exactly that. Example: `secrets: true`
    #[serde(default)]
    pub secrets: bool,
}

/// Removes and redacts fields; always passes.
#[derive(Debug)]
pub struct Prune {
    /// `remove` paths without `*`, as pointers: removed without a lookup.
    remove_fixed: Vec<String>,
    /// `remove` paths with a `*`: expanded against the object first.
    remove_wild: Vec<Path>,
    redact: Vec<Path>,
    secrets: bool,
}

fn parse_all(field: &str, texts: Vec<String>) -> Result<Vec<Path>, String> {
    texts
        .into_iter()
        .enumerate()
        .map(|(i, t)| Path::parse(&t).map_err(|why| format!("{field}[{i}]: path {t:?}: {why}")))
        .collect()
}

impl Plugin for Prune {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.remove.is_empty() && config.redact.is_empty() && !config.secrets {
            return Err("nothing to do: set remove, redact or secrets: true".into());
        }
        let mut remove_fixed = Vec::new();
        let mut remove_wild = Vec::new();
        for p in parse_all("remove", config.remove)? {
            match p.concrete() {
                Some(ptr) => remove_fixed.push(ptr),
                None => remove_wild.push(p),
            }
        }
        // Removals run one after another: order them so an array index still
        // names the same item when its turn comes.
        path::removal_order(&mut remove_fixed);
        Ok(Prune {
            remove_fixed,
            remove_wild,
            redact: parse_all("redact", config.redact)?,
            secrets: config.secrets,
        })
    }

    fn handle(&self, event: &mut Event<'_>) -> Verdict {
        self.remove(event);
        for p in &self.redact {
            redact(event, p);
        }
        if self.secrets {
            redact_secrets(event);
        }
        Verdict::Pass
    }
}

impl Prune {
    /// Every removal in one host call: fixed pointers as they are, wildcard
    /// paths expanded with one read of the value under their first `*`.
    fn remove(&self, event: &mut Event<'_>) {
        if self.remove_wild.is_empty() {
            if !self.remove_fixed.is_empty() {
                event.remove(&self.remove_fixed);
            }
            return;
        }
        let mut all = self.remove_fixed.clone();
        for p in &self.remove_wild {
            expand_into(event, p, &mut all);
        }
        path::removal_order(&mut all);
        if !all.is_empty() {
            event.remove(&all);
        }
    }
}

/// Appends the pointers a wildcard path reaches in the event's object.
fn expand_into(event: &Event<'_>, p: &Path, out: &mut Vec<String>) {
    if let Some((at, rest)) = p.split_at_wildcard()
        && let Some(value) = event.get(&at)
    {
        path::expand(&value, &mut at.clone(), rest, out);
    }
}

/// Replaces the value(s) at `p` with [`REDACTED`], only where present.
fn redact(event: &mut Event<'_>, p: &Path) {
    match p.concrete() {
        Some(ptr) => redact_at(event, &ptr),
        None => {
            let mut found = Vec::new();
            expand_into(event, p, &mut found);
            for ptr in found {
                // Expansion saw the value; skip a second look.
                let _ = event.set(&ptr, REDACTED);
            }
        }
    }
}

/// Redacts one pointer if it holds a value that is not already redacted.
fn redact_at(event: &mut Event<'_>, ptr: &str) {
    // Most redacted values are strings: `get_str` checks them without
    // copying JSON; anything else needs the full value.
    let present = match event.get_str(ptr) {
        Some(s) => s != REDACTED,
        None => event.get_json(ptr).is_some(),
    };
    if present {
        let _ = event.set(ptr, REDACTED);
    }
}

/// The `secrets` preset.
fn redact_secrets(event: &mut Event<'_>) {
    if event.kind() == "Secret" {
        for field in ["/data", "/stringData"] {
            let Some(Value::Object(map)) = event.get(field) else {
                continue;
            };
            if map.values().all(|v| v.as_str() == Some(REDACTED)) {
                continue;
            }
            // One set for the whole map, keys kept: sinks see which keys
            // changed, never the values. Written as text: building a `Map`
            // would cost more .wasm than it is worth.
            let mut masked = String::from("{");
            for (i, key) in map.keys().enumerate() {
                if i > 0 {
                    masked.push(',');
                }
                masked.push_str(&Value::from(key.as_str()).to_string());
                masked.push_str(":\"<redacted>\"");
            }
            masked.push('}');
            let _ = event.set_json(field, &masked);
        }
    }
    redact_at(event, LAST_APPLIED);
}

herald_plugin_sdk::export_plugin!(Prune);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::json;

    fn run(config: Value, object: Value) -> Value {
        let p = testing::init::<Prune>(&config.to_string()).unwrap();
        let mut e = TestEvent::added(object);
        assert_eq!(testing::run(&p, &mut e), Verdict::Pass);
        e.object
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-1",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"secret\":1}",
                    "team": "web"
                }
            },
            "spec": {"containers": [
                {"name": "a", "env": [{"name": "X", "value": "1"}], "args": ["--token=t"]},
                {"name": "b"},
                {"name": "c", "env": [], "args": ["--key=k"]}
            ]},
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn removes_present_pointers_and_ignores_absent_ones() {
        let out = run(
            json!({"remove": ["/status", "/metadata/managedFields", "/nope"]}),
            json!({"kind": "Pod", "metadata": {"name": "a", "managedFields": [{}]}, "status": {"phase": "Running"}}),
        );
        assert_eq!(out, json!({"kind": "Pod", "metadata": {"name": "a"}}));
    }

    #[test]
    fn dotted_paths_remove_the_same_as_pointers() {
        let out = run(
            json!({"remove": ["metadata.managedFields", "status"]}),
            pod(),
        );
        assert!(out.pointer("/metadata/managedFields").is_none());
        assert!(out.get("status").is_none());
        assert_eq!(out["metadata"]["name"], "web-1");
    }

    #[test]
    fn wildcards_run_over_arrays() {
        for path in ["/spec/containers/*/env", "spec.containers.*.env"] {
            let out = run(json!({"remove": [path]}), pod());
            let cs = out["spec"]["containers"].as_array().unwrap();
            assert_eq!(cs.len(), 3, "{path}");
            assert!(cs.iter().all(|c| c.get("env").is_none()), "{path}: {out}");
            assert_eq!(cs[0]["args"], json!(["--token=t"]));
        }
    }

    #[test]
    fn wildcards_run_over_maps() {
        let out = run(json!({"remove": ["/metadata/annotations/*"]}), pod());
        assert_eq!(out["metadata"]["annotations"], json!({}));
    }

    #[test]
    fn removing_every_array_item_removes_each_one_once() {
        // Without ordering, removing /0 then /1 of [a, b, c] would take a and c.
        let out = run(
            json!({"remove": ["/spec/containers/*", "/spec/containers/1/name"]}),
            pod(),
        );
        assert_eq!(out["spec"]["containers"], json!([]));
        let out = run(
            json!({"remove": ["/spec/containers/0", "/spec/containers/2"]}),
            pod(),
        );
        assert_eq!(out["spec"]["containers"][0]["name"], "b");
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_wildcard_over_a_missing_or_scalar_value_does_nothing() {
        let out = run(
            json!({"remove": ["/spec/volumes/*/secret", "/kind/*"]}),
            pod(),
        );
        assert_eq!(out, pod());
    }

    #[test]
    fn redact_replaces_present_values_of_any_type_only() {
        let out = run(
            json!({"redact": ["/spec/containers/*/args", "/spec/nodeName", "status"]}),
            pod(),
        );
        let cs = &out["spec"]["containers"];
        assert_eq!(cs[0]["args"], REDACTED);
        assert!(cs[1].get("args").is_none(), "absent stays absent: {out}");
        assert_eq!(cs[2]["args"], REDACTED);
        assert!(out["spec"].get("nodeName").is_none());
        assert_eq!(out["status"], REDACTED);
    }

    #[test]
    fn remove_runs_before_redact() {
        let out = run(json!({"remove": ["/status"], "redact": ["/status"]}), pod());
        assert!(out.get("status").is_none());
    }

    #[test]
    fn secrets_redacts_data_and_string_data_values_keeping_keys() {
        let secret = json!({
            "kind": "Secret",
            "metadata": {"name": "db", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVyMg==\"}}"
            }},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="},
            "stringData": {"token": "t"},
            "type": "Opaque"
        });
        let out = run(json!({"secrets": true}), secret.clone());
        assert_eq!(out["data"], json!({"password": REDACTED, "user": REDACTED}));
        assert_eq!(out["stringData"], json!({"token": REDACTED}));
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            REDACTED
        );
        assert_eq!(out["type"], "Opaque");
        assert!(!out.to_string().contains("aHVudGVyMg=="));

        // Off: nothing redacted.
        let out = run(json!({"remove": ["/nope"]}), secret);
        assert_eq!(out["data"]["password"], "aHVudGVyMg==");
    }

    #[test]
    fn secrets_on_other_kinds_redacts_only_the_annotation() {
        let mut cm = pod();
        cm["kind"] = json!("ConfigMap");
        cm["data"] = json!({"k": "v"});
        let out = run(json!({"secrets": true}), cm);
        assert_eq!(out["data"], json!({"k": "v"}));
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            REDACTED
        );
        assert_eq!(out["metadata"]["annotations"]["team"], "web");
        // No annotation: none is created.
        let out = run(
            json!({"secrets": true}),
            json!({"kind": "Pod", "metadata": {}}),
        );
        assert_eq!(out, json!({"kind": "Pod", "metadata": {}}));
    }

    #[test]
    fn invalid_paths_are_init_errors_naming_the_path() {
        let err = testing::init::<Prune>(r#"{"remove": ["/ok", "spec..x"]}"#)
            .err()
            .unwrap();
        assert!(
            err.contains("remove[1]") && err.contains("\"spec..x\""),
            "{err}"
        );
        let err = testing::init::<Prune>(r#"{"redact": ["/a/~9"]}"#)
            .err()
            .unwrap();
        assert!(err.contains("redact[0]") && err.contains("/a/~9"), "{err}");
    }

    #[test]
    fn empty_or_unknown_config_is_an_init_error() {
        let err = testing::init::<Prune>("{}").err().unwrap();
        assert!(err.contains("nothing to do"), "{err}");
        let err = testing::init::<Prune>(r#"{"prune": []}"#).err().unwrap();
        assert!(err.contains("unknown field `prune`"), "{err}");
    }
}
