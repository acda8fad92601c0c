//! What the configs of the HTTP sinks share: authentication, TLS, signing,
//! the endpoint URL and the request timeout, and the checks on them.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::SinkType;
use super::error::ConfigError;
use super::secret::SecretRef;

/// HTTP authentication (webhook, batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthConfig {
    /// Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// A file holding a bearer token, read at start and on reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.basic.is_some() && self.bearer_token_file.is_some() {
            return Err(ConfigError::TwoAuths);
        }
        if let Some(b) = &self.basic {
            secret_shape("auth.basic.username", &b.username)?;
            secret_shape("auth.basic.password", &b.password)?;
        }
        Ok(())
    }
}

/// Basic authentication credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BasicAuth {
    /// The user name.
    pub username: SecretRef,
    /// The password.
    pub password: SecretRef,
}

/// TLS towards the endpoint (rustls): webhook, batch, slack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TlsConfig {
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

impl TlsConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(ConfigError::CertWithoutKey);
        }
        Ok(())
    }
}

/// Standard Webhooks signing (webhook, batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SigningConfig {
    /// Secrets (`whsec_<base64>`, or raw bytes without the prefix); every
    /// one signs, so a receiver can rotate.
    pub secrets: Vec<SecretRef>,
}

impl SigningConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSigningSecret);
        }
        for (i, r) in self.secrets.iter().enumerate() {
            secret_shape(&format!("signing.secrets[{i}]"), r)?;
        }
        Ok(())
    }
}

/// The request timeout of the HTTP sinks when none is given.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `timeout`'s default, for serde.
pub(crate) fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// What an HTTP sink (webhook, batch) checks of its auth, TLS and signing.
pub(crate) fn validate_http(
    auth: Option<&AuthConfig>,
    tls: Option<&TlsConfig>,
    signing: Option<&SigningConfig>,
) -> Result<(), ConfigError> {
    auth.map_or(Ok(()), AuthConfig::validate)?;
    signing.map_or(Ok(()), SigningConfig::validate)?;
    tls.map_or(Ok(()), TlsConfig::validate)
}

/// A webhook or batch sink's `url`: there, a URL, http or https.
pub(crate) fn validate_url(url: Option<&str>, kind: SinkType) -> Result<(), ConfigError> {
    let url = url.ok_or(ConfigError::NoUrl(kind))?;
    let parsed = reqwest::Url::parse(url).map_err(|error| ConfigError::BadUrl {
        url: url.into(),
        error,
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Scheme(url.into()));
    }
    Ok(())
}

/// A secret reference's shape, named by its field.
pub(crate) fn secret_shape(field: &str, r: &SecretRef) -> Result<(), ConfigError> {
    r.validate().map_err(|error| ConfigError::Secret {
        field: field.into(),
        error,
    })
}
