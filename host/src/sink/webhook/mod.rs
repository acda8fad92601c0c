//! The webhook sink: one POST per notification, raw or CloudEvents,
//! authenticated, optionally signed (Standard Webhooks).

pub mod encoder;

use std::time::{SystemTime, UNIX_EPOCH};

use super::config::{Format, SinkConfig};
use super::http::{self, Attempt, Auth};
use super::notification::Notification;
use super::signing::Signer;
use encoder::Encoder;

/// A built webhook sink.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Auth,
    signer: Option<Signer>,
    encoder: Encoder,
}

/// Reads the signing secrets of a webhook or batch sink.
pub fn signer(cfg: &SinkConfig) -> Result<Option<Signer>, String> {
    let Some(s) = &cfg.signing else {
        return Ok(None);
    };
    let mut secrets = Vec::new();
    for (i, r) in s.secrets.iter().enumerate() {
        secrets.push(
            r.resolve()
                .map_err(|e| format!("signing.secrets[{i}]: {e}"))?,
        );
    }
    Signer::new(&secrets, |i| format!("signing.secrets[{i}]")).map(Some)
}

/// Adds the Standard Webhooks headers for message `id` and `body`.
pub fn sign(
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
    /// Builds the sink: client, secrets, encoder. Errors name the field.
    pub fn new(cfg: &SinkConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(cfg.url.as_deref().unwrap_or_default())
            .map_err(|e| format!("url: {e}"))?;
        Ok(Webhook {
            client: http::client(cfg)?,
            url,
            auth: Auth::new(cfg)?,
            signer: signer(cfg)?,
            encoder: Encoder {
                sink: cfg.name.clone(),
                format: cfg.format.unwrap_or(Format::Raw),
                mode: cfg.mode.unwrap_or_default(),
                old: cfg.old_state(),
                metadata: cfg.metadata.clone().into_iter().collect(),
            },
        })
    }

    /// One attempt to deliver `n`.
    pub async fn send(&self, n: &Notification) -> Attempt {
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
        match rb.body(e.body).send().await {
            Ok(resp) => http::classify(resp).await,
            Err(err) => http::transport_error(err),
        }
    }
}
