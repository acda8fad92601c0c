//! The `sinks:` section of the config: one flat entry per sink, its `type`
//! deciding which fields apply. Fields that do not apply to a type are
//! errors, as unknown fields are.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::secret::SecretRef;

/// What a sink is.
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
}

impl SinkType {
    fn as_str(self) -> &'static str {
        match self {
            SinkType::Webhook => "webhook",
            SinkType::Slack => "slack",
            SinkType::Batch => "batch",
            SinkType::Log => "log",
        }
    }
}

/// Body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// herald's own envelope.
    #[default]
    Raw,
    /// CloudEvents 1.0 (see `mode`).
    Cloudevents,
}

/// CloudEvents HTTP content mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CeMode {
    /// Attributes in `ce-*` headers, the data as the body.
    #[default]
    Binary,
    /// The whole event as `application/cloudevents+json`.
    Structured,
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
pub enum WhenFull {
    /// Wait for room: the pipeline slows down (and with it every sink).
    #[default]
    Block,
    /// Write the notification to the durable outbox (needs `stateDir`).
    Spill,
}

/// The bounded queue in front of a sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueConfig {
    /// Notifications the queue holds. Default: 10000
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// `block` (default) or `spill`.
    #[serde(default)]
    pub when_full: WhenFull,
}

fn default_capacity() -> usize {
    10_000
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: default_capacity(),
            when_full: WhenFull::Block,
        }
    }
}

/// Retries: exponential backoff with jitter, until `maxAge` after the first
/// attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryConfig {
    /// First wait. Default: 500ms
    #[serde(default = "default_initial", with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default: 30s
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Give up (dead letter) this long after the first attempt. Default: 1h
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
}

fn default_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_max_age() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: default_initial(),
            max_backoff: default_max_backoff(),
            max_age: default_max_age(),
        }
    }
}

/// HTTP authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfig {
    /// Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// A file holding a bearer token, read at start and on reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
}

/// Basic authentication credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: SecretRef,
    /// The password.
    pub password: SecretRef,
}

/// TLS towards the endpoint (rustls).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM bundle of CAs to trust in addition to the built-in roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Accept any certificate. Never on unless set here, and logged loudly.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Standard Webhooks signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningConfig {
    /// Secrets (`whsec_<base64>`, or raw bytes without the prefix); every
    /// one signs, so a receiver can rotate.
    pub secrets: Vec<SecretRef>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name; watches and route verdicts name sinks by it.
    pub name: String,
    /// `webhook`, `slack`, `batch` or `log`.
    #[serde(rename = "type")]
    pub kind: SinkType,
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
    /// Parallel deliveries (webhook), each lane keeping per-object order. Default: 4
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,

    // webhook and batch
    /// Endpoint URL (webhook, batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `raw` or `cloudevents` (webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// CloudEvents mode, `binary` or `structured` (webhook, format cloudevents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CeMode>,
    /// `full`, `patch` or `none`. Default: `patch` for webhook, `none` for batch and log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<OldState>,
    /// Key-values put on every notification. Example: `{team: payments}`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Authentication (webhook, batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Extra request headers (webhook, batch).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// TLS (webhook, batch, slack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Standard Webhooks signing (webhook, batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfig>,
    /// Request timeout. Default: 10s
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub timeout: Option<Duration>,

    // batch
    /// Most notifications per request (batch). Default: 10
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<usize>,
    /// Most body bytes per request (batch). Default: 1MiB. Example: `512KiB`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<ByteSize>,
    /// Flush at least this often (batch). Default: 1s
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub interval: Option<Duration>,

    // slack
    /// The Incoming Webhook URL, a secret (slack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretRef>,
    /// Group the changes of this window into one message (slack). Default: none
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub group_window: Option<Duration>,
    /// Messages per second sustained (slack). Default: 1
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    /// Messages allowed in a burst above the rate (slack). Default: 3
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl SinkConfig {
    /// A log sink named `name`, all defaults.
    pub fn log(name: &str) -> Self {
        SinkConfig {
            name: name.into(),
            kind: SinkType::Log,
            namespaces: vec![],
            dead_letter: None,
            queue: QueueConfig::default(),
            retry: RetryConfig::default(),
            concurrency: None,
            url: None,
            format: None,
            mode: None,
            old: None,
            metadata: BTreeMap::new(),
            auth: None,
            headers: BTreeMap::new(),
            tls: None,
            signing: None,
            timeout: None,
            max_objects: None,
            max_bytes: None,
            interval: None,
            webhook_url: None,
            group_window: None,
            rate_per_second: None,
            burst: None,
        }
    }

    /// The old-state form, with the type's default.
    pub fn old_state(&self) -> OldState {
        self.old.unwrap_or(match self.kind {
            SinkType::Webhook => OldState::Patch,
            _ => OldState::None,
        })
    }

    /// Checks what serde cannot: required fields per type, fields that do
    /// not apply, URLs, secret references. Errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        let t = self.kind;
        if self.name.trim().is_empty() {
            return Err("name: a sink needs a name".into());
        }
        let only = |field: &str, set: bool, types: &[SinkType]| -> Result<(), String> {
            if set && !types.contains(&t) {
                let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
                return Err(format!(
                    "{field}: does not apply to a {} sink (only to {})",
                    t.as_str(),
                    names.join(", ")
                ));
            }
            Ok(())
        };
        use SinkType::*;
        only("url", self.url.is_some(), &[Webhook, Batch])?;
        only("format", self.format.is_some(), &[Webhook])?;
        only("mode", self.mode.is_some(), &[Webhook])?;
        only("auth", self.auth.is_some(), &[Webhook, Batch])?;
        only("headers", !self.headers.is_empty(), &[Webhook, Batch])?;
        only("tls", self.tls.is_some(), &[Webhook, Batch, Slack])?;
        only("signing", self.signing.is_some(), &[Webhook, Batch])?;
        only("timeout", self.timeout.is_some(), &[Webhook, Batch, Slack])?;
        only("concurrency", self.concurrency.is_some(), &[Webhook])?;
        only("maxObjects", self.max_objects.is_some(), &[Batch])?;
        only("maxBytes", self.max_bytes.is_some(), &[Batch])?;
        only("interval", self.interval.is_some(), &[Batch])?;
        only("webhookUrl", self.webhook_url.is_some(), &[Slack])?;
        only("groupWindow", self.group_window.is_some(), &[Slack])?;
        only("ratePerSecond", self.rate_per_second.is_some(), &[Slack])?;
        only("burst", self.burst.is_some(), &[Slack])?;
        if self.mode.is_some() && self.format != Some(Format::Cloudevents) {
            return Err("mode: applies only with `format: cloudevents`".into());
        }
        match t {
            Webhook | Batch => {
                let url = self
                    .url
                    .as_deref()
                    .ok_or_else(|| format!("url: a {} sink needs a url", t.as_str()))?;
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| format!("url: {url:?} is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("url: {url:?}: only http and https are supported"));
                }
            }
            Slack => {
                let r = self.webhook_url.as_ref().ok_or(
                    "webhookUrl: a slack sink needs `webhookUrl: {env: VAR}` or `{file: PATH}`",
                )?;
                r.validate().map_err(|e| format!("webhookUrl: {e}"))?;
            }
            Log => {}
        }
        if let Some(auth) = &self.auth {
            if auth.basic.is_some() && auth.bearer_token_file.is_some() {
                return Err("auth: give `basic` or `bearerTokenFile`, not both".into());
            }
            if let Some(b) = &auth.basic {
                b.username
                    .validate()
                    .map_err(|e| format!("auth.basic.username: {e}"))?;
                b.password
                    .validate()
                    .map_err(|e| format!("auth.basic.password: {e}"))?;
            }
        }
        if let Some(s) = &self.signing {
            if s.secrets.is_empty() {
                return Err("signing.secrets: give at least one secret".into());
            }
            for (i, r) in s.secrets.iter().enumerate() {
                r.validate()
                    .map_err(|e| format!("signing.secrets[{i}]: {e}"))?;
            }
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err("tls: `certFile` and `keyFile` go together".into());
        }
        if self.queue.capacity == 0 {
            return Err("queue.capacity: must be at least 1".into());
        }
        if self.concurrency == Some(0) {
            return Err("concurrency: must be at least 1".into());
        }
        if self.max_objects == Some(0) {
            return Err("maxObjects: must be at least 1".into());
        }
        if self.rate_per_second == Some(0) {
            return Err("ratePerSecond: must be at least 1".into());
        }
        if self.retry.initial_backoff.is_zero()
            || self.retry.max_backoff < self.retry.initial_backoff
        {
            return Err("retry: need 0 < initialBackoff <= maxBackoff".into());
        }
        Ok(())
    }
}

/// Checks a whole `sinks:` list: each entry, unique names, dead-letter
/// targets that exist and do not point at themselves.
pub fn validate_all(sinks: &[SinkConfig], have_state_dir: bool) -> Result<(), String> {
    for (i, s) in sinks.iter().enumerate() {
        s.validate()
            .map_err(|e| format!("sinks[{i}] ({}).{e}", s.name))?;
        if sinks[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("sinks[{i}].name: {:?} is used twice", s.name));
        }
        if let Some(dl) = &s.dead_letter {
            if dl == &s.name {
                return Err(format!(
                    "sinks[{i}] ({}).deadLetter: a sink cannot be its own dead letter",
                    s.name
                ));
            }
            match sinks.iter().find(|o| &o.name == dl) {
                None => {
                    return Err(format!(
                        "sinks[{i}] ({}).deadLetter: no sink is named {dl:?}",
                        s.name
                    ));
                }
                Some(o) if o.dead_letter.is_some() => {
                    return Err(format!(
                        "sinks[{i}] ({}).deadLetter: {dl:?} has a dead letter of its own; a dead-letter sink cannot",
                        s.name
                    ));
                }
                Some(_) => {}
            }
        }
        if s.queue.when_full == WhenFull::Spill && !have_state_dir {
            return Err(format!(
                "sinks[{i}] ({}).queue.whenFull: `spill` needs `stateDir`",
                s.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<SinkConfig>, String> {
        let v: Vec<SinkConfig> = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        validate_all(&v, false)?;
        Ok(v)
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
        assert_eq!(v[0].mode, Some(CeMode::Structured));
        assert_eq!(v[0].retry.max_age, Duration::from_secs(600));
        assert_eq!(v[2].max_bytes, Some(ByteSize::kib(512)));
        assert_eq!(v[0].old_state(), OldState::Patch);
        assert_eq!(v[3].old_state(), OldState::None);
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
}
