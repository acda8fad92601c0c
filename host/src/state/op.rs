//! What a [`StateStore`](super::StateStore) is told to write ([`Op`]), how its
//! writer is tuned, and the [`Ticket`] a submission hands back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use super::record::ObjectRecord;
use super::{Error, Result};

/// Tuning of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// After the first write of a group arrives, wait this long for more
    /// before committing. Zero still groups whatever queued up while the
    /// previous commit was syncing.
    pub linger: Duration,
    /// Most operations in one commit.
    pub max_batch: usize,
    /// Writes queued and not yet committed before [`StateStore::submit`](super::StateStore::submit)
    /// blocks the caller (back-pressure when the disk is slow).
    pub queue: usize,
    /// redb's quick repair: each commit also saves the allocator state (and
    /// syncs twice), so reopening after a crash does not walk the whole file.
    /// Off by default: it doubles the syncs per commit (at 5k events/s the
    /// median time-to-durable went from 4–5 ms to 9–11 ms, CPU per event
    /// within noise), while the full repair it saves takes about 0.1 s per 10k
    /// stored pods (BENCHMARKS.md), once, after a crash.
    pub quick_repair: bool,
    /// redb's page cache, bytes.
    pub cache_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            linger: Duration::from_millis(2),
            max_batch: 4096,
            queue: 16 * 1024,
            quick_repair: false,
            cache_size: 64 * 1024 * 1024,
        }
    }
}

/// One write. A [`StateStore::submit`](super::StateStore::submit) of several is one transaction: all or
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store (replace) the record of `uid`.
    PutObject(ObjectRecord),
    /// Forget a uid (its DELETED was emitted). No-op if unknown.
    RemoveObject {
        /// The uid.
        uid: String,
    },
    /// Append to a sink's outbox. No-op if `id` is already pending there
    /// (a retry keeps its place).
    Enqueue {
        /// Sink name.
        sink: String,
        /// The notification id (stable across retries and restarts).
        id: String,
        /// What to deliver.
        payload: Vec<u8>,
    },
    /// Raise the resourceVersion up to which a watch stream (`key`) has been
    /// processed; a lower one than stored is ignored. A restart resumes the
    /// stream after it.
    Checkpoint {
        /// The stream: a watch id, or `watch/namespace` for a watch of listed namespaces.
        key: String,
        /// The resourceVersion.
        rv: u64,
    },
    /// A watch completed a list with this state dir: from now on, an object
    /// of its first list that the state does not know is new, not one that was
    /// there before herald first started.
    Listed {
        /// The watch id.
        watch: String,
    },
    /// Remove a delivered entry from a sink's outbox. No-op if not pending.
    Ack {
        /// Sink name.
        sink: String,
        /// The id given to [`Op::Enqueue`].
        id: String,
    },
}

/// Counters of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Durable commits (each one sync of the file, two with quick repair).
    pub commits: u64,
    /// Operations committed.
    pub ops: u64,
}

/// Resolves when the writes it stands for are durable (or failed). Await it
/// in async code, or [`Ticket::wait`] on a plain thread. Dropping it does not
/// cancel the writes.
#[must_use = "a write is durable only once its ticket resolves"]
#[derive(Debug)]
pub struct Ticket(pub(super) oneshot::Receiver<Result<()>>);

impl Ticket {
    /// Blocks until the writes are durable. Do not call it on an async
    /// runtime's thread: `.await` the ticket there.
    ///
    /// # Errors
    ///
    /// The commit failed (nothing of the submission was written), or the
    /// store was closed first.
    pub fn wait(self) -> Result<()> {
        futures::executor::block_on(self)
    }
}

impl Future for Ticket {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}
