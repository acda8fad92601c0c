//! A built batch sink: its client, and one attempt to deliver a batch.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::config::BatchConfig;
use super::encoder::Encoder;
use crate::sink::error::BuildError;
use crate::sink::http::{self, Attempt, Auth};
use crate::sink::notification::Notification;
use crate::sink::signing::Signer;
use crate::sink::webhook::{sign, signer};

/// A built batch sink.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Auth,
    signer: Option<Signer>,
    encoder: Encoder,
    /// Most notifications per request.
    pub max_objects: usize,
    /// Most body bytes per request (one larger item goes alone).
    pub max_bytes: usize,
    /// Longest a batch waits to fill.
    pub interval: Duration,
}

impl Batch {
    /// Builds the sink `name` for `cluster`.
    ///
    /// # Errors
    /// What cannot be read or used, naming the field.
    pub(crate) fn new(name: &str, cfg: &BatchConfig, cluster: &str) -> Result<Self, BuildError> {
        let url =
            reqwest::Url::parse(cfg.url.as_deref().unwrap_or_default()).map_err(BuildError::Url)?;
        Ok(Batch {
            client: http::client(cfg.timeout, cfg.tls.as_ref())?,
            url,
            auth: Auth::new(cfg.auth.as_ref(), &cfg.headers)?,
            signer: signer(cfg.signing.as_ref())?,
            encoder: Encoder {
                sink: name.to_string(),
                cluster: cluster.into(),
                old: cfg.old,
                metadata: cfg.metadata.clone().into_iter().collect(),
            },
            max_objects: cfg.max_objects,
            max_bytes: usize::try_from(cfg.max_bytes.as_u64()).unwrap_or(usize::MAX),
            interval: cfg.interval,
        })
    }

    /// One item of the `items` array, encoded once when it is queued.
    pub(crate) fn encode_item(&self, n: &Notification) -> Vec<u8> {
        self.encoder.item(n)
    }

    /// Bytes a request carries besides its items.
    pub(crate) fn overhead(&self) -> usize {
        self.encoder.overhead()
    }

    /// One attempt to deliver a batch; `items` are `encode_item`'s bytes.
    pub(crate) async fn send(&self, batch: &[&Notification], items: &[&[u8]]) -> Attempt {
        match self.request(batch, items).send().await {
            Ok(resp) => http::classify(resp).await,
            Err(err) => http::transport_error(err),
        }
    }

    /// The request that posts `batch` (encoded as `items`), as
    /// [`Batch::send`] sends it.
    pub(crate) fn request(
        &self,
        batch: &[&Notification],
        items: &[&[u8]],
    ) -> reqwest::RequestBuilder {
        let body = self.encoder.body(items);
        // The batch's id: a digest of its items' ids, so a retried batch
        // keeps its id.
        let mut h = Sha256::new();
        for n in batch {
            h.update(n.id(&self.encoder.sink).as_bytes());
        }
        let id = format!("msg_{}", hex::encode(&h.finalize()[..16]));
        let mut rb = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("herald-batch-size", batch.len().to_string());
        rb = self.auth.apply(rb);
        rb = sign(self.signer.as_ref(), rb, &id, &body);
        rb.body(body)
    }
}
