//! Batch bodies: `{"cluster", "metadata", "items": [envelope…]}`, each item
//! encoded once when it is queued, so a lane counts bytes as it fills a
//! request.

use serde_json::{Map, Value};

use crate::sink::config::OldState;
use crate::sink::notification::Notification;

/// How one batch sink encodes its requests.
#[derive(Debug, Clone)]
pub(super) struct Encoder {
    pub(super) sink: String,
    pub(super) cluster: String,
    pub(super) old: OldState,
    pub(super) metadata: Map<String, Value>,
}

impl Encoder {
    /// One item of the `items` array.
    pub(super) fn item(&self, n: &Notification) -> Vec<u8> {
        n.envelope_ref(&self.sink, &Map::new(), self.old).to_vec()
    }

    /// Bytes a request carries besides its items.
    pub(super) fn overhead(&self) -> usize {
        64 + self.cluster.len() + serde_json::to_vec(&self.metadata).map_or(0, |v| v.len())
    }

    /// A request body around `items` (`item`'s bytes).
    pub(super) fn body(&self, items: &[&[u8]]) -> Vec<u8> {
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
        body
    }
}
