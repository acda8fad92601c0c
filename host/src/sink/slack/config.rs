//! A Slack sink's own fields (`type: slack`), with their defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sink::config::{ConfigError, TlsConfig, default_timeout, secret_shape};
use crate::sink::secret::SecretRef;

/// Block Kit messages to a Slack Incoming Webhook.
///
/// ```yaml
/// type: slack
/// webhookUrl: { env: SLACK_WEBHOOK_URL }
/// groupWindow: 10s
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SlackConfig {
    /// The Incoming Webhook URL, a secret. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretRef>,
    /// TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Request timeout. Default: 10s
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Group the changes of this window into one message. Default: none
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub group_window: Option<Duration>,
    /// Messages per second sustained. Default: 1
    #[serde(default = "SlackConfig::default_rate")]
    pub rate_per_second: u32,
    /// Messages allowed in a burst above the rate. Default: 3
    #[serde(default = "SlackConfig::default_burst")]
    pub burst: u32,
}

impl SlackConfig {
    fn default_rate() -> u32 {
        1
    }
    fn default_burst() -> u32 {
        3
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let r = self.webhook_url.as_ref().ok_or(ConfigError::NoWebhookUrl)?;
        secret_shape("webhookUrl", r)?;
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        if self.rate_per_second == 0 {
            return Err(ConfigError::Zero("ratePerSecond"));
        }
        Ok(())
    }
}
