//! noise: drops MODIFIED events in which nothing but noise changed, such as
//! status updates and resourceVersion bumps.
//!
//! The plugin compares the previous and the new state of the object with the
//! ignored pointers removed from both; when they are equal, the event is
//! dropped with the reason `only noise changed (/status, ...)`, naming the
//! ignored pointers whose values differed. Added and deleted events, and a
//! modified event without a previous state, always pass.
//!
//! This plugin reads both whole objects (a full parse of each), so put it
//! after cheap filters in a chain, and before `prune`: a field a plugin
//! removes or overwrites is removed or overwritten in the previous state
//! too, so no sink renders, in `old` or in a diff/patch, a value the chain
//! hid; after prune, a change to nothing but redacted values (a rotated
//! Secret) looks like no change.
//!
//! # Config
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `ignore` | list of JSON pointers | more pointers whose changes are noise |
//! | `ignoreDefaults` | bool, default `true` | also ignore the defaults: `/status`, `/metadata/resourceVersion`, `/metadata/managedFields`, `/metadata/generation` |
//!
//! With `ignoreDefaults: false`, only `ignore` counts as noise (and with an
//! empty `ignore`, only events that changed nothing at all are dropped).
//!
//! # Example
//!
//! ```yaml
//! ignore:
//!   - /metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration
//!   - /spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt
//! ignoreDefaults: true
//! ```

use herald_plugin_sdk::{Change, Event, Plugin, Verdict, pointer};
use serde::Deserialize;

/// Pointers ignored unless `ignoreDefaults: false`.
pub const DEFAULT_IGNORE: [&str; 4] = [
    "/status",
    "/metadata/resourceVersion",
    "/metadata/managedFields",
    "/metadata/generation",
];

/// The plugin's config; see the crate doc.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Extra pointers whose changes are noise. Example: `[/metadata/labels/pod-template-hash]`
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Also ignore [`DEFAULT_IGNORE`]. Example: `false`
    #[serde(default = "yes")]
    pub ignore_defaults: bool,
}

fn yes() -> bool {
    true
}

/// Drops modified events whose only changes are in ignored pointers.
#[derive(Debug)]
pub struct Noise {
    ignore: Vec<String>,
}

impl Plugin for Noise {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let mut ignore: Vec<String> = Vec::new();
        let defaults = DEFAULT_IGNORE.iter().map(|p| p.to_string());
        let wanted = config
            .ignore_defaults
            .then_some(defaults)
            .into_iter()
            .flatten()
            .chain(config.ignore);
        for p in wanted {
            if !p.starts_with('/') {
                return Err(format!(
                    "ignore: \"{p}\" is not a JSON pointer (must start with /)"
                ));
            }
            if !ignore.contains(&p) {
                ignore.push(p);
            }
        }
        Ok(Noise { ignore })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        if event.change() != Change::Modified {
            return Verdict::Pass;
        }
        // What cannot be read cannot be called noise: the event goes on.
        let (mut old, mut new) = match (event.old_object(), event.object()) {
            (Ok(Some(old)), Ok(new)) => (old, new),
            (Ok(None), _) => return Verdict::Pass,
            (Err(e), _) | (_, Err(e)) => {
                herald_plugin_sdk::warn(&format!("noise: {e}"));
                return Verdict::Pass;
            }
        };
        let changed: Vec<&str> = self
            .ignore
            .iter()
            .filter(|p| old.pointer(p) != new.pointer(p))
            .map(String::as_str)
            .collect();
        for p in &self.ignore {
            pointer::remove(&mut old, p);
            pointer::remove(&mut new, p);
        }
        if old != new {
            return Verdict::Pass;
        }
        if changed.is_empty() {
            Verdict::drop("nothing changed")
        } else {
            Verdict::drop(format!("only noise changed ({})", changed.join(", ")))
        }
    }
}

herald_plugin_sdk::export_plugin!(Noise);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::{Value, json};

    fn noise(config: Value) -> Noise {
        testing::init::<Noise>(&config.to_string()).unwrap()
    }

    fn deploy() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "api", "namespace": "web", "resourceVersion": "1",
                "generation": 1, "managedFields": [{"manager": "kubectl"}],
                "annotations": {"restartedAt": "t0"}
            },
            "spec": {"replicas": 3},
            "status": {"readyReplicas": 1}
        })
    }

    fn modified(f: impl FnOnce(&mut Value)) -> TestEvent {
        let old = deploy();
        let mut new = old.clone();
        f(&mut new);
        TestEvent::modified(old, new)
    }

    #[test]
    fn drops_status_and_metadata_noise_with_the_changed_pointers() {
        let mut n = noise(json!({}));
        let mut e = modified(|o| {
            o["status"]["readyReplicas"] = json!(3);
            o["metadata"]["resourceVersion"] = json!("2");
        });
        assert_eq!(
            testing::run(&mut n, &mut e),
            Verdict::drop("only noise changed (/status, /metadata/resourceVersion)")
        );
        let mut e = modified(|o| {
            o["metadata"]["managedFields"] = json!([]);
            o["metadata"]["generation"] = json!(2);
        });
        assert_eq!(
            testing::run(&mut n, &mut e),
            Verdict::drop("only noise changed (/metadata/managedFields, /metadata/generation)")
        );
        // A field that appears or disappears counts as a change too.
        let mut e = modified(|o| {
            o.as_object_mut().unwrap().remove("status");
        });
        assert_eq!(
            testing::run(&mut n, &mut e),
            Verdict::drop("only noise changed (/status)")
        );
    }

    #[test]
    fn a_real_change_passes_and_the_event_is_untouched() {
        let mut n = noise(json!({}));
        let mut e = modified(|o| {
            o["spec"]["replicas"] = json!(5);
            o["status"]["readyReplicas"] = json!(3);
        });
        let before = e.clone();
        assert_eq!(testing::run(&mut n, &mut e), Verdict::Pass);
        assert_eq!(e, before);
    }

    #[test]
    fn nothing_changed_is_dropped_too() {
        let mut n = noise(json!({}));
        let mut e = modified(|_| {});
        assert_eq!(
            testing::run(&mut n, &mut e),
            Verdict::drop("nothing changed")
        );
    }

    #[test]
    fn added_deleted_and_modified_without_old_pass() {
        let mut n = noise(json!({}));
        assert_eq!(
            testing::run(&mut n, &mut TestEvent::added(deploy())),
            Verdict::Pass
        );
        assert_eq!(
            testing::run(&mut n, &mut TestEvent::deleted(deploy())),
            Verdict::Pass
        );
        let mut e = TestEvent::new(Change::Modified, deploy());
        assert_eq!(testing::run(&mut n, &mut e), Verdict::Pass);
    }

    #[test]
    fn ignore_extends_the_defaults() {
        let mut n = noise(json!({"ignore": ["/metadata/annotations/restartedAt"]}));
        let mut e = modified(|o| {
            o["metadata"]["annotations"]["restartedAt"] = json!("t1");
            o["status"]["readyReplicas"] = json!(0);
        });
        assert_eq!(
            testing::run(&mut n, &mut e),
            Verdict::drop("only noise changed (/status, /metadata/annotations/restartedAt)")
        );
        // Without it, the annotation is a real change.
        let mut n = noise(json!({}));
        let mut e = modified(|o| o["metadata"]["annotations"]["restartedAt"] = json!("t1"));
        assert_eq!(testing::run(&mut n, &mut e), Verdict::Pass);
    }

    #[test]
    fn ignore_defaults_false_replaces_the_defaults() {
        let mut n = noise(json!({"ignore": ["/spec/replicas"], "ignoreDefaults": false}));
        let mut e = modified(|o| o["status"]["readyReplicas"] = json!(3));
        assert_eq!(testing::run(&mut n, &mut e), Verdict::Pass);
        let mut e = modified(|o| o["spec"]["replicas"] = json!(1));
        assert_eq!(
            testing::run(&mut n, &mut e),
            Verdict::drop("only noise changed (/spec/replicas)")
        );
    }

    #[test]
    fn escaped_pointers_work() {
        let mut n = noise(json!({"ignore": ["/metadata/annotations/a~1b"]}));
        let old = json!({"metadata": {"annotations": {"a/b": "1"}}});
        let new = json!({"metadata": {"annotations": {"a/b": "2"}}});
        assert_eq!(
            testing::run(&mut n, &mut TestEvent::modified(old, new)),
            Verdict::drop("only noise changed (/metadata/annotations/a~1b)")
        );
    }

    #[test]
    fn config_errors() {
        let err = testing::init::<Noise>(r#"{"ignore": ["status"]}"#)
            .err()
            .unwrap();
        assert!(err.contains("not a JSON pointer"), "{err}");
        let err = testing::init::<Noise>(r#"{"ignored": []}"#).err().unwrap();
        assert!(err.contains("unknown field `ignored`"), "{err}");
    }
}
