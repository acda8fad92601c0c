//! The `api:` and `metrics:` sections of the config: where the query and
//! admin APIs listen, who may use them, and the limits that keep a client
//! from starving herald; where `/metrics`, `/healthz` and `/readyz` listen.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// The query and admin APIs.
///
/// ```yaml
/// api:
///   listen: 0.0.0.0:8443
///   auth: delegated            # default; or none (loopback only, see allowUnauthenticated)
///   tls: { certFile: /tls/tls.crt, keyFile: /tls/tls.key, clientCAFile: /tls/ca.crt }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawApiConfig")]
pub(crate) struct ApiConfig {
    /// Address to listen on. Example: `0.0.0.0:8443`
    pub listen: SocketAddr,
    /// Who may call the APIs.
    pub auth: AuthMode,
    /// `auth: none` on an address other than loopback.
    pub allow_unauthenticated: bool,
    /// How long an authentication or authorization decision is reused.
    pub auth_cache_ttl: Duration,
    /// HTTPS instead of HTTP.
    pub tls: Option<TlsConfig>,
    /// Limits on connections and requests.
    pub limits: Limits,
}

/// Who may call the query and admin APIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthMode {
    /// Kubernetes decides: the caller's bearer token (or client certificate)
    /// is reviewed by the API server (TokenReview), and each request is
    /// allowed only if the API server would allow the same read
    /// (SubjectAccessReview).
    #[default]
    Delegated,
    /// Anyone who can connect; for local use.
    None,
}

/// HTTPS for the query and admin APIs. The files are read again when they
/// change (a renewed certificate needs no restart).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TlsConfig {
    /// PEM certificate chain. Example: `/tls/tls.crt`
    pub cert_file: PathBuf,
    /// PEM private key. Example: `/tls/tls.key`
    pub key_file: PathBuf,
    /// PEM CA bundle: clients may authenticate with a certificate it signed
    /// (user = the subject's CN, groups = its O values). Optional.
    #[serde(default, rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
}

/// Limits on the API listener. The defaults suit a cluster add-on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and a TLS handshake).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a request may take, end to end.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest request body (admin requests).
    pub max_body: ByteSize,
    /// Largest `limit` a list may ask for; a larger one is capped.
    pub max_list_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body: ByteSize::kib(64),
            max_list_limit: 5000,
        }
    }
}

/// `/metrics`, `/healthz` and `/readyz`, on an address of their own and
/// without authentication (Prometheus and the kubelet's probes need none).
///
/// ```yaml
/// metrics:
///   listen: 0.0.0.0:9090
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MetricsConfig {
    /// Address to listen on. Example: `0.0.0.0:9090`
    pub listen: SocketAddr,
}

/// `api:` as written, before the checks that span its fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawApiConfig {
    listen: SocketAddr,
    #[serde(default)]
    auth: AuthMode,
    #[serde(default)]
    allow_unauthenticated: bool,
    #[serde(
        rename = "authCacheTTL",
        default = "default_ttl",
        with = "humantime_serde"
    )]
    auth_cache_ttl: Duration,
    #[serde(default)]
    tls: Option<TlsConfig>,
    #[serde(default)]
    limits: Limits,
}

fn default_ttl() -> Duration {
    Duration::from_secs(10)
}

impl TryFrom<RawApiConfig> for ApiConfig {
    type Error = String;

    fn try_from(r: RawApiConfig) -> Result<Self, String> {
        if r.auth == AuthMode::None && !r.listen.ip().is_loopback() && !r.allow_unauthenticated {
            return Err(format!(
                "auth: none on {} would let anyone who can reach that address read what herald \
                 caches and add watches; listen on loopback (127.0.0.1), use auth: delegated, \
                 or set allowUnauthenticated: true",
                r.listen
            ));
        }
        if r.auth_cache_ttl > Duration::from_secs(300) {
            return Err(format!(
                "authCacheTTL: {} is over 5m: a revoked permission would stay usable that long",
                humantime::format_duration(r.auth_cache_ttl)
            ));
        }
        if r.limits.max_connections == 0 || r.limits.max_list_limit == 0 {
            return Err("limits: maxConnections and maxListLimit must be at least 1".into());
        }
        Ok(ApiConfig {
            listen: r.listen,
            auth: r.auth,
            allow_unauthenticated: r.allow_unauthenticated,
            auth_cache_ttl: r.auth_cache_ttl,
            tls: r.tls,
            limits: r.limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ApiConfig, String> {
        let de = serde_yaml_ng::Deserializer::from_str(yaml);
        serde_path_to_error::deserialize(de).map_err(|e| e.inner().to_string())
    }

    #[test]
    fn delegated_auth_is_the_default() {
        let c = parse("listen: 0.0.0.0:8443").expect("parses");
        assert_eq!(c.auth, AuthMode::Delegated);
        assert_eq!(c.auth_cache_ttl, Duration::from_secs(10));
        assert_eq!(c.limits.max_connections, 512);
    }

    #[test]
    fn no_auth_only_on_loopback_unless_allowed() {
        assert!(parse("listen: 127.0.0.1:8080\nauth: none").is_ok());
        assert!(parse("listen: '[::1]:8080'\nauth: none").is_ok());
        let err = parse("listen: 0.0.0.0:8080\nauth: none").expect_err("refused");
        assert!(err.contains("auth: none on 0.0.0.0:8080"), "{err}");
        assert!(err.contains("allowUnauthenticated"), "{err}");
        assert!(parse("listen: 0.0.0.0:8080\nauth: none\nallowUnauthenticated: true").is_ok());
    }

    #[test]
    fn unknown_fields_and_long_ttls_are_errors() {
        let err = parse("listen: 0.0.0.0:8443\nauthTTL: 1s").expect_err("unknown");
        assert!(err.contains("authTTL"), "{err}");
        let err = parse("listen: 0.0.0.0:8443\nauthCacheTTL: 1h").expect_err("too long");
        assert!(err.contains("authCacheTTL: 1h"), "{err}");
    }
}
