//! [`DedupSettings`]: the `dedup:` section of the config, with typed defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::hash::ObjectHasher;

/// Defaults, with the reason for each.
pub(super) mod defaults {
    use std::time::Duration;

    /// An hour: well above the usual resync periods (kubewatch and botkube resync
    /// every 30 minutes), so an object that is only re-seen by resyncs stays known.
    pub(crate) const TTL: Duration = Duration::from_secs(60 * 60);
    /// A million objects, more than a large cluster has of the kinds people watch.
    /// A bound, not a reservation: the cache takes about 410 bytes per uid it
    /// holds (BENCHMARKS.md), so 40 MB at 100k objects, 400 MB at a million.
    pub(crate) const CAPACITY: u64 = 1_000_000;
}

/// Fields left out of the hash whatever the config says: they change on every
/// write without the object changing (`resourceVersion`) or record who wrote
/// what and when (`managedFields`). `generation` is kept: it changes only with
/// the spec, so it never changes alone.
pub(super) const ALWAYS_EXCLUDED: [&str; 2] =
    ["/metadata/resourceVersion", "/metadata/managedFields"];

/// Settings of the emit dedup stage (the `dedup:` config section).
///
/// ```
/// use herald::dedup::DedupSettings;
/// let s: DedupSettings = serde_json::from_str(
///     r#"{"ttl": "2h", "exclude": ["/status/conditions/*/lastHeartbeatTime"]}"#,
/// ).unwrap();
/// assert_eq!(s.ttl.as_secs(), 7200);
/// assert_eq!(s.capacity, 1_000_000);
/// assert!(s.hasher().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DedupSettings {
    /// A uid not observed (emitted or dropped) for this long is forgotten; its
    /// next change is emitted even if it equals the last one. Keep it above the
    /// resync period. Example: `1h`
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Most uids remembered; past it the least useful are forgotten (same
    /// consequence as `ttl`). Example: `1000000`
    pub capacity: u64,
    /// RFC 6901 pointers to leave out of the comparison, in addition to
    /// [`ALWAYS_EXCLUDED`]; a `*` segment matches every array item and map key.
    /// Changes only to these fields are dropped. Example:
    /// `["/status/conditions/*/lastHeartbeatTime"]`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl Default for DedupSettings {
    fn default() -> Self {
        DedupSettings {
            ttl: defaults::TTL,
            capacity: defaults::CAPACITY,
            exclude: Vec::new(),
        }
    }
}

impl DedupSettings {
    /// The hasher these settings describe.
    ///
    /// # Errors
    ///
    /// The first pointer of `exclude` that is not an RFC 6901 pointer.
    pub fn hasher(&self) -> Result<ObjectHasher, SettingsError> {
        ObjectHasher::new(&self.exclude)
    }
}

/// An invalid `dedup:` setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A pointer of `exclude` does not parse.
    #[error("dedup.exclude: {pointer:?} is not a JSON pointer: {reason}")]
    Pointer {
        /// The pointer as written.
        pointer: String,
        /// Why it does not parse.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let s: DedupSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, DedupSettings::default());
        let err = serde_json::from_str::<DedupSettings>(r#"{"ttl": "1h", "tll": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tll"), "{err}");
        let s: DedupSettings = serde_yaml_ng::from_str("ttl: 90m\ncapacity: 10\n").unwrap();
        assert_eq!(s.ttl, Duration::from_secs(90 * 60));
        assert_eq!(s.capacity, 10);
    }

    #[test]
    fn bad_pointer_is_named() {
        let s = DedupSettings {
            exclude: vec!["status".into()],
            ..DedupSettings::default()
        };
        let err = s.hasher().unwrap_err().to_string();
        assert!(err.contains("\"status\""), "{err}");
        let s = DedupSettings {
            exclude: vec!["/a~2".into()],
            ..DedupSettings::default()
        };
        assert!(s.hasher().is_err());
    }
}
