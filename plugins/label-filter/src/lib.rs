//! label-filter: passes events whose object carries every configured label
//! with the configured value, and drops the rest with a reason.
//!
//! Config: `{ "labels": { "app": "web", "tier": "frontend" } }`

use std::collections::BTreeMap;

use herald_plugin_sdk::{Event, Plugin, Verdict};
use serde::Deserialize;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Labels that must all be present with these values.
    pub labels: BTreeMap<String, String>,
}

/// Drops events that do not carry the configured labels.
pub struct LabelFilter {
    labels: BTreeMap<String, String>,
}

impl Plugin for LabelFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.labels.is_empty() {
            return Err("labels: at least one label is required".into());
        }
        Ok(LabelFilter {
            labels: config.labels,
        })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        for (key, want) in &self.labels {
            match event.label(key) {
                Some(got) if &got == want => {}
                Some(got) => return Verdict::drop(format!("label {key}={got}, want {want}")),
                None => return Verdict::drop(format!("label {key} missing, want {want}")),
            }
        }
        Verdict::Pass
    }
}

herald_plugin_sdk::export_plugin!(LabelFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::json;

    fn pod(labels: serde_json::Value) -> TestEvent {
        TestEvent::added(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "labels": labels}
        }))
    }

    #[test]
    fn passes_matching_and_drops_others_with_reason() {
        let mut f = testing::init::<LabelFilter>(r#"{"labels":{"app":"web"}}"#).unwrap();
        assert_eq!(
            testing::run(&mut f, &mut pod(json!({"app": "web"}))),
            Verdict::Pass
        );
        assert_eq!(
            testing::run(&mut f, &mut pod(json!({"app": "db"}))),
            Verdict::drop("label app=db, want web")
        );
        assert_eq!(
            testing::run(&mut f, &mut pod(json!({}))),
            Verdict::drop("label app missing, want web")
        );
    }

    #[test]
    fn bad_config_is_an_init_error_with_serde_message() {
        let err = testing::init::<LabelFilter>(r#"{"label":{"app":"web"}}"#)
            .err()
            .unwrap();
        assert!(err.contains("unknown field `label`"), "{err}");
        let err = testing::init::<LabelFilter>(r#"{"labels":{}}"#)
            .err()
            .unwrap();
        assert!(err.contains("at least one label"), "{err}");
    }
}
