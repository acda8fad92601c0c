//! A NATS sink's own fields (`type: nats`), with their defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::encoder::Template;
use crate::sink::config::{ConfigError, Metadata, OldState, TlsConfig, secret_shape};
use crate::sink::secret::SecretRef;
use crate::sink::webhook::config::Format;

/// The subject when none is given: one token per part, so a consumer
/// filters with wildcards (`herald.prod.*.*.payments.>`).
pub(crate) const DEFAULT_SUBJECT: &str = "herald.{cluster}.{group}.{kind}.{namespace}.{change}";

/// NATS authentication: one of user and password, a token, or a
/// credentials file (NKey seed and user JWT, as `nsc` writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NatsAuth {
    /// User name (with `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SecretRef>,
    /// Password (with `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// A token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    /// A `.creds` file: the user JWT and its NKey seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creds_file: Option<PathBuf>,
}

impl NatsAuth {
    fn validate(&self) -> Result<(), ConfigError> {
        let userpass = self.user.is_some() || self.password.is_some();
        let given = [userpass, self.token.is_some(), self.creds_file.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ConfigError::NatsAuth);
        }
        if userpass {
            match (&self.user, &self.password) {
                (Some(u), Some(p)) => {
                    secret_shape("auth.user", u)?;
                    secret_shape("auth.password", p)?;
                }
                _ => return Err(ConfigError::NatsAuth),
            }
        }
        if let Some(t) = &self.token {
            secret_shape("auth.token", t)?;
        }
        Ok(())
    }
}

/// The JetStream stream herald publishes into, and whether herald may
/// create it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct StreamConfig {
    /// The stream's name. Example: `HERALD`
    pub name: String,
    /// The subjects it holds. Default: `[herald.>]`
    #[serde(default = "StreamConfig::default_subjects")]
    pub subjects: Vec<String>,
    /// Create the stream at the first connection when it does not exist
    /// (an existing stream is never changed). Default: false
    #[serde(default)]
    pub create: bool,
    /// The duplicate window of a stream herald creates: it must be longer
    /// than herald's longest outage for exactly once across restarts.
    /// Default: 2m (JetStream's own default)
    #[serde(default = "StreamConfig::default_window", with = "humantime_serde")]
    pub duplicate_window: Duration,
}

impl StreamConfig {
    fn default_subjects() -> Vec<String> {
        vec!["herald.>".into()]
    }
    fn default_window() -> Duration {
        Duration::from_secs(120)
    }
}

/// Publishes to NATS JetStream.
///
/// ```yaml
/// type: nats
/// url: nats://nats.messaging:4222
/// subject: "herald.{cluster}.{group}.{kind}.{namespace}.{change}"
/// format: cloudevents
/// auth: { credsFile: /var/run/secrets/nats/herald.creds }
/// stream: { name: HERALD, subjects: ["herald.>"], create: true, duplicateWindow: 1h }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NatsConfig {
    /// Server URL, `nats://` or `tls://`; several separated by commas.
    /// Required. Example: `nats://nats-0:4222,nats://nats-1:4222`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The subject of each message. Placeholders: `{cluster}`, `{group}`
    /// (`core` for the core group), `{version}`, `{kind}` (lower case),
    /// `{namespace}` (`_` when cluster-scoped), `{name}`, `{change}`,
    /// `{watch}`; each value is made a valid token (`.`, `*`, `>` and
    /// white space become `_`). Default: [`DEFAULT_SUBJECT`]
    #[serde(default = "NatsConfig::default_subject")]
    pub subject: String,
    /// `raw` (herald's envelope, default) or `cloudevents` (binary mode:
    /// `ce-*` headers, the envelope as payload).
    #[serde(default)]
    pub format: Format,
    /// `full`, `patch` (default) or `none`.
    #[serde(default = "NatsConfig::default_old")]
    pub old: OldState,
    /// Key-values put on every notification. Example: `{team: payments}`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<NatsAuth>,
    /// TLS (rustls): `caFile`, `certFile` + `keyFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// How long to wait for the connection and for each acknowledgement.
    /// Default: 10s
    #[serde(default = "NatsConfig::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Most messages published before their acknowledgements are awaited
    /// (one per object at a time, so per-object order holds). Default: 256
    #[serde(default = "NatsConfig::default_max_in_flight")]
    pub max_in_flight: usize,
    /// The stream, when herald should create it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamConfig>,
}

impl NatsConfig {
    fn default_subject() -> String {
        DEFAULT_SUBJECT.into()
    }
    fn default_old() -> OldState {
        OldState::Patch
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
    fn default_max_in_flight() -> usize {
        256
    }

    /// The server URLs, as given.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.url
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let urls = self.urls();
        if urls.is_empty() {
            return Err(ConfigError::NoNatsUrl);
        }
        for u in &urls {
            let parsed = url::Url::parse(u).map_err(|error| ConfigError::BadUrl {
                url: u.clone(),
                error,
            })?;
            if !matches!(parsed.scheme(), "nats" | "tls") {
                return Err(ConfigError::NatsScheme(u.clone()));
            }
        }
        Template::parse(&self.subject).map_err(ConfigError::Subject)?;
        if let Some(a) = &self.auth {
            a.validate()?;
        }
        if let Some(t) = &self.tls {
            t.validate()?;
            if t.insecure_skip_verify {
                return Err(ConfigError::NatsInsecure);
            }
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::Zero("maxInFlight"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Zero("timeout"));
        }
        if let Some(s) = &self.stream {
            if s.name.is_empty() || s.name.contains(['.', ' ', '\t', '*', '>']) {
                return Err(ConfigError::StreamName(s.name.clone()));
            }
            if s.subjects.is_empty() {
                return Err(ConfigError::Zero("stream.subjects"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::sink::config::{SinkConfig, SinkKind, validate_all};

    fn parse(yaml: &str) -> Result<Vec<SinkConfig>, String> {
        let v: Vec<SinkConfig> = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        validate_all(&v, false).map_err(|e| e.to_string())?;
        Ok(v)
    }

    #[test]
    fn a_nats_sink_parses_with_its_defaults() {
        let v = parse(
            "- {name: bus, type: nats, url: 'nats://127.0.0.1:4222', auth: {token: {env: T}}, stream: {name: HERALD, create: true, duplicateWindow: 1h}}",
        )
        .unwrap();
        let SinkKind::Nats(n) = &v[0].kind else {
            panic!("nats")
        };
        assert_eq!(n.subject, super::DEFAULT_SUBJECT);
        assert_eq!(n.max_in_flight, 256);
        assert_eq!(n.timeout, std::time::Duration::from_secs(10));
        let s = n.stream.as_ref().unwrap();
        assert_eq!(s.subjects, vec!["herald.>".to_string()]);
        assert_eq!(s.duplicate_window, std::time::Duration::from_secs(3600));
        assert!(s.create);
    }

    #[test]
    fn nats_errors_name_the_sink_and_the_field() {
        let e = parse("- {name: a, type: nats}").unwrap_err();
        assert!(e.contains("(a).url: a nats sink needs a url"), "{e}");
        let e = parse("- {name: a, type: nats, url: 'http://x:4222'}").unwrap_err();
        assert!(e.contains("nats:// or tls://"), "{e}");
        let e =
            parse("- {name: a, type: nats, url: 'nats://x', subject: 'k8s.{colour}'}").unwrap_err();
        assert!(e.contains("(a).subject: ") && e.contains("{colour}"), "{e}");
        let e = parse(
            "- {name: a, type: nats, url: 'nats://x', auth: {token: {env: T}, credsFile: /c}}",
        )
        .unwrap_err();
        assert!(e.contains("(a).auth: give one of"), "{e}");
        let e =
            parse("- {name: a, type: nats, url: 'nats://x', auth: {user: {env: U}}}").unwrap_err();
        assert!(e.contains("(a).auth: give one of"), "{e}");
        let e = parse("- {name: a, type: nats, url: 'nats://x', stream: {name: a.b}}").unwrap_err();
        assert!(e.contains("stream.name"), "{e}");
        let e = parse("- {name: a, type: nats, url: 'nats://x', maxObjects: 3}").unwrap_err();
        assert!(
            e.contains("maxObjects: does not apply to a nats sink"),
            "{e}"
        );
        let e = parse("- {name: a, type: webhook, url: 'http://x/', subject: s}").unwrap_err();
        assert!(
            e.contains("subject: does not apply to a webhook sink (only to nats)"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_creds_file_fails_the_build_naming_the_field() {
        let v = parse("- {name: a, type: nats, url: 'nats://x', auth: {credsFile: /nonexistent/herald.creds}}")
            .unwrap();
        let SinkKind::Nats(n) = &v[0].kind else {
            panic!("nats")
        };
        let e = crate::sink::nats::Nats::new("a", n)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("auth.credsFile: ") && e.contains("/nonexistent/herald.creds"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.creds");
        std::fs::write(&bad, "not a creds file").unwrap();
        let v = parse(&format!(
            "- {{name: a, type: nats, url: 'nats://x', auth: {{credsFile: {}}}, tls: {{caFile: {}}}}}",
            bad.display(),
            bad.display()
        ))
        .unwrap();
        let SinkKind::Nats(n) = &v[0].kind else {
            panic!("nats")
        };
        let e = crate::sink::nats::Nats::new("a", n)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("auth.credsFile: "), "{e}");
    }
}
