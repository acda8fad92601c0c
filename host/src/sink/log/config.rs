//! A log sink's own fields (`type: log`), with their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sink::config::{Metadata, OldState};

/// One JSON line per notification on standard output.
///
/// ```yaml
/// type: log
/// old: full
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfig {
    /// `full`, `patch` or `none` (default).
    #[serde(default = "LogConfig::default_old")]
    pub old: OldState,
    /// Key-values put on every notification. Example: `{team: payments}`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
}

impl LogConfig {
    fn default_old() -> OldState {
        OldState::None
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            old: Self::default_old(),
            metadata: Metadata::new(),
        }
    }
}
