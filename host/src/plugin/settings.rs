//! Per-plugin settings: config, limits, error policy, granted capabilities.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happens to a call's events when the plugin fails on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum OnError {
    /// The events go on as if the plugin were not in the chain.
    #[default]
    Pass,
    /// The events are dropped.
    Drop,
    /// The events go to this (dead-letter) sink only.
    Route(String),
}

impl std::fmt::Display for OnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnError::Pass => f.write_str("pass"),
            OnError::Drop => f.write_str("drop"),
            OnError::Route(sink) => write!(f, "route: {sink}"),
        }
    }
}

/// Extra WASI interfaces a plugin may import when its config grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    /// `wasi:clocks/*`: wall and monotonic clocks.
    Clocks,
}

/// How one plugin runs in a chain.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The plugin's config as JSON text, passed to `init`.
    pub config: String,
    /// Cap on the plugin's linear memory.
    pub memory_limit: usize,
    /// Longest a single call (`init` or one `handle` batch) may run.
    pub deadline: Duration,
    /// Fate of a failed call's events.
    pub on_error: OnError,
    /// Granted capabilities beyond the default allow-list.
    pub allow: Vec<Capability>,
}

impl PluginSettings {
    /// Default memory cap: enough for a plugin that parses large objects.
    pub(crate) const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
    /// Default deadline: far above the microseconds a plugin needs, far below
    /// what would stall the pipeline.
    pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_millis(200);
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            config: "{}".into(),
            memory_limit: Self::DEFAULT_MEMORY_LIMIT,
            deadline: Self::DEFAULT_DEADLINE,
            on_error: OnError::Pass,
            allow: Vec::new(),
        }
    }
}

/// A plugin's decision about one event, on the host side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Stop, with a reason.
    Drop(String),
    /// Send to these sinks.
    Route(Vec<String>),
}
