//! The `sinks:` section of the config: each entry is what every sink has
//! ([`CommonConfig`]: name, namespaces, dead letter, queue, retries) beside
//! what its `type` has ([`SinkKind`], each type's config in its folder).
//!
//! A field of another type is an error that says which types have it, and
//! an unknown field is an error, as everywhere in herald's config. serde's
//! `deny_unknown_fields` does not work beside `flatten`, so an entry is read
//! as a map first, its keys checked against the fields of its type
//! (`serde_introspect`, from the structs themselves), then split.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_aux::serde_introspection::serde_introspect;
use serde_json::{Map, Value};

pub(crate) use super::batch::config::BatchConfig;
pub(crate) use super::endpoint::{AuthConfig, SigningConfig, TlsConfig};
pub(super) use super::endpoint::{default_timeout, secret_shape, validate_http, validate_url};
pub(crate) use super::error::{ConfigError, SinksError};
pub use super::log::config::LogConfig;
pub(crate) use super::nats::config::NatsConfig;
pub(crate) use super::slack::config::SlackConfig;
pub(crate) use super::webhook::config::WebhookConfig;

/// What a sink is: the `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    /// One HTTP POST per notification.
    Webhook,
    /// Slack Incoming Webhook, Block Kit messages.
    Slack,
    /// Batches of notifications per HTTP POST.
    Batch,
    /// One JSON line per notification on standard output.
    Log,
    /// NATS JetStream, acknowledged publishes.
    Nats,
}

impl SinkType {
    /// Every type, in the order errors list them.
    pub const ALL: [SinkType; 5] = [
        SinkType::Webhook,
        SinkType::Slack,
        SinkType::Batch,
        SinkType::Log,
        SinkType::Nats,
    ];

    /// The name the config uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkType::Webhook => "webhook",
            SinkType::Slack => "slack",
            SinkType::Batch => "batch",
            SinkType::Log => "log",
            SinkType::Nats => "nats",
        }
    }

    /// The fields of this type's own config.
    fn fields(self) -> &'static [&'static str] {
        match self {
            SinkType::Webhook => serde_introspect::<WebhookConfig>(),
            SinkType::Slack => serde_introspect::<SlackConfig>(),
            SinkType::Batch => serde_introspect::<BatchConfig>(),
            SinkType::Log => serde_introspect::<LogConfig>(),
            SinkType::Nats => serde_introspect::<NatsConfig>(),
        }
    }
}

impl std::fmt::Display for SinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a notification carries the previous state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OldState {
    /// The whole previous object as `old`.
    Full,
    /// A JSON Patch (RFC 6902) from the previous state to this one as `patch`.
    Patch,
    /// Nothing.
    None,
}

/// What happens when a sink's queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WhenFull {
    /// Wait for room: the pipeline slows down (and with it every sink).
    #[default]
    Block,
    /// Write the notification to the durable outbox (needs `stateDir`).
    Spill,
}

/// The bounded queue in front of a sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct QueueConfig {
    /// Notifications the queue holds. Default: 10000
    #[serde(default = "QueueConfig::default_capacity")]
    pub capacity: usize,
    /// `block` (default) or `spill`.
    #[serde(default)]
    pub when_full: WhenFull,
}

impl QueueConfig {
    fn default_capacity() -> usize {
        10_000
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: Self::default_capacity(),
            when_full: WhenFull::Block,
        }
    }
}

/// Retries: exponential backoff with jitter, until `maxAge` after the first
/// attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RetryConfig {
    /// First wait. Default: 500ms
    #[serde(default = "RetryConfig::default_initial", with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default: 30s
    #[serde(default = "RetryConfig::default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Give up (dead letter) this long after the first attempt. Default: 1h
    #[serde(default = "RetryConfig::default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
}

impl RetryConfig {
    fn default_initial() -> Duration {
        Duration::from_millis(500)
    }
    fn default_max_backoff() -> Duration {
        Duration::from_secs(30)
    }
    fn default_max_age() -> Duration {
        Duration::from_secs(3600)
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Self::default_initial(),
            max_backoff: Self::default_max_backoff(),
            max_age: Self::default_max_age(),
        }
    }
}

/// What every sink has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CommonConfig {
    /// Unique name; watches and route verdicts name sinks by it.
    pub name: String,
    /// Only notifications of objects in these namespaces (cluster-scoped
    /// objects always pass). Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Where failed notifications go: another sink's name. Default: the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// The queue in front of the sink.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Retries.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// What a sink of one type has besides [`CommonConfig`], by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum SinkKind {
    /// One HTTP POST per notification.
    Webhook(WebhookConfig),
    /// Slack Incoming Webhook, Block Kit messages.
    Slack(SlackConfig),
    /// Batches of notifications per HTTP POST.
    Batch(BatchConfig),
    /// One JSON line per notification on standard output.
    Log(LogConfig),
    /// NATS JetStream.
    Nats(NatsConfig),
}

impl SinkKind {
    /// The `type`.
    pub(crate) fn sink_type(&self) -> SinkType {
        match self {
            SinkKind::Webhook(_) => SinkType::Webhook,
            SinkKind::Slack(_) => SinkType::Slack,
            SinkKind::Batch(_) => SinkType::Batch,
            SinkKind::Log(_) => SinkType::Log,
            SinkKind::Nats(_) => SinkType::Nats,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            SinkKind::Webhook(c) => c.validate(),
            SinkKind::Slack(c) => c.validate(),
            SinkKind::Batch(c) => c.validate(),
            SinkKind::Log(_) => Ok(()),
            SinkKind::Nats(c) => c.validate(),
        }
    }
}

/// One sink.
///
/// ```yaml
/// - name: audit
///   type: webhook
///   url: https://audit.example.com/k8s
///   format: cloudevents
///   mode: structured
///   signing: { secrets: [ { env: AUDIT_SECRET } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkConfig {
    /// What every sink has.
    #[serde(flatten)]
    pub(crate) common: CommonConfig,
    /// What its type has.
    #[serde(flatten)]
    pub(crate) kind: SinkKind,
}

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        SinkConfig::from_map(map).map_err(D::Error::custom)
    }
}

/// Reads `T` from `map`; an error names the field path inside it.
fn part<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, String> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

impl SinkConfig {
    /// A log sink named `name`, all defaults.
    pub fn log(name: &str) -> Self {
        SinkConfig {
            common: CommonConfig {
                name: name.into(),
                namespaces: vec![],
                dead_letter: None,
                queue: QueueConfig::default(),
                retry: RetryConfig::default(),
            },
            kind: SinkKind::Log(LogConfig::default()),
        }
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.common.name
    }

    /// Splits one `sinks:` entry into the common part and its type's part.
    /// Errors name the sink (when it has a name) and the field.
    fn from_map(map: Map<String, Value>) -> Result<Self, String> {
        let name = map_name(&map);
        let named = |e: String| match &name {
            Some(name) => format!("sink {name:?}: {e}"),
            None => e,
        };
        let kind: SinkType = match map.get("type") {
            None => return Err(named("missing field `type`".into())),
            Some(t) => {
                serde_json::from_value(t.clone()).map_err(|e| named(format!("type: {e}")))?
            }
        };
        let common_fields = serde_introspect::<CommonConfig>();
        let own = kind.fields();
        let mut common = Map::new();
        let mut rest = Map::new();
        for (key, value) in map {
            if common_fields.contains(&key.as_str()) {
                common.insert(key, value);
            } else if own.contains(&key.as_str()) {
                rest.insert(key, value);
            } else if key == "type" {
                continue;
            } else {
                let only: Vec<SinkType> = SinkType::ALL
                    .into_iter()
                    .filter(|t| t.fields().contains(&key.as_str()))
                    .collect();
                let e = if only.is_empty() {
                    let mut expected = vec!["type"];
                    expected.extend_from_slice(common_fields);
                    expected.extend_from_slice(own);
                    ConfigError::UnknownField {
                        field: key,
                        expected,
                    }
                } else {
                    ConfigError::DoesNotApply {
                        field: key,
                        kind,
                        only,
                    }
                };
                return Err(named(e.to_string()));
            }
        }
        // Each type's struct directly, not through the tagged enum (which
        // buffers, and loses the path of an error inside it).
        let kind = match kind {
            SinkType::Webhook => SinkKind::Webhook(part(rest).map_err(named)?),
            SinkType::Slack => SinkKind::Slack(part(rest).map_err(named)?),
            SinkType::Batch => SinkKind::Batch(part(rest).map_err(named)?),
            SinkType::Log => SinkKind::Log(part(rest).map_err(named)?),
            SinkType::Nats => SinkKind::Nats(part(rest).map_err(named)?),
        };
        let common: CommonConfig = part(common).map_err(named)?;
        Ok(SinkConfig { common, kind })
    }

    /// Checks what serde cannot: required fields per type, URLs, secret
    /// references, counts. Errors name the field.
    ///
    /// # Errors
    /// The first field that does not hold.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.common.name.trim().is_empty() {
            return Err(ConfigError::NoName);
        }
        self.kind.validate()?;
        if self.common.queue.capacity == 0 {
            return Err(ConfigError::Zero("queue.capacity"));
        }
        let retry = &self.common.retry;
        if retry.initial_backoff.is_zero() || retry.max_backoff < retry.initial_backoff {
            return Err(ConfigError::Backoff);
        }
        Ok(())
    }
}

fn map_name(map: &Map<String, Value>) -> Option<String> {
    map.get("name").and_then(Value::as_str).map(str::to_string)
}

/// Checks a whole `sinks:` list: each entry, unique names, dead-letter
/// targets that exist and do not point at themselves.
///
/// # Errors
/// The first sink or reference that does not hold, named.
pub(crate) fn validate_all(sinks: &[SinkConfig], have_state_dir: bool) -> Result<(), SinksError> {
    for (index, s) in sinks.iter().enumerate() {
        let name = || s.common.name.clone();
        s.validate().map_err(|error| SinksError::Sink {
            index,
            name: name(),
            error,
        })?;
        if sinks[..index]
            .iter()
            .any(|o| o.common.name == s.common.name)
        {
            return Err(SinksError::Duplicate {
                index,
                name: name(),
            });
        }
        if let Some(dl) = &s.common.dead_letter {
            if dl == &s.common.name {
                return Err(SinksError::OwnDeadLetter {
                    index,
                    name: name(),
                });
            }
            match sinks.iter().find(|o| &o.common.name == dl) {
                None => {
                    return Err(SinksError::NoDeadLetter {
                        index,
                        name: name(),
                        target: dl.clone(),
                    });
                }
                Some(o) if o.common.dead_letter.is_some() => {
                    return Err(SinksError::ChainedDeadLetter {
                        index,
                        name: name(),
                        target: dl.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        if s.common.queue.when_full == WhenFull::Spill && !have_state_dir {
            return Err(SinksError::SpillWithoutStateDir {
                index,
                name: name(),
            });
        }
    }
    Ok(())
}

/// Key-values put on every notification (`metadata`).
pub(crate) type Metadata = BTreeMap<String, Value>;

#[cfg(test)]
mod tests {
    use super::super::endpoint::DEFAULT_TIMEOUT;
    use super::super::webhook::config::{CeMode, Format};
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<SinkConfig>, String> {
        let v: Vec<SinkConfig> = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        validate_all(&v, false).map_err(|e| e.to_string())?;
        Ok(v)
    }

    fn webhook(c: &SinkConfig) -> &WebhookConfig {
        match &c.kind {
            SinkKind::Webhook(w) => w,
            other => panic!("not a webhook: {other:?}"),
        }
    }

    #[test]
    fn each_type_parses_with_its_fields() {
        let v = parse(
            r#"
- name: audit
  type: webhook
  url: https://audit.example.com/k8s
  format: cloudevents
  mode: structured
  signing: { secrets: [ { env: S } ] }
  auth: { basic: { username: { env: U }, password: { file: /p } } }
  retry: { initialBackoff: 100ms, maxBackoff: 5s, maxAge: 10m }
- name: s
  type: slack
  webhookUrl: { env: SLACK }
  groupWindow: 10s
- name: inv
  type: batch
  url: http://127.0.0.1:9/x
  maxObjects: 5
  maxBytes: 512KiB
  interval: 2s
  deadLetter: out
- name: out
  type: log
"#,
        )
        .unwrap();
        assert_eq!(webhook(&v[0]).mode, Some(CeMode::Structured));
        assert_eq!(v[0].common.retry.max_age, Duration::from_secs(600));
        let SinkKind::Batch(b) = &v[2].kind else {
            panic!("batch")
        };
        assert_eq!(b.max_bytes, bytesize::ByteSize::kib(512));
        assert_eq!(webhook(&v[0]).old, OldState::Patch);
        let SinkKind::Log(l) = &v[3].kind else {
            panic!("log")
        };
        assert_eq!(l.old, OldState::None);
    }

    #[test]
    fn errors_name_the_sink_and_the_field() {
        let e = parse("- {name: a, type: webhook, url: x, maxObjects: 3}").unwrap_err();
        assert!(
            e.contains("maxObjects: does not apply to a webhook sink"),
            "{e}"
        );
        let e = parse("- {name: a, type: webhook}").unwrap_err();
        assert_eq!(e, "sinks[0] (a).url: a webhook sink needs a url");
        let e = parse("- {name: a, type: webhook, url: 'ftp://x/'}").unwrap_err();
        assert!(e.contains("only http and https"), "{e}");
        let e = parse("- {name: a, type: slack}").unwrap_err();
        assert!(e.starts_with("sinks[0] (a).webhookUrl:"), "{e}");
        let e = parse("- {name: a, type: log}\n- {name: a, type: log}").unwrap_err();
        assert!(e.contains("used twice"), "{e}");
        let e = parse("- {name: a, type: log, deadLetter: b}").unwrap_err();
        assert!(e.contains("no sink is named \"b\""), "{e}");
        let e = parse("- {name: a, type: log, queue: {whenFull: spill}}").unwrap_err();
        assert!(e.contains("needs `stateDir`"), "{e}");
        let e = parse("- {name: a, type: log, colour: red}").unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn a_field_of_another_type_names_the_types_that_have_it_and_the_sink() {
        let e =
            parse("- {name: a, type: slack, webhookUrl: {env: X}, url: 'http://x/'}").unwrap_err();
        assert!(
            e.starts_with(
                "sink \"a\": url: does not apply to a slack sink (only to webhook, batch, nats)"
            ),
            "{e}"
        );
        let e = parse("- {name: a, type: log, concurrency: 2}").unwrap_err();
        assert!(
            e.contains("concurrency: does not apply to a log sink (only to webhook)"),
            "{e}"
        );
        let e = parse("- {name: a, type: batch, url: 'http://x/', timeout: soon}").unwrap_err();
        assert!(e.starts_with("sink \"a\": timeout: "), "{e}");
        let e = parse("- {name: a, type: log, retry: {initialBackoff: soon}}").unwrap_err();
        assert!(e.starts_with("sink \"a\": retry.initialBackoff: "), "{e}");
        let e = parse("- {name: a, type: pigeon}").unwrap_err();
        assert!(e.contains("type: unknown variant `pigeon`"), "{e}");
        let e = parse("- {name: a}").unwrap_err();
        assert!(e.contains("missing field `type`"), "{e}");
    }

    #[test]
    fn defaults_live_with_each_type() {
        let v = parse(
            "- {name: w, type: webhook, url: 'http://x/'}\n- {name: s, type: slack, webhookUrl: {env: X}}\n- {name: b, type: batch, url: 'http://x/'}",
        )
        .unwrap();
        let w = webhook(&v[0]);
        assert_eq!(
            (w.concurrency, w.timeout, w.format),
            (4, DEFAULT_TIMEOUT, Format::Raw)
        );
        let SinkKind::Slack(s) = &v[1].kind else {
            panic!("slack")
        };
        assert_eq!((s.rate_per_second, s.burst, s.group_window), (1, 3, None));
        let SinkKind::Batch(b) = &v[2].kind else {
            panic!("batch")
        };
        assert_eq!(
            (b.max_objects, b.max_bytes, b.interval, b.old),
            (
                10,
                bytesize::ByteSize::mib(1),
                Duration::from_secs(1),
                OldState::None
            )
        );
        assert_eq!(v[0].common.queue, QueueConfig::default());
        assert_eq!(v[0].common.retry, RetryConfig::default());
    }

    #[test]
    fn a_config_survives_a_round_trip_through_json() {
        let v = parse(
            "- {name: w, type: webhook, url: 'http://x/', format: cloudevents, mode: binary, namespaces: [a], metadata: {k: v}}",
        )
        .unwrap();
        let json = serde_json::to_value(&v[0]).unwrap();
        assert_eq!(json["type"], "webhook");
        assert_eq!(json["name"], "w");
        let back: SinkConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, v[0]);
    }
}
