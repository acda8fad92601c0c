//! A batch sink's own fields (`type: batch`), with their defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::sink::config::{
    AuthConfig, ConfigError, Metadata, OldState, SigningConfig, SinkType, TlsConfig,
    default_timeout, validate_http, validate_url,
};

/// Batches of notifications per POST.
///
/// ```yaml
/// type: batch
/// url: https://inventory.example.com/k8s
/// maxObjects: 50
/// maxBytes: 512KiB
/// interval: 2s
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BatchConfig {
    /// Endpoint URL, http or https. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `full`, `patch` or `none` (default).
    #[serde(default = "BatchConfig::default_old")]
    pub old: OldState,
    /// Key-values put on every request. Example: `{team: payments}`
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
    /// Most notifications per request. Default: 10
    #[serde(default = "BatchConfig::default_max_objects")]
    pub max_objects: usize,
    /// Most body bytes per request. Default: 1MiB. Example: `512KiB`
    #[serde(default = "BatchConfig::default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Flush at least this often. Default: 1s
    #[serde(default = "BatchConfig::default_interval", with = "humantime_serde")]
    pub interval: Duration,
}

impl BatchConfig {
    fn default_old() -> OldState {
        OldState::None
    }
    fn default_max_objects() -> usize {
        10
    }
    fn default_max_bytes() -> ByteSize {
        ByteSize::mib(1)
    }
    fn default_interval() -> Duration {
        Duration::from_secs(1)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        validate_url(self.url.as_deref(), SinkType::Batch)?;
        validate_http(self.auth.as_ref(), self.tls.as_ref(), self.signing.as_ref())?;
        if self.max_objects == 0 {
            return Err(ConfigError::Zero("maxObjects"));
        }
        Ok(())
    }
}
