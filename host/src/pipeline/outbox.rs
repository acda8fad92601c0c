//! The state dir's outbox as the sinks see it ([`Outbox`]).

use std::sync::Arc;

use futures::FutureExt;

use crate::sink::{Outbox, OutboxError, Ready};
use crate::state::{Op, StateStore};

/// [`StateStore`]'s per-sink outbox behind the sinks' [`Outbox`] trait.
pub(super) struct StateOutbox(Arc<StateStore>);

impl StateOutbox {
    /// The outbox of `store`.
    pub(super) fn new(store: Arc<StateStore>) -> Self {
        StateOutbox(store)
    }
}

/// The outbox of `store`, for the sinks.
pub(crate) fn state_outbox(store: &Arc<StateStore>) -> Arc<dyn Outbox> {
    Arc::new(StateOutbox::new(store.clone()))
}

impl Outbox for StateOutbox {
    fn enqueue(&self, sink: &str, id: &str, payload: &[u8]) -> Ready {
        // Called from a sink's lane: never blocks the async runtime.
        let ticket = self.0.submit_nonblocking(vec![Op::Enqueue {
            sink: sink.to_string(),
            id: id.to_string(),
            payload: payload.to_vec(),
        }]);
        async move { ticket.await.map_err(OutboxError::new) }
            .boxed()
            .shared()
    }

    fn ack(&self, sink: &str, id: &str) {
        // Not awaited: an ack lost in a crash means one redelivery with the
        // same id.
        drop(self.0.submit_nonblocking(vec![Op::Ack {
            sink: sink.to_string(),
            id: id.to_string(),
        }]));
    }

    fn pending(&self, sink: &str) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
        let entries = self.0.pending(sink).map_err(OutboxError::new)?;
        Ok(entries
            .filter_map(|e| match e {
                Ok(entry) => Some(entry),
                Err(error) => {
                    tracing::error!(sink, "unreadable outbox entry, skipped: {error}");
                    None
                }
            })
            .collect())
    }

    fn flush(&self) -> Result<(), OutboxError> {
        self.0.flush().map_err(OutboxError::new)
    }
}
