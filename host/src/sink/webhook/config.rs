//! A webhook sink's own fields (`type: webhook`), with their defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sink::config::{
    AuthConfig, ConfigError, Metadata, OldState, SigningConfig, SinkType, TlsConfig,
    default_timeout, validate_http, validate_url,
};

/// Body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// herald's own envelope.
    #[default]
    Raw,
    /// CloudEvents 1.0 (see `mode`).
    Cloudevents,
}

/// CloudEvents HTTP content mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CeMode {
    /// Attributes in `ce-*` headers, the data as the body.
    #[default]
    Binary,
    /// The whole event as `application/cloudevents+json`.
    Structured,
}

/// One POST per notification.
///
/// ```yaml
/// type: webhook
/// url: https://audit.example.com/k8s
/// format: cloudevents
/// mode: structured
/// signing: { secrets: [ { env: AUDIT_SECRET } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WebhookConfig {
    /// Endpoint URL, http or https. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `raw` (default) or `cloudevents`.
    #[serde(default)]
    pub format: Format,
    /// CloudEvents mode, `binary` (default) or `structured`; only with
    /// `format: cloudevents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CeMode>,
    /// `full`, `patch` (default) or `none`.
    #[serde(default = "WebhookConfig::default_old")]
    pub old: OldState,
    /// Key-values put on every notification. Example: `{team: payments}`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Standard Webhooks signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfig>,
    /// Request timeout. Default: 10s
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Parallel deliveries, each lane keeping per-object order. Default: 4
    #[serde(default = "WebhookConfig::default_concurrency")]
    pub concurrency: usize,
}

impl WebhookConfig {
    fn default_old() -> OldState {
        OldState::Patch
    }
    fn default_concurrency() -> usize {
        4
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.mode.is_some() && self.format != Format::Cloudevents {
            return Err(ConfigError::ModeWithoutCloudEvents);
        }
        validate_url(self.url.as_deref(), SinkType::Webhook)?;
        validate_http(self.auth.as_ref(), self.tls.as_ref(), self.signing.as_ref())?;
        if self.concurrency == 0 {
            return Err(ConfigError::Zero("concurrency"));
        }
        Ok(())
    }
}
