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
//! A field a plugin removes or overwrites is removed or overwritten in the
//! previous state too, so no sink renders, in `old` or in a diff/patch, a
//! value the chain hid. The host does this for every `remove` and `set`;
//! prune also expands `*` paths in the previous state and redacts, with
//! [`Event::set_old`], values only the previous state has (a key the change
//! deleted), so every rule applies to the previous state as to the object.
//! `secrets` keeps each state's own keys.
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
//! let mut prune = testing::init::<prune::Prune>(
//!     r#"{"remove": ["spec.containers.*.env"], "secrets": true}"#,
//! ).unwrap();
//! let mut secret = TestEvent::added(json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}}));
//! assert_eq!(testing::run(&mut prune, &mut secret), Verdict::Pass);
//! assert_eq!(secret.object["data"], json!({"password": "<redacted>"}));
//!
//! // A rotation: the previous state is redacted too.
//! let mut rotated = TestEvent::modified(
//!     json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}}),
//!     json!({"kind": "Secret", "data": {"password": "czNjcmV0"}}),
//! );
//! testing::run(&mut prune, &mut rotated);
//! assert_eq!(rotated.old.unwrap()["data"], json!({"password": "<redacted>"}));
//! ```

mod path;

use herald_plugin_sdk::{Event, Plugin, Verdict, pointer};
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
    /// With a `*` among the `remove` paths: every `remove` path, for the
    /// host to expand and remove in one call.
    remove_paths: Vec<Vec<Segment>>,
    redact: Vec<Path>,
    secrets: bool,
}

/// Parses the paths of `field`. A path to an identity field (`/kind`,
/// `/metadata/name`, …) fails `init`: the host would refuse the change.
fn parse_all(field: &str, texts: Vec<String>) -> Result<Vec<Path>, String> {
    texts
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let p = Path::parse(&t).map_err(|why| format!("{field}[{i}]: path {t:?}: {why}"))?;
            if let Some(ptr) = p.concrete() {
                pointer::check_writable(&ptr).map_err(|e| format!("{field}[{i}]: {e}"))?;
            }
            Ok(p)
        })
        .collect()
}

impl Plugin for Prune {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.remove.is_empty() && config.redact.is_empty() && !config.secrets {
            return Err("nothing to do: set remove, redact or secrets: true".into());
        }
        let remove = parse_all("remove", config.remove)?;
        let mut remove_fixed: Vec<String> = remove.iter().filter_map(Path::concrete).collect();
        let remove_paths = if remove_fixed.len() == remove.len() {
            Vec::new()
        } else {
            remove.into_iter().map(|p| p.segments).collect()
        };
        // Removals run one after another: order them so an array index still
        // names the same item when its turn comes.
        pointer::removal_order(&mut remove_fixed);
        Ok(Prune {
            remove_fixed,
            remove_paths,
            redact: parse_all("redact", config.redact)?,
            secrets: config.secrets,
        })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
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
    /// Every removal in one host call: the fixed pointers as they are, or,
    /// with a wildcard among them, every path for the host to expand in
    /// the object and in the previous state (it removes each pointer from
    /// both, and leaves what a wildcard reaches of the identity).
    fn remove(&self, event: &mut Event<'_>) {
        if !self.remove_paths.is_empty() {
            event.remove_paths(&self.remove_paths);
        } else if !self.remove_fixed.is_empty() {
            // Checked at init: every pointer is writable.
            let _ = event.remove(&self.remove_fixed);
        }
    }
}

/// Appends the pointers a wildcard path reaches in the object to `new`, and
/// those it reaches in the previous state to `old`, walking the keys of each
/// map and array on the way (see [`pointer::expand_keys`]).
fn expand_both(event: &Event<'_>, p: &Path, new: &mut Vec<String>, old: &mut Vec<String>) {
    let Some((at, rest)) = p.split_at_wildcard() else {
        return;
    };
    pointer::expand_keys(&mut |p: &str| event.keys(p), &mut at.clone(), rest, new);
    pointer::expand_keys(&mut |p: &str| event.keys_old(p), &mut at.clone(), rest, old);
}

/// A value prune cannot read (nested past serde_json's limit) is one it
/// cannot prune: said in herald's log rather than passed over in silence.
fn unreadable(path: &str, e: &dyn std::fmt::Display) {
    herald_plugin_sdk::warn(&format!("cannot apply {path}: {e}"));
}

/// Replaces the value(s) at `p` with [`REDACTED`], only where present, in
/// the object and in the previous state alike.
fn redact(event: &mut Event<'_>, p: &Path) {
    match p.concrete() {
        Some(ptr) => redact_at(event, &ptr),
        None => {
            let (mut found, mut gone) = (Vec::new(), Vec::new());
            expand_both(event, p, &mut found, &mut gone);
            for ptr in &found {
                // Expansion saw the value; skip a second look. The host
                // redacts the previous state's value at the same place.
                let _ = event.set(ptr, REDACTED);
            }
            // What only the previous state has (an item or key the change
            // deleted) is redacted there alone.
            for ptr in gone.iter().filter(|g| !found.contains(g)) {
                let _ = event.set_old(ptr, REDACTED);
            }
        }
    }
}

/// Redacts one pointer where it holds a value that is not already redacted:
/// in the object (the host redacts the previous state's value with it), or
/// else in the previous state alone.
fn redact_at(event: &mut Event<'_>, ptr: &str) {
    // Most redacted values are strings: `get_str` checks them without
    // copying JSON; anything else needs the full value.
    let present = match event.get_string(ptr) {
        Some(s) => s != REDACTED,
        None => event.get_json(ptr).is_some(),
    };
    if present {
        let _ = event.set(ptr, REDACTED);
        return;
    }
    // The object has no value to hide (the change deleted it) or hid it
    // already; the previous state may still hold one.
    if let Some(old) = event.get_old_json(ptr)
        && old != QUOTED_REDACTED
    {
        let _ = event.set_old(ptr, REDACTED);
    }
}

/// [`REDACTED`] as JSON text.
const QUOTED_REDACTED: &str = "\"<redacted>\"";

/// The keys of `map` with every value [`REDACTED`], as JSON text. Written
/// as text: building a `Map` would cost more .wasm than it is worth.
fn masked(map: &serde_json::Map<String, Value>) -> String {
    let mut out = String::from("{");
    for (i, key) in map.keys().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(key.as_str()).to_string());
        out.push(':');
        out.push_str(QUOTED_REDACTED);
    }
    out.push('}');
    out
}

fn all_redacted(map: &serde_json::Map<String, Value>) -> bool {
    map.values().all(|v| v.as_str() == Some(REDACTED))
}

/// The `secrets` preset.
fn redact_secrets(event: &mut Event<'_>) {
    if event.kind() == "Secret" {
        for field in ["/data", "/stringData"] {
            let new = match event.get(field) {
                Ok(Some(Value::Object(map))) => Some(map),
                Ok(_) => None,
                Err(e) => {
                    unreadable(field, &e);
                    None
                }
            };
            let old = match event.get_old(field) {
                Ok(Some(Value::Object(map))) => Some(map),
                Ok(_) => None,
                Err(e) => {
                    unreadable(field, &e);
                    None
                }
            };
            // One set for the whole map, keys kept: sinks see which keys
            // exist, never the values. The host gives the previous state's
            // map the same value.
            let mut mirrored = false;
            if let Some(new) = new.as_ref().filter(|m| !all_redacted(m)) {
                let _ = event.set_json(field, &masked(new));
                mirrored = old.is_some();
            }
            // The previous state keeps its own keys (a key the change added
            // or deleted still shows up as one), each redacted.
            if let Some(old) = old {
                let stale = if mirrored {
                    new.is_some_and(|new| !old.keys().eq(new.keys()))
                } else {
                    !all_redacted(&old)
                };
                if stale {
                    let _ = event.set_old_json(field, &masked(&old));
                }
            }
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
        let mut p = testing::init::<Prune>(&config.to_string()).unwrap();
        let mut e = TestEvent::added(object);
        assert_eq!(testing::run(&mut p, &mut e), Verdict::Pass);
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

    // === the previous state: every rule applies to it as to the object ===

    /// Runs `config` on a MODIFIED event from `old` to `new`; (object, old).
    fn run_modified(config: Value, old: Value, new: Value) -> (Value, Value) {
        let mut p = testing::init::<Prune>(&config.to_string()).unwrap();
        let mut e = TestEvent::modified(old, new);
        assert_eq!(testing::run(&mut p, &mut e), Verdict::Pass);
        (e.object, e.old.expect("the previous state stays"))
    }

    /// `pod()` one step earlier: another env and args, and a fourth
    /// container the change deleted.
    fn old_pod() -> Value {
        let mut old = pod();
        old["spec"]["containers"][0]["env"] = json!([{"name": "X", "value": "0"}]);
        old["spec"]["containers"][0]["args"] = json!(["--token=old"]);
        old["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "d", "env": [{"name": "Y"}], "args": ["--key=gone"]}));
        old["spec"]["nodeName"] = json!("node-old");
        old["status"] = json!({"phase": "Pending"});
        old
    }

    #[test]
    fn remove_by_pointer_or_dotted_path_prunes_the_previous_state_too() {
        for config in [
            json!({"remove": ["/status", "/metadata/managedFields", "/spec/nodeName"]}),
            json!({"remove": ["status", "metadata.managedFields", "spec.nodeName"]}),
        ] {
            let (new, old) = run_modified(config.clone(), old_pod(), pod());
            for (state, v) in [("object", &new), ("old", &old)] {
                assert!(v.get("status").is_none(), "{config} {state}: {v}");
                assert!(v.pointer("/metadata/managedFields").is_none(), "{state}");
                assert!(
                    v.pointer("/spec/nodeName").is_none(),
                    "{state}: only old had it"
                );
            }
            assert_eq!(old["metadata"]["name"], "web-1");
        }
    }

    #[test]
    fn remove_with_wildcards_prunes_the_previous_state_too_even_where_only_it_matches() {
        let (new, old) = run_modified(
            json!({"remove": ["spec.containers.*.env"]}),
            old_pod(),
            pod(),
        );
        for v in [&new, &old] {
            let cs = v["spec"]["containers"].as_array().unwrap();
            assert!(cs.iter().all(|c| c.get("env").is_none()), "{v}");
        }
        // The deleted container's env went too, and only the env.
        assert_eq!(
            old["spec"]["containers"][3],
            json!({"name": "d", "args": ["--key=gone"]})
        );
        assert_eq!(new["spec"]["containers"].as_array().unwrap().len(), 3);

        let (new, old) = run_modified(json!({"remove": ["/spec/containers/*"]}), old_pod(), pod());
        assert_eq!(new["spec"]["containers"], json!([]));
        assert_eq!(old["spec"]["containers"], json!([]), "all four old items");
    }

    #[test]
    fn redact_by_pointer_redacts_the_previous_state_too_even_where_the_object_lost_it() {
        let (new, old) = run_modified(
            json!({"redact": ["/spec/containers/0/args", "/spec/nodeName", "/spec/absent"]}),
            old_pod(),
            pod(),
        );
        assert_eq!(new["spec"]["containers"][0]["args"], REDACTED);
        assert_eq!(old["spec"]["containers"][0]["args"], REDACTED);
        // The change deleted nodeName: the object stays without one, the
        // previous state shows it was there, not what it was.
        assert!(new["spec"].get("nodeName").is_none());
        assert_eq!(old["spec"]["nodeName"], REDACTED);
        assert!(old["spec"].get("absent").is_none(), "nothing created");
        assert!(!old.to_string().contains("--token=old") && !old.to_string().contains("node-old"));
    }

    #[test]
    fn redact_with_wildcards_redacts_the_previous_state_too_even_where_only_it_matches() {
        let (new, old) = run_modified(
            json!({"redact": ["spec.containers.*.args"]}),
            old_pod(),
            pod(),
        );
        for (i, want) in [(0, true), (1, false), (2, true)] {
            for v in [&new, &old] {
                assert_eq!(
                    v["spec"]["containers"][i].get("args").is_some(),
                    want,
                    "{i}: {v}"
                );
            }
        }
        assert_eq!(old["spec"]["containers"][0]["args"], REDACTED);
        assert_eq!(old["spec"]["containers"][2]["args"], REDACTED);
        // Only the previous state has a fourth container: redacted there.
        assert_eq!(old["spec"]["containers"][3]["args"], REDACTED);
        assert_eq!(new["spec"]["containers"].as_array().unwrap().len(), 3);
        for secret in ["--token", "--key"] {
            assert!(!old.to_string().contains(secret), "{old}");
            assert!(!new.to_string().contains(secret), "{new}");
        }
    }

    fn secret(data: Value, last_applied: Option<&str>) -> Value {
        let mut s = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "shop", "annotations": {"team": "db"}},
            "data": data,
            "stringData": {"token": "t"}
        });
        if let Some(text) = last_applied {
            s["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
                json!(text);
        }
        s
    }

    #[test]
    fn secrets_redacts_a_rotated_value_in_both_states() {
        // base64 of "hunter2-old-value" and of "s3cret-new-value".
        let (was, now) = ("aHVudGVyMi1vbGQtdmFsdWU=", "czNjcmV0LW5ldy12YWx1ZQ==");
        let (new, old) = run_modified(
            json!({"secrets": true}),
            secret(json!({"password": was, "user": "YWRtaW4="}), None),
            secret(json!({"password": now, "user": "YWRtaW4="}), None),
        );
        let masked = json!({"password": REDACTED, "user": REDACTED});
        assert_eq!(new["data"], masked);
        assert_eq!(old["data"], masked);
        assert_eq!(old["stringData"], json!({"token": REDACTED}));
        for v in [&new, &old] {
            for value in [was, now, "YWRtaW4=", "\"t\""] {
                assert!(!v.to_string().contains(value), "{value} in {v}");
            }
        }
    }

    #[test]
    fn secrets_keeps_the_previous_states_own_keys_each_redacted() {
        // The change deletes `legacy` and adds `api-key`.
        let (new, old) = run_modified(
            json!({"secrets": true}),
            secret(json!({"password": "b2xk", "legacy": "bGVnYWN5"}), None),
            secret(json!({"password": "bmV3", "api-key": "a2V5"}), None),
        );
        assert_eq!(
            new["data"],
            json!({"password": REDACTED, "api-key": REDACTED})
        );
        assert_eq!(
            old["data"],
            json!({"password": REDACTED, "legacy": REDACTED})
        );
        // The previous state had data, the object none (or already redacted).
        let (new, old) = run_modified(
            json!({"secrets": true}),
            secret(json!({"password": "b2xk"}), None),
            secret(json!({"password": REDACTED}), None),
        );
        assert_eq!(new["data"], json!({"password": REDACTED}));
        assert_eq!(old["data"], json!({"password": REDACTED}));
        let (new, old) = run_modified(
            json!({"secrets": true}),
            secret(json!({"password": "b2xk"}), None),
            gone_data(),
        );
        assert!(new.get("data").is_none());
        assert_eq!(old["data"], json!({"password": REDACTED}));
        // No previous data: none is created.
        let (_, old) = run_modified(
            json!({"secrets": true}),
            gone_data(),
            secret(json!({"password": "bmV3"}), None),
        );
        assert!(old.get("data").is_none(), "{old}");
    }

    fn gone_data() -> Value {
        let mut s = secret(json!({}), None);
        s.as_object_mut().unwrap().remove("data");
        s
    }

    #[test]
    fn secrets_redacts_the_last_applied_annotation_in_both_states() {
        let applied = r#"{"data":{"password":"b2xk"}}"#;
        // Present in both, on any kind.
        for kind in ["Secret", "ConfigMap"] {
            let mut before = secret(json!({}), Some(applied));
            let mut after = secret(json!({}), Some(r#"{"data":{"password":"bmV3"}}"#));
            before["kind"] = json!(kind);
            after["kind"] = json!(kind);
            let (new, old) = run_modified(json!({"secrets": true}), before, after);
            for v in [&new, &old] {
                assert_eq!(
                    v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
                    REDACTED,
                    "{kind}: {v}"
                );
                assert_eq!(v["metadata"]["annotations"]["team"], "db");
            }
        }
        // The change dropped the annotation: the previous state's is redacted,
        // the object gets none.
        let (new, old) = run_modified(
            json!({"secrets": true}),
            secret(json!({}), Some(applied)),
            secret(json!({}), None),
        );
        assert!(
            new["metadata"]["annotations"]
                .get("kubectl.kubernetes.io/last-applied-configuration")
                .is_none()
        );
        assert_eq!(
            old["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            REDACTED
        );
    }

    #[test]
    fn a_deleted_event_is_redacted_in_its_last_state_too() {
        let mut p =
            testing::init::<Prune>(r#"{"secrets": true, "remove": ["/metadata/annotations"]}"#)
                .unwrap();
        let mut e = TestEvent::deleted(secret(json!({"password": "b2xk"}), Some("{}")));
        assert_eq!(testing::run(&mut p, &mut e), Verdict::Pass);
        assert_eq!(e.old.as_ref(), Some(&e.object));
        assert_eq!(e.object["data"], json!({"password": REDACTED}));
        assert!(e.object["metadata"].get("annotations").is_none());
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
