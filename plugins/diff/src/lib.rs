//! diff: attaches an RFC 6902 JSON Patch from the previous state of the
//! object to the new one, for sinks to render ("what changed").
//!
//! # Config
//!
//! | field | default | what it does |
//! | --- | --- | --- |
//! | `at` | `/heraldDiff` | pointer the patch is written to (outside the object's real fields) |
//! | `truncatedAt` | `at` + `Truncated` | pointer the truncation marker is written to, only when the patch was cut |
//! | `ignore` | `[/metadata/resourceVersion, /metadata/managedFields, /metadata/generation]` | pointers (`*` allowed) removed from both sides before diffing; `[]` ignores nothing |
//! | `changes` | `[modified]` | which changes get a patch: `added` (patch from `{}`), `modified`, `deleted` (patch to `{}`) |
//! | `maxBytes` | `16384` | cap on the serialized patch; whole operations are kept up to it |
//! | `secrets` | `true` | operation values under a Secret's `data`/`stringData` and the `kubectl.kubernetes.io/last-applied-configuration` annotation become `"<redacted>"` (paths stay: sinks see which keys changed) |
//! | `maskRedacted` | `true` | where the new object holds `"<redacted>"`, the old value is treated as redacted too, so a redaction is not reported as a change (the host already does this for a value a plugin `set`) |
//!
//! The patch is a JSON array of operations (`add`, `remove`, `replace`), in
//! the order they apply; `[]` when only ignored fields changed. When it is
//! longer than `maxBytes`, the longest prefix of whole operations that fits
//! is written (still a valid patch, applying the first changes), and
//! `truncatedAt` gets `{"truncated": true, "operations": N, "shown": M,
//! "bytes": B}`: N operations in all, M shown, B bytes of the whole patch.
//!
//! A field a plugin removes or overwrites is removed or overwritten in the
//! previous state too, so no sink renders, in `old` or in a diff/patch, a
//! value the chain hid. The host applies this at each call: after prune,
//! diff reads both states pruned, and a redacted value makes no operation
//! even when it changed. Put diff after prune: before it, the patch holds
//! values prune has not hidden yet (only `secrets` keeps some out).
//!
//! # Example
//!
//! ```yaml
//! at: /heraldDiff
//! ignore: [/metadata/resourceVersion, /metadata/managedFields, /metadata/generation, /status]
//! changes: [modified]
//! maxBytes: 8192
//! ```
//!
//! ```
//! use herald_plugin_sdk::{TestEvent, Verdict, testing};
//! use serde_json::json;
//!
//! let mut diff = testing::init::<diff::Diff>("{}").unwrap();
//! let mut e = TestEvent::modified(
//!     json!({"spec": {"replicas": 1}, "metadata": {"resourceVersion": "1"}}),
//!     json!({"spec": {"replicas": 3}, "metadata": {"resourceVersion": "2"}}),
//! );
//! assert_eq!(testing::run(&mut diff, &mut e), Verdict::Pass);
//! assert_eq!(
//!     e.object["heraldDiff"],
//!     json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])
//! );
//! ```

mod patch;

use herald_plugin_sdk::{Change, Event, Plugin, Verdict};
use serde::Deserialize;
use serde_json::{Map, Value};

/// What a redacted value is replaced with (the same text prune writes).
pub const REDACTED: &str = "<redacted>";

/// Default `at`: a top-level field no Kubernetes object has.
pub const DEFAULT_AT: &str = "/heraldDiff";

/// Default `maxBytes`: big enough for a typical rollout, small enough for a
/// Slack message or a webhook body.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024;

/// Fields that change on every write and mean nothing to a reader.
pub const DEFAULT_IGNORE: [&str; 3] = [
    "/metadata/resourceVersion",
    "/metadata/managedFields",
    "/metadata/generation",
];

/// Values `secrets` hides, as pointers with `*`.
const SECRET_PATHS: [&str; 2] = ["/data/*", "/stringData/*"];
const LAST_APPLIED: &str =
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration";

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Where the patch goes. Example: `at: /heraldDiff`
    #[serde(default = "default_at")]
    pub at: String,
    /// Where the truncation marker goes. Example: `truncatedAt: /heraldDiffTruncated`
    #[serde(default)]
    pub truncated_at: Option<String>,
    /// Pointers removed from both sides first. Example: `ignore: [/status]`
    #[serde(default = "default_ignore")]
    pub ignore: Vec<String>,
    /// Changes that get a patch. Example: `changes: [added, modified]`
    #[serde(default = "default_changes")]
    pub changes: Vec<String>,
    /// Cap on the serialized patch. Example: `maxBytes: 8192`
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Redact Secret data and the last-applied annotation in operation
    /// values. Example: `secrets: false`
    #[serde(default = "yes")]
    pub secrets: bool,
    /// Treat old values as redacted where the new object is. Example:
    /// `maskRedacted: false`
    #[serde(default = "yes")]
    pub mask_redacted: bool,
}

fn default_at() -> String {
    DEFAULT_AT.into()
}
fn default_ignore() -> Vec<String> {
    DEFAULT_IGNORE.map(String::from).to_vec()
}
fn default_changes() -> Vec<String> {
    vec!["modified".into()]
}
fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}
fn yes() -> bool {
    true
}

/// A pointer split into tokens; `*` matches any key or index.
type Pattern = Vec<String>;

/// Attaches the patch; always passes.
#[derive(Debug)]
pub struct Diff {
    at: String,
    truncated_at: String,
    ignore: Vec<Pattern>,
    changes: Vec<Change>,
    max_bytes: usize,
    mask_redacted: bool,
    /// Values hidden for every kind (`secrets`).
    hide: Vec<Pattern>,
    /// Values hidden for Secrets (`secrets`).
    hide_secret: Vec<Pattern>,
}

/// Parses an RFC 6901 pointer into unescaped tokens.
fn parse_pointer(field: &str, text: &str, wildcards: bool) -> Result<Pattern, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "{field}: {text:?} is not a JSON pointer (must start with /)"
        ));
    }
    let split = herald_plugin_sdk::pointer::split(text).map_err(|e| format!("{field}: {e}"))?;
    let mut tokens = Vec::new();
    for t in split {
        let t = t.map_err(|_| format!("{field}: {text:?}: `~` must be followed by 0 or 1"))?;
        if !wildcards && t == "*" {
            return Err(format!("{field}: {text:?}: `*` is not allowed here"));
        }
        tokens.push(t.into_owned());
    }
    Ok(tokens)
}

impl Plugin for Diff {
    type Config = Config;

    fn new(c: Config) -> Result<Self, String> {
        let truncated_at = c
            .truncated_at
            .unwrap_or_else(|| format!("{}Truncated", c.at));
        let at_tokens = parse_pointer("at", &c.at, false)?;
        let marker_tokens = parse_pointer("truncatedAt", &truncated_at, false)?;
        if truncated_at == c.at {
            return Err("truncatedAt: must differ from at".into());
        }
        let changes = c
            .changes
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Change::from_name(t).ok_or_else(|| {
                    format!("changes[{i}]: {t:?} is not a change (added, modified, deleted)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if changes.is_empty() {
            return Err("changes: name at least one of added, modified, deleted".into());
        }
        let mut ignore = c
            .ignore
            .iter()
            .enumerate()
            .map(|(i, p)| parse_pointer(&format!("ignore[{i}]"), p, true))
            .collect::<Result<Vec<_>, _>>()?;
        let hide = vec![parse_pointer("", LAST_APPLIED, false)?];
        let mut hide_secret = hide.clone();
        for p in SECRET_PATHS {
            hide_secret.push(parse_pointer("", p, true)?);
        }
        // Our own output (from an earlier diff, or written before the old
        // state was taken) is never part of the change.
        ignore.push(at_tokens);
        ignore.push(marker_tokens);
        Ok(Diff {
            at: c.at,
            truncated_at,
            ignore,
            changes,
            max_bytes: c.max_bytes,
            mask_redacted: c.mask_redacted,
            hide: if c.secrets { hide } else { vec![] },
            hide_secret: if c.secrets { hide_secret } else { vec![] },
        })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        let change = event.change();
        if !self.changes.contains(&change) {
            return Verdict::Pass;
        }
        let object = match event.object() {
            Ok(o) => o,
            Err(e) => return unreadable(&e),
        };
        let (mut old, mut new) = match change {
            Change::Added => (Value::Object(Map::new()), object),
            Change::Deleted => (object, Value::Object(Map::new())),
            Change::Modified => match event.old_object() {
                Ok(Some(old)) => (old, object),
                Ok(None) => return Verdict::Pass,
                Err(e) => return unreadable(&e),
            },
        };
        let is_secret = old.get("kind").and_then(Value::as_str) == Some("Secret")
            || new.get("kind").and_then(Value::as_str) == Some("Secret");
        let ops = self.patch(&mut old, &mut new, is_secret);
        let (json, marker) = cap(&ops, self.max_bytes);
        if let Err(e) = event.set_json(&self.at, &json) {
            herald_plugin_sdk::warn(&format!("diff: cannot write the patch at {}: {e}", self.at));
            return Verdict::Pass;
        }
        if let Some(marker) = marker {
            let _ = event.set_json(&self.truncated_at, &marker.to_json());
        }
        Verdict::Pass
    }
}

/// An object diff cannot read (nested past serde_json's limit) gets no
/// patch; said in herald's log rather than in silence.
fn unreadable(e: &herald_plugin_sdk::EventError) -> Verdict {
    herald_plugin_sdk::warn(&format!("diff: no patch: {e}"));
    Verdict::Pass
}

impl Diff {
    /// The patch from `old` to `new` after ignoring, masking and hiding, as
    /// JSON text per operation.
    fn patch(&self, old: &mut Value, new: &mut Value, is_secret: bool) -> Vec<String> {
        for p in &self.ignore {
            remove_pattern(old, p);
            remove_pattern(new, p);
        }
        if self.mask_redacted {
            mask(old, new);
        }
        let hide = if is_secret {
            &self.hide_secret
        } else {
            &self.hide
        };
        for p in hide {
            hide_pattern(Some(old), new, p);
        }
        let mut ops = Vec::new();
        patch::diff(old, new, &mut String::new(), &mut ops);
        ops
    }
}

fn matches(token: &str, pattern: &str) -> bool {
    pattern == "*" || token == pattern
}

fn matches_index(i: usize, pattern: &str) -> bool {
    pattern == "*" || (pattern.parse() == Ok(i) && (pattern == "0" || !pattern.starts_with('0')))
}

/// Removes every value `pattern` reaches in `v`.
fn remove_pattern(v: &mut Value, pattern: &[String]) {
    let Some((first, rest)) = pattern.split_first() else {
        return;
    };
    match v {
        Value::Object(map) if rest.is_empty() => {
            if first == "*" {
                map.clear();
            } else {
                map.remove(first);
            }
        }
        Value::Array(items) if rest.is_empty() => {
            if first == "*" {
                items.clear();
            } else if let Some(i) = first.parse::<usize>().ok().filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if matches(k, first) {
                    remove_pattern(child, rest);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                if matches_index(i, first) {
                    remove_pattern(child, rest);
                }
            }
        }
        _ => {}
    }
}

/// Where `new` holds [`REDACTED`] and `old` has a value, makes the old value
/// [`REDACTED`] too.
fn mask(old: &mut Value, new: &Value) {
    match (old, new) {
        (old, Value::String(s)) if s == REDACTED => *old = Value::from(REDACTED),
        (Value::Object(o), Value::Object(n)) => {
            for (k, nv) in n {
                if let Some(ov) = o.get_mut(k) {
                    mask(ov, nv);
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            for (ov, nv) in o.iter_mut().zip(n) {
                mask(ov, nv);
            }
        }
        _ => {}
    }
}

/// Hides the values `pattern` reaches in `new` before diffing, so no
/// operation carries them, while a changed value still shows up as a
/// change: each becomes [`REDACTED`]; the old value at the same place
/// becomes [`REDACTED`] too if it was equal, `null` if it differed.
fn hide_pattern(old: Option<&mut Value>, new: &mut Value, pattern: &[String]) {
    let Some((first, rest)) = pattern.split_first() else {
        if let Some(old) = old {
            *old = if *old == *new {
                Value::from(REDACTED)
            } else {
                Value::Null
            };
        }
        *new = Value::from(REDACTED);
        return;
    };
    match (new, old) {
        (Value::Object(n), old) => {
            let mut old = match old {
                Some(Value::Object(o)) => Some(o),
                _ => None,
            };
            for (k, child) in n.iter_mut() {
                if matches(k, first) {
                    let o = old.as_mut().and_then(|o| o.get_mut(k));
                    hide_pattern(o, child, rest);
                }
            }
        }
        (Value::Array(n), old) => {
            let mut old = match old {
                Some(Value::Array(o)) => Some(o),
                _ => None,
            };
            for (i, child) in n.iter_mut().enumerate() {
                if matches_index(i, first) {
                    let o = old.as_mut().and_then(|o| o.get_mut(i));
                    hide_pattern(o, child, rest);
                }
            }
        }
        _ => {}
    }
}

/// The truncation marker.
#[derive(Debug, PartialEq, Eq)]
pub struct Truncated {
    /// Always `true`, so `if marker.truncated` reads naturally in templates.
    pub truncated: bool,
    /// Operations in the whole patch.
    pub operations: usize,
    /// Operations written.
    pub shown: usize,
    /// Bytes of the whole serialized patch.
    pub bytes: usize,
}

impl Truncated {
    /// As JSON text (by hand: a serde derive costs .wasm for four numbers).
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"truncated":{},"operations":{},"shown":{},"bytes":{}}}"#,
            self.truncated, self.operations, self.shown, self.bytes
        )
    }
}

/// Serializes `ops` as a JSON array of at most `max` bytes of whole
/// operations; the marker says what was cut, if anything.
fn cap(parts: &[String], max: usize) -> (String, Option<Truncated>) {
    // `[` + parts joined by `,` + `]`
    let total = 2 + parts.iter().map(String::len).sum::<usize>() + parts.len().saturating_sub(1);
    let mut out = String::from("[");
    let mut shown = 0;
    for part in parts {
        let comma = usize::from(shown > 0);
        if out.len() + comma + part.len() + 1 > max && total > max {
            break;
        }
        if comma == 1 {
            out.push(',');
        }
        out.push_str(part);
        shown += 1;
    }
    out.push(']');
    let marker = (shown < parts.len()).then_some(Truncated {
        truncated: true,
        operations: parts.len(),
        shown,
        bytes: total,
    });
    (out, marker)
}

herald_plugin_sdk::export_plugin!(Diff);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::json;

    fn init(config: Value) -> Diff {
        testing::init::<Diff>(&config.to_string()).unwrap()
    }

    fn run(d: &mut Diff, mut e: TestEvent) -> Value {
        assert_eq!(testing::run(d, &mut e), Verdict::Pass);
        e.object
    }

    fn deploy(replicas: u32, image: &str, rv: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "resourceVersion": rv,
                "generation": replicas,
                "managedFields": [{"manager": rv}]
            },
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": "web", "image": image}]}}
            },
            "status": {"observedGeneration": replicas}
        })
    }

    #[test]
    fn modified_gets_a_patch_without_the_default_ignored_fields() {
        let mut d = init(json!({}));
        let out = run(
            &mut d,
            TestEvent::modified(deploy(1, "web:1", "10"), deploy(2, "web:2", "11")),
        );
        assert_eq!(
            out["heraldDiff"],
            json!([
                {"op": "replace", "path": "/spec/replicas", "value": 2},
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "web:2"},
                {"op": "replace", "path": "/status/observedGeneration", "value": 2}
            ])
        );
        assert!(out.get("heraldDiffTruncated").is_none());
        // The object's real fields are untouched.
        assert_eq!(out["metadata"]["resourceVersion"], "11");
    }

    #[test]
    fn the_patch_applies_old_to_new() {
        let mut d = init(json!({"ignore": []}));
        let old = deploy(1, "web:1", "10");
        let new = deploy(3, "web:3", "12");
        let out = run(&mut d, TestEvent::modified(old.clone(), new.clone()));
        let patch: json_patch::Patch = serde_json::from_value(out["heraldDiff"].clone()).unwrap();
        let mut applied = old;
        json_patch::patch(&mut applied, &patch).unwrap();
        assert_eq!(applied, new);
    }

    #[test]
    fn only_ignored_changes_give_an_empty_patch() {
        let mut d = init(json!({}));
        let out = run(
            &mut d,
            TestEvent::modified(deploy(1, "a", "1"), {
                let mut v = deploy(1, "a", "2");
                v["metadata"]["generation"] = json!(9);
                v
            }),
        );
        assert_eq!(out["heraldDiff"], json!([]));
    }

    #[test]
    fn ignore_is_configurable_and_takes_wildcards() {
        let mut d = init(json!({"ignore": ["/status", "/spec/template/spec/containers/*/image"]}));
        let out = run(
            &mut d,
            TestEvent::modified(deploy(1, "web:1", "10"), deploy(2, "web:2", "11")),
        );
        // resourceVersion is no longer ignored, the image and status are.
        assert_eq!(
            out["heraldDiff"],
            json!([
                {"op": "replace", "path": "/metadata/generation", "value": 2},
                {"op": "replace", "path": "/metadata/managedFields/0/manager", "value": "11"},
                {"op": "replace", "path": "/metadata/resourceVersion", "value": "11"},
                {"op": "replace", "path": "/spec/replicas", "value": 2}
            ])
        );
    }

    #[test]
    fn at_and_truncated_at_are_configurable() {
        let mut d = init(json!({"at": "/x/patch", "truncatedAt": "/x/cut", "maxBytes": 10}));
        let out = run(
            &mut d,
            TestEvent::modified(deploy(1, "a", "1"), deploy(2, "b", "2")),
        );
        assert!(out.get("heraldDiff").is_none());
        assert_eq!(out["x"]["patch"], json!([]));
        assert_eq!(out["x"]["cut"]["truncated"], true);
    }

    #[test]
    fn added_and_deleted_get_no_patch_unless_configured() {
        let mut d = init(json!({}));
        let out = run(&mut d, TestEvent::added(deploy(1, "a", "1")));
        assert!(out.get("heraldDiff").is_none());
        let out = run(&mut d, TestEvent::deleted(deploy(1, "a", "1")));
        assert!(out.get("heraldDiff").is_none());

        let mut d = init(
            json!({"changes": ["added", "deleted"], "ignore": ["/metadata", "/spec", "/status"]}),
        );
        let out = run(&mut d, TestEvent::added(json!({"kind": "Pod", "spec": {}})));
        assert_eq!(
            out["heraldDiff"],
            json!([{"op": "add", "path": "/kind", "value": "Pod"}])
        );
        let out = run(&mut d, TestEvent::deleted(json!({"kind": "Pod"})));
        assert_eq!(
            out["heraldDiff"],
            json!([{"op": "remove", "path": "/kind"}])
        );
        // Modified is now off.
        let out = run(
            &mut d,
            TestEvent::modified(json!({"kind": "A"}), json!({"kind": "B"})),
        );
        assert!(out.get("heraldDiff").is_none());
    }

    #[test]
    fn a_big_patch_keeps_whole_operations_up_to_the_cap_and_marks_the_cut() {
        let old = json!({"a": 0, "b": 0, "c": 0});
        let new = json!({"a": 1, "b": 2, "c": 3});
        let one = r#"{"op":"replace","path":"/a","value":1}"#.len();
        // Room for two operations: "[" + op + "," + op + "]".
        let mut d = init(json!({"maxBytes": 2 * one + 3}));
        let out = run(&mut d, TestEvent::modified(old.clone(), new.clone()));
        assert_eq!(
            out["heraldDiff"],
            json!([
                {"op": "replace", "path": "/a", "value": 1},
                {"op": "replace", "path": "/b", "value": 2}
            ])
        );
        assert_eq!(
            out["heraldDiffTruncated"],
            json!({"truncated": true, "operations": 3, "shown": 2, "bytes": 3 * one + 4})
        );
        assert!(out["heraldDiff"].to_string().len() <= 2 * one + 3);

        // Exactly the full size: nothing cut, no marker.
        let mut d = init(json!({"maxBytes": 3 * one + 4}));
        let out = run(&mut d, TestEvent::modified(old, new));
        assert_eq!(out["heraldDiff"].as_array().unwrap().len(), 3);
        assert!(out.get("heraldDiffTruncated").is_none());
    }

    #[test]
    fn secrets_hides_values_but_shows_which_keys_changed() {
        let secret = |pw: &str, extra: bool| {
            let mut v = json!({
                "kind": "Secret",
                "metadata": {"name": "db"},
                "data": {"password": pw, "user": "YWRtaW4="}
            });
            if extra {
                v["data"]["token"] = json!("dG9r");
                v["stringData"] = json!({"plain": "p"});
            }
            v
        };
        let mut d = init(json!({}));
        let out = run(
            &mut d,
            TestEvent::modified(secret("b2xk", false), secret("bmV3", true)),
        );
        assert_eq!(
            out["heraldDiff"],
            json!([
                {"op": "replace", "path": "/data/password", "value": REDACTED},
                {"op": "add", "path": "/data/token", "value": REDACTED},
                {"op": "add", "path": "/stringData", "value": {"plain": REDACTED}}
            ])
        );

        let mut d = init(json!({"secrets": false}));
        let out = run(
            &mut d,
            TestEvent::modified(secret("b2xk", false), secret("bmV3", false)),
        );
        assert_eq!(
            out["heraldDiff"],
            json!([{"op": "replace", "path": "/data/password", "value": "bmV3"}])
        );
    }

    #[test]
    fn secrets_hides_the_last_applied_annotation_of_any_kind() {
        let cm = |v: &str| {
            json!({"kind": "ConfigMap", "metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": v
            }}, "data": {"k": v}})
        };
        let mut d = init(json!({}));
        let out = run(&mut d, TestEvent::modified(cm("1"), cm("2")));
        assert_eq!(
            out["heraldDiff"],
            json!([
                {"op": "replace", "path": "/data/k", "value": "2"},
                {"op": "replace", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration", "value": REDACTED}
            ])
        );
        // Added as part of a bigger value: only the annotation is hidden.
        let out = run(
            &mut d,
            TestEvent::modified(json!({"kind": "ConfigMap", "metadata": {}}), cm("2")),
        );
        assert_eq!(
            out["heraldDiff"][1],
            json!({"op": "add", "path": "/metadata/annotations", "value": {
                "kubectl.kubernetes.io/last-applied-configuration": REDACTED
            }})
        );
    }

    #[test]
    fn mask_redacted_hides_redactions_made_earlier_in_the_chain() {
        let old = json!({"kind": "Secret", "data": {"a": "MQ==", "b": "Mg=="}, "spec": {"x": 1}});
        let new = json!({"kind": "Secret", "data": {"a": REDACTED, "b": REDACTED, "c": REDACTED}, "spec": {"x": 2}});
        let mut d = init(json!({}));
        let out = run(&mut d, TestEvent::modified(old.clone(), new.clone()));
        assert_eq!(
            out["heraldDiff"],
            json!([
                {"op": "add", "path": "/data/c", "value": REDACTED},
                {"op": "replace", "path": "/spec/x", "value": 2}
            ])
        );
        let mut d = init(json!({"maskRedacted": false}));
        let out = run(&mut d, TestEvent::modified(old, new));
        assert_eq!(out["heraldDiff"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn an_earlier_patch_is_not_part_of_the_change() {
        let mut d = init(json!({}));
        let mut new = json!({"a": 2});
        new["heraldDiff"] = json!(["stale"]);
        let out = run(&mut d, TestEvent::modified(json!({"a": 1}), new));
        assert_eq!(
            out["heraldDiff"],
            json!([{"op": "replace", "path": "/a", "value": 2}])
        );
    }

    #[test]
    fn bad_config_is_an_init_error_naming_the_field() {
        for (config, want) in [
            (
                json!({"at": "heraldDiff"}),
                "at: \"heraldDiff\" is not a JSON pointer",
            ),
            (json!({"at": "/a/*"}), "`*` is not allowed"),
            (json!({"ignore": ["/ok", "/a/~x"]}), "ignore[1]"),
            (json!({"changes": []}), "changes:"),
            (
                json!({"changes": ["updated"]}),
                "changes[0]: \"updated\" is not a change",
            ),
            (
                json!({"at": "/a", "truncatedAt": "/a"}),
                "truncatedAt: must differ",
            ),
            (json!({"max": 1}), "unknown field `max`"),
        ] {
            let err = testing::init::<Diff>(&config.to_string()).err().unwrap();
            assert!(err.contains(want), "{config}: {err}");
        }
    }
}
