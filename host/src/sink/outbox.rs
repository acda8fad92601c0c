//! What the sinks need of a durable outbox, and the receipt a notification
//! carries: the sinks deliver what they are given and say when they are done
//! with it, without knowing who keeps the outbox or who waits on the receipt.

use std::any::Any;
use std::sync::Arc;

use futures::future::{BoxFuture, Shared};

/// Resolves when a write to the outbox is on disk (or failed, with why).
pub type Ready = Shared<BoxFuture<'static, Result<(), OutboxError>>>;

/// A write to or read of the outbox that failed. The outbox's own error is
/// kept (shared, as a [`Ready`] hands it to every lane that waits), and is what
/// this prints.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct OutboxError(Arc<dyn std::error::Error + Send + Sync>);

impl OutboxError {
    /// The outbox failed with `cause`.
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        OutboxError(Arc::new(cause))
    }
}

/// A durable outbox of notifications per sink (herald's state dir).
pub trait Outbox: Send + Sync + 'static {
    /// Appends an entry for `sink` (a dead letter's copy).
    fn enqueue(&self, sink: &str, id: &str, payload: &[u8]) -> Ready;
    /// Forgets a delivered entry; need not wait for the disk (an ack lost in a
    /// crash is one redelivery with the same id).
    fn ack(&self, sink: &str, id: &str);
    /// The entries of `sink` not yet acknowledged, oldest first: (id, payload).
    ///
    /// # Errors
    /// The outbox cannot be read.
    fn pending(&self, sink: &str) -> Result<Vec<(String, Vec<u8>)>, OutboxError>;
    /// Makes every write submitted so far readable by [`Outbox::pending`].
    /// Blocks: call it off the async runtime.
    ///
    /// # Errors
    /// A write failed.
    fn flush(&self) -> Result<(), OutboxError>;
}

/// Held by a notification for whoever handed it to the sinks: dropped when the
/// last copy of the notification is, that is once every sink it went to has
/// delivered or dead-lettered it. Opaque to the sinks.
#[derive(Clone)]
pub struct Receipt(#[allow(dead_code)] Arc<dyn Any + Send + Sync>);

impl Receipt {
    /// A receipt that drops `guard` when the notification is settled.
    pub fn new(guard: Arc<dyn Any + Send + Sync>) -> Self {
        Receipt(guard)
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipt")
    }
}

impl PartialEq for Receipt {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
