//! prune: removes the configured JSON pointers from every object, so sinks
//! never see noise such as `managedFields` or `status`.
//!
//! Config: `{ "remove": ["/metadata/managedFields", "/status"] }`

use herald_plugin_sdk::{Event, Plugin, Verdict};
use serde::Deserialize;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// RFC 6901 pointers to remove; absent ones are ignored.
    pub remove: Vec<String>,
}

/// Removes fields; always passes.
pub struct Prune {
    remove: Vec<String>,
}

impl Plugin for Prune {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        for p in &config.remove {
            if !p.starts_with('/') {
                return Err(format!(
                    "remove: {p:?} is not a JSON pointer (must start with /)"
                ));
            }
        }
        Ok(Prune {
            remove: config.remove,
        })
    }

    fn handle(&self, event: &mut Event<'_>) -> Verdict {
        event.remove(&self.remove);
        Verdict::Pass
    }
}

herald_plugin_sdk::export_plugin!(Prune);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::json;

    #[test]
    fn removes_present_pointers_and_ignores_absent_ones() {
        let p =
            testing::init::<Prune>(r#"{"remove":["/status","/metadata/managedFields","/nope"]}"#)
                .unwrap();
        let mut e = TestEvent::added(json!({
            "kind": "Pod",
            "metadata": {"name": "a", "managedFields": [{}]},
            "status": {"phase": "Running"}
        }));
        assert_eq!(testing::run(&p, &mut e), Verdict::Pass);
        assert_eq!(e.object, json!({"kind": "Pod", "metadata": {"name": "a"}}));
    }

    #[test]
    fn rejects_non_pointers() {
        let err = testing::init::<Prune>(r#"{"remove":["status"]}"#)
            .err()
            .unwrap();
        assert!(err.contains("not a JSON pointer"), "{err}");
    }
}
