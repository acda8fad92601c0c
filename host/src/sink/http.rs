//! What the HTTP sinks share: the client (rustls, timeouts, no redirects),
//! authentication, and how a response decides the fate of a delivery.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};

use std::collections::BTreeMap;

use super::config::{AuthConfig, TlsConfig};
use super::error::BuildError;
use super::secret::{Secret, SecretRef};

/// The result of one attempt.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Delivered (2xx).
    Delivered,
    /// Try again after the backoff, and no sooner than `after` if the
    /// receiver said so (`Retry-After`).
    Retry {
        /// The receiver's `Retry-After`.
        after: Option<Duration>,
        /// What happened, for the log.
        reason: String,
    },
    /// Some of a group were refused for good (by index in the group, with
    /// the reason), the others delivered (a NATS group).
    Partial {
        /// Index in the group and the broker's reason.
        refused: Vec<(usize, String)>,
    },
    /// The receiver refused it for good (other 4xx, 3xx): dead letter.
    Rejected {
        /// What happened, with the response body.
        reason: String,
    },
    /// 410 Gone: the endpoint is gone; disable the sink.
    Gone {
        /// What happened, with the response body.
        reason: String,
    },
}

/// Most bytes of a response body kept for a log line or a dead letter.
const BODY_SNIPPET: usize = 1024;

/// Classifies a response: 2xx delivered; 408, 429 and 5xx retried
/// (honouring `Retry-After`); 410 gone; anything else rejected with the body.
pub(crate) async fn classify(resp: Response) -> Attempt {
    let status = resp.status();
    if status.is_success() {
        // Read the body so the connection can be reused.
        let _ = resp.bytes().await;
        return Attempt::Delivered;
    }
    let after = retry_after(resp.headers());
    let body = snippet(resp).await;
    let reason = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    match status {
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            Attempt::Retry { after, reason }
        }
        s if s.is_server_error() => Attempt::Retry { after, reason },
        StatusCode::GONE => Attempt::Gone { reason },
        s if s.is_redirection() => Attempt::Rejected {
            reason: format!("{reason} (redirects are not followed)"),
        },
        _ => Attempt::Rejected { reason },
    }
}

/// A transport error (connect, TLS, timeout): retried.
pub(crate) fn transport_error(e: reqwest::Error) -> Attempt {
    // The URL can be a secret (a Slack webhook, a token in a query): it
    // never goes into a reason, which reaches logs, `/sinks` and dead letters.
    let e = e.without_url();
    let mut reason = if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    Attempt::Retry {
        after: None,
        reason,
    }
}

async fn snippet(resp: Response) -> String {
    match resp.bytes().await {
        Ok(b) => {
            let s = String::from_utf8_lossy(&b[..b.len().min(BODY_SNIPPET)]).into_owned();
            if b.len() > BODY_SNIPPET {
                format!("{s}… ({} bytes)", b.len())
            } else {
                s
            }
        }
        Err(_) => String::new(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The client of one sink: rustls with the built-in roots plus `tls.caFile`,
/// a client certificate for mTLS, the request timeout, and no redirects.
///
/// # Errors
/// A TLS file that cannot be read or used, or settings reqwest refuses.
pub(crate) fn client(
    timeout: Duration,
    tls: Option<&TlsConfig>,
) -> Result<reqwest::Client, BuildError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = tls {
        b = tls_options(b, tls)?;
    }
    b.build().map_err(BuildError::Client)
}

fn read(field: &'static str, path: &std::path::Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|error| BuildError::Read {
        field,
        path: path.to_path_buf(),
        error,
    })
}

fn tls_options(
    mut b: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, BuildError> {
    if let Some(ca) = &tls.ca_file {
        let pem = read("tls.caFile", ca)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| BuildError::NotPem {
                path: ca.clone(),
                error,
            })?;
        if certs.is_empty() {
            return Err(BuildError::NoCertificate(ca.clone()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read("tls.certFile", cert)?;
        pem.push(b'\n');
        pem.extend(read("tls.keyFile", key)?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|error| BuildError::Identity {
            cert: cert.clone(),
            key: key.clone(),
            error,
        })?;
        b = b.identity(id);
    }
    if tls.insecure_skip_verify {
        tracing::warn!(
            "tls.insecureSkipVerify is set: certificates of this sink's endpoint are NOT checked"
        );
        b = b.danger_accept_invalid_certs(true);
    }
    Ok(b)
}

/// Authentication and custom headers, resolved once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Auth {
    basic: Option<(Secret, Secret)>,
    bearer: Option<Secret>,
    headers: HeaderMap,
}

impl Auth {
    /// Reads the secrets and checks the header names and values.
    ///
    /// # Errors
    /// A secret that cannot be read, or a header that is not one.
    pub(crate) fn new(
        auth: Option<&AuthConfig>,
        headers: &BTreeMap<String, String>,
    ) -> Result<Self, BuildError> {
        let secret = |field: &str, r: &SecretRef| {
            r.resolve().map_err(|error| BuildError::Secret {
                field: field.into(),
                error,
            })
        };
        let mut out = Auth::default();
        if let Some(AuthConfig {
            basic,
            bearer_token_file,
        }) = auth
        {
            if let Some(b) = basic {
                out.basic = Some((
                    secret("auth.basic.username", &b.username)?,
                    secret("auth.basic.password", &b.password)?,
                ));
            }
            if let Some(path) = bearer_token_file {
                let r = SecretRef {
                    env: None,
                    file: Some(path.clone()),
                };
                out.bearer = Some(secret("auth.bearerTokenFile", &r)?);
            }
        }
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| BuildError::HeaderName(k.clone()))?;
            let value = HeaderValue::from_str(v).map_err(|_| BuildError::HeaderValue(k.clone()))?;
            out.headers.insert(name, value);
        }
        Ok(out)
    }

    /// Adds the headers and credentials to a request.
    pub(crate) fn apply(&self, mut rb: RequestBuilder) -> RequestBuilder {
        rb = rb.headers(self.headers.clone());
        if let Some((u, p)) = &self.basic {
            rb = rb.basic_auth(u.expose(), Some(p.expose()));
        }
        if let Some(t) = &self.bearer {
            rb = rb.bearer_auth(t.expose());
        }
        rb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[tokio::test]
    async fn a_transport_error_never_carries_the_url() {
        // A Slack webhook URL is a secret; so can a token in a query be.
        let err = reqwest::Client::new()
            .post("http://127.0.0.1:1/services/T000/B000/s3cr3t-hook?token=abc")
            .send()
            .await
            .expect_err("nothing listens on port 1");
        let Attempt::Retry { reason, .. } = transport_error(err) else {
            panic!("a connect error is retried");
        };
        assert!(reason.starts_with("cannot connect"), "{reason}");
        assert!(!reason.contains("s3cr3t"), "{reason}");
        assert!(!reason.contains("token"), "{reason}");
    }
}
