//! A built webhook sink, and the Standard Webhooks headers it shares with
//! the batch sink.

use std::time::{SystemTime, UNIX_EPOCH};

use super::config::WebhookConfig;
use super::encoder::Encoder;
use crate::sink::config::SigningConfig;
use crate::sink::error::BuildError;
use crate::sink::http::{self, Attempt, Auth};
use crate::sink::notification::Notification;
use crate::sink::signing::Signer;

/// A built webhook sink.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Auth,
    signer: Option<Signer>,
    encoder: Encoder,
}

/// Reads the signing secrets of a webhook or batch sink.
///
/// # Errors
/// A secret that cannot be read or is not a key.
pub(crate) fn signer(signing: Option<&SigningConfig>) -> Result<Option<Signer>, BuildError> {
    let Some(s) = signing else {
        return Ok(None);
    };
    let mut secrets = Vec::new();
    for (i, r) in s.secrets.iter().enumerate() {
        secrets.push(r.resolve().map_err(|error| BuildError::Secret {
            field: format!("signing.secrets[{i}]"),
            error,
        })?);
    }
    Signer::new(&secrets, |i| format!("signing.secrets[{i}]")).map(Some)
}

/// Adds the Standard Webhooks headers for message `id` and `body`.
pub(crate) fn sign(
    signer: Option<&Signer>,
    rb: reqwest::RequestBuilder,
    id: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let Some(signer) = signer else {
        return rb;
    };
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    rb.header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signer.signature(id, ts, body))
}

impl Webhook {
    /// Builds the sink `name`: client, secrets, encoder.
    ///
    /// # Errors
    /// What cannot be read or used, naming the field.
    pub(crate) fn new(name: &str, cfg: &WebhookConfig) -> Result<Self, BuildError> {
        let url =
            reqwest::Url::parse(cfg.url.as_deref().unwrap_or_default()).map_err(BuildError::Url)?;
        Ok(Webhook {
            client: http::client(cfg.timeout, cfg.tls.as_ref())?,
            url,
            auth: Auth::new(cfg.auth.as_ref(), &cfg.headers)?,
            signer: signer(cfg.signing.as_ref())?,
            encoder: Encoder {
                sink: name.to_string(),
                format: cfg.format,
                mode: cfg.mode.unwrap_or_default(),
                old: cfg.old,
                metadata: cfg.metadata.clone().into_iter().collect(),
            },
        })
    }

    /// One attempt to deliver `n`.
    pub(crate) async fn send(&self, n: &Notification) -> Attempt {
        match self.request(n).send().await {
            Ok(resp) => http::classify(resp).await,
            Err(err) => http::transport_error(err),
        }
    }

    /// The request that delivers `n` (what [`Webhook::send`] sends).
    pub(crate) fn request(&self, n: &Notification) -> reqwest::RequestBuilder {
        let e = self.encoder.encode(n);
        let id = n.id(&self.encoder.sink);
        let mut rb = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, e.content_type);
        rb = self.auth.apply(rb);
        for (k, v) in &e.headers {
            rb = rb.header(*k, v);
        }
        rb = sign(self.signer.as_ref(), rb, &id, &e.body);
        rb.body(e.body)
    }
}
