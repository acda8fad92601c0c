//! Removing what paths with `*` reach: [`Event::remove_matching`] (RFC
//! 6901 patterns, expanded in the plugin) and [`Event::remove_paths`]
//! (steps, expanded by the host in one call).

use super::{Event, Inner, wit};
use crate::EventError;
use crate::pointer::{Step, expand_keys, removal_candidates};

impl Event<'_> {
    /// Removes every value the patterns reach, where a token that is
    /// exactly `*` runs over every key of a map and every item of an array,
    /// as `prune`'s paths do; in the object and in the previous state (each
    /// expanded against its own values). Returns how many were removed from
    /// the object.
    ///
    /// # Errors
    /// As [`Event::remove`]; the expanded pointers are checked too.
    ///
    /// ```
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::added(json!({"spec": {"containers": [
    ///     {"name": "a", "env": [1]}, {"name": "b"}, {"name": "c", "env": [2]}]}}));
    /// assert_eq!(e.as_event().remove_matching(&["/spec/containers/*/env"]), Ok(2));
    /// assert_eq!(e.object["spec"]["containers"][2], json!({"name": "c"}));
    /// ```
    pub fn remove_matching<S: AsRef<str>>(&mut self, patterns: &[S]) -> Result<u32, EventError> {
        let mut all = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            crate::pointer::tokens(pattern)?;
            let raw: Vec<&str> = pattern.split('/').collect();
            let Some(star) = raw.iter().position(|t| *t == "*") else {
                crate::pointer::check_writable(pattern)?;
                all.push(pattern.to_string());
                continue;
            };
            // Walked by the keys of each map and array on the way, in each
            // state; no value is copied.
            let at = raw[..star].join("/");
            let steps: Vec<Step> = crate::pointer::tokens(&format!("/{}", raw[star..].join("/")))?
                .into_iter()
                .zip(&raw[star..])
                .map(|(token, raw)| {
                    if *raw == "*" {
                        Step::Any
                    } else {
                        Step::Key(token)
                    }
                })
                .collect();
            expand_keys(&mut |p| self.keys(p), &mut at.clone(), &steps, &mut all);
            expand_keys(&mut |p| self.keys_old(p), &mut at.clone(), &steps, &mut all);
        }
        crate::pointer::removal_order(&mut all);
        if all.is_empty() {
            return Ok(0);
        }
        self.remove(&all)
    }

    /// Removes every value one of `paths` reaches, where [`Step::Any`] runs
    /// over every key of a map and every item of an array (WIT
    /// `remove-paths`): each path is expanded against the object and
    /// against the previous state, and every pointer found is removed from
    /// both. What a path reaches of the object's identity is left alone.
    /// Returns how many were removed from the object. The host does it in
    /// one call; no key or value crosses into the plugin.
    ///
    /// ```
    /// use herald_plugin_sdk::pointer::Step;
    /// use herald_plugin_sdk::TestEvent;
    /// use serde_json::json;
    ///
    /// let mut e = TestEvent::added(json!({"metadata": {"name": "p"}, "spec": {"containers": [
    ///     {"name": "a", "env": [1]}, {"name": "b"}, {"name": "c", "env": [2]}]}}));
    /// let env = vec![Step::Key("spec".into()), Step::Key("containers".into()),
    ///                Step::Any, Step::Key("env".into())];
    /// let identity = vec![Step::Key("metadata".into()), Step::Any];
    /// assert_eq!(e.as_event().remove_paths(&[env, identity]), 2);
    /// assert_eq!(e.object["spec"]["containers"][2], json!({"name": "c"}));
    /// assert_eq!(e.object["metadata"]["name"], "p");
    /// ```
    pub fn remove_paths(&mut self, paths: &[Vec<Step>]) -> u32 {
        let host = match &self.inner {
            Inner::Host(e) => Some(*e),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Memory(_) => None,
        };
        if let Some(e) = host {
            let wit_paths: Vec<Vec<wit::Step>> = paths
                .iter()
                .map(|steps| {
                    steps
                        .iter()
                        .map(|s| match s {
                            Step::Key(k) => wit::Step::Key(k.clone()),
                            Step::Any => wit::Step::Any,
                        })
                        .collect()
                })
                .collect();
            return e.remove_paths(&wit_paths);
        }
        // In memory: what the host does.
        let mut all = Vec::new();
        for steps in paths {
            removal_candidates(&mut |p| self.keys(p), steps, &mut all);
            removal_candidates(&mut |p| self.keys_old(p), steps, &mut all);
        }
        all.retain(|p| crate::pointer::check_writable(p).is_ok());
        crate::pointer::removal_order(&mut all);
        self.remove(&all).unwrap_or(0)
    }
}
