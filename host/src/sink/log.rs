//! The log sink: each notification as one JSON line (herald's raw envelope)
//! on standard output, for clusters whose log pipeline is the integration
//! point (kwatchman's log handler).

use std::io::Write;

use serde_json::{Map, Value};

use super::config::{OldState, SinkConfig};
use super::http::Attempt;
use super::notification::Notification;

/// A built log sink.
#[derive(Debug, Clone)]
pub struct LogOut {
    sink: String,
    old: OldState,
    metadata: Map<String, Value>,
}

impl LogOut {
    /// Builds the sink.
    pub fn new(cfg: &SinkConfig) -> Self {
        LogOut {
            sink: cfg.name.clone(),
            old: cfg.old_state(),
            metadata: cfg.metadata.clone().into_iter().collect(),
        }
    }

    /// Writes one line. A closed stdout is retried (and logged) like any
    /// failing endpoint.
    pub fn write(&self, n: &Notification) -> Attempt {
        let line = serde_json::to_vec(&n.envelope_ref(&self.sink, &self.metadata, self.old))
            .expect("JSON");
        let mut out = std::io::stdout().lock();
        match out
            .write_all(&line)
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush())
        {
            Ok(()) => Attempt::Delivered,
            Err(e) => Attempt::Retry {
                after: None,
                reason: format!("cannot write to standard output: {e}"),
            },
        }
    }
}
