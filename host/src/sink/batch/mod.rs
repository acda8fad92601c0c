//! The batch sink (watch-proxy's remote endpoints): up to `maxObjects`
//! notifications or `maxBytes` of body per POST, flushed at least every
//! `interval`. The body is `{"cluster", "metadata", "items": [envelope…]}`.

use bytesize::ByteSize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::config::{OldState, SinkConfig};
use super::http::{self, Attempt, Auth};
use super::notification::Notification;
use super::signing::Signer;
use super::webhook::{sign, signer};

/// A built batch sink.
#[derive(Debug, Clone)]
pub struct Batch {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Auth,
    signer: Option<Signer>,
    sink: String,
    cluster: String,
    old: OldState,
    metadata: Map<String, Value>,
    /// Most notifications per request.
    pub max_objects: usize,
    /// Most body bytes per request (one larger item goes alone).
    pub max_bytes: usize,
}

impl Batch {
    /// Builds the sink. Errors name the field.
    pub fn new(cfg: &SinkConfig, cluster: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(cfg.url.as_deref().unwrap_or_default())
            .map_err(|e| format!("url: {e}"))?;
        Ok(Batch {
            client: http::client(cfg)?,
            url,
            auth: Auth::new(cfg)?,
            signer: signer(cfg)?,
            sink: cfg.name.clone(),
            cluster: cluster.into(),
            old: cfg.old_state(),
            metadata: cfg.metadata.clone().into_iter().collect(),
            max_objects: cfg.max_objects.unwrap_or(10),
            max_bytes: cfg.max_bytes.unwrap_or(ByteSize::mib(1)).as_u64() as usize,
        })
    }

    /// One item of the `items` array, encoded once when it is queued.
    pub fn encode_item(&self, n: &Notification) -> Vec<u8> {
        serde_json::to_vec(&n.envelope_ref(&self.sink, &Map::new(), self.old)).expect("JSON")
    }

    /// Bytes a request carries besides its items.
    pub fn overhead(&self) -> usize {
        64 + self.cluster.len() + serde_json::to_vec(&self.metadata).map_or(0, |v| v.len())
    }

    /// One attempt to deliver a batch; `items` are `encode_item`'s bytes.
    pub async fn send(&self, batch: &[&Notification], items: &[&[u8]]) -> Attempt {
        let mut body =
            Vec::with_capacity(self.overhead() + items.iter().map(|i| i.len() + 1).sum::<usize>());
        body.extend_from_slice(b"{\"cluster\":");
        serde_json::to_writer(&mut body, &self.cluster).expect("JSON");
        body.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut body, &self.metadata).expect("JSON");
        body.extend_from_slice(b",\"items\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item);
        }
        body.extend_from_slice(b"]}");
        // The batch's id: a digest of its items' ids, so a retried batch
        // keeps its id.
        let mut h = Sha256::new();
        for n in batch {
            h.update(n.id(&self.sink).as_bytes());
        }
        let id = format!("msg_{}", hex::encode(&h.finalize()[..16]));
        let mut rb = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("herald-batch-size", batch.len().to_string());
        rb = self.auth.apply(rb);
        rb = sign(self.signer.as_ref(), rb, &id, &body);
        match rb.body(body).send().await {
            Ok(resp) => http::classify(resp).await,
            Err(err) => http::transport_error(err),
        }
    }
}
