//! [`SourceSettings`]: source-wide knobs, with typed defaults.

use std::time::Duration;

use kube::runtime::utils::Backoff;
use kube::runtime::watcher::DefaultBackoff;
use serde::{Deserialize, Serialize};

/// Defaults, with the reason for each.
pub(super) mod defaults {
    use std::time::Duration;

    /// A real API server sends a bookmark about once a minute and ends a watch after
    /// at most its `timeoutSeconds`; five minutes of silence means the connection is
    /// dead even though TCP has not noticed.
    pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    /// How often discovery is re-run to find CRDs installed after start.
    /// Aggregated discovery makes this two requests.
    pub(crate) const DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);
    /// Objects per LIST page, kube's default: big enough that a 50k-pod list is 100
    /// requests, small enough that one page is not a memory spike.
    pub(crate) const PAGE_SIZE: u32 = 500;
}

/// Whether the first list of a watch reports its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialList {
    /// The first list fills the cache and reports nothing: objects that existed before
    /// herald started are not news. Later relists are compared with the cache as usual.
    #[default]
    Silent,
    /// The first list reports every object as added.
    Notify,
}

/// How long to wait before retrying after a failed list or watch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBackoff {
    /// First delay. Example: `500ms`
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    /// Largest delay; each failure doubles the delay up to this. Example: `30s`
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

/// Source-wide settings.
///
/// ```
/// use herald::source::{InitialList, SourceSettings};
/// let s: SourceSettings = serde_json::from_str(r#"{"initialList": "notify", "stallTimeout": "2m"}"#).unwrap();
/// assert_eq!(s.initial_list, InitialList::Notify);
/// assert_eq!(s.stall_timeout.as_secs(), 120);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SourceSettings {
    /// Whether a watch's first list reports its objects. Example: `silent`
    pub initial_list: InitialList,
    /// Restart a watch that has heard nothing from the server (no event, no bookmark,
    /// no list page) for this long while waiting on it. Example: `5m`
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// How often discovery is refreshed, resolving pending watches. Example: `1m`
    #[serde(with = "humantime_serde")]
    pub discovery_interval: Duration,
    /// Objects per LIST page. Example: `500`
    pub page_size: u32,
    /// Delays between failed requests; absent means kube's default watcher backoff
    /// (0.8 s doubling to 30 s, with jitter). Example: `{min: 100ms, max: 5s}`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<RetryBackoff>,
    /// Not config: set by herald when it keeps a state dir. A silent first list
    /// then reports its objects marked quiet, so the state records them (and a
    /// restart tells an object it saw from a new one) without notifying them.
    #[serde(skip)]
    pub record_silent_lists: bool,
    /// Not config: the key of the digests that stand for Secret values (see
    /// [`SecretData`](super::SecretData)); herald keeps it in the state dir.
    #[serde(skip)]
    pub secret_key: super::SecretKey,
    /// Not config: with a state dir, where each stream's checkpoint is; a
    /// scope that has one resumes its stream after it before its first list.
    #[serde(skip)]
    pub checkpoints: Option<super::Checkpoints>,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            initial_list: InitialList::default(),
            stall_timeout: defaults::STALL_TIMEOUT,
            discovery_interval: defaults::DISCOVERY_INTERVAL,
            page_size: defaults::PAGE_SIZE,
            backoff: None,
            record_silent_lists: false,
            secret_key: super::SecretKey::random(),
            checkpoints: None,
        }
    }
}

impl SourceSettings {
    /// A fresh backoff for one watcher stream.
    pub(crate) fn backoff(&self) -> Box<dyn Backoff> {
        match self.backoff {
            None => Box::new(DefaultBackoff::default()),
            Some(b) => Box::new(Doubling::new(b)),
        }
    }
}

/// Doubles from `min` to `max`; no jitter, as it is meant for tests and small setups.
struct Doubling {
    settings: RetryBackoff,
    next: Duration,
}

impl Doubling {
    fn new(settings: RetryBackoff) -> Self {
        Self {
            settings,
            next: settings.min,
        }
    }
}

impl Iterator for Doubling {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(self.settings.max);
        Some(now)
    }
}

impl Backoff for Doubling {
    fn reset(&mut self) {
        self.next = self.settings.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_backoff_caps_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Doubling::new(RetryBackoff {
            min: ms(10),
            max: ms(35),
        });
        let got: Vec<_> = (&mut b).take(4).collect();
        assert_eq!(got, [ms(10), ms(20), ms(35), ms(35)]);
        b.reset();
        assert_eq!(b.next(), Some(ms(10)));
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let s: SourceSettings = serde_json::from_str("{}").expect("empty is default");
        assert_eq!(s, SourceSettings::default());
        assert!(serde_json::from_str::<SourceSettings>(r#"{"stalltimeout":"1s"}"#).is_err());
        let s: SourceSettings =
            serde_json::from_str(r#"{"backoff":{"min":"10ms","max":"1s"}}"#).expect("parses");
        assert_eq!(s.backoff.map(|b| b.max), Some(Duration::from_secs(1)));
    }
}
