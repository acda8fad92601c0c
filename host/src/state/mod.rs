//! The durable state dir (`stateDir`): per object the last emitted state, per
//! sink the outbox of notifications not yet acknowledged, and the restart
//! catch-up that compares a fresh list with them.
//!
//! Start at [`StateStore`]: [`StateStore::submit`] queues writes to a writer
//! thread that group-commits them and hands back a [`Ticket`] that resolves
//! once they are durable. [`vanished`] finds, after a restart, what was deleted
//! while herald was down.
//!
//! # Why redb
//!
//! [redb](https://docs.rs/redb) is a copy-on-write B-tree in one file, in pure
//! Rust, with no background threads. A commit is atomic across tables (an
//! object's record and the outbox entries of its notification land together
//! or not at all), and a durable commit is one `fsync` (redb's checksummed
//! one-phase commit). It needs no log replay or compaction to stay
//! consistent: after SIGKILL the file opens at its last durable commit. Range scans give
//! the outbox in enqueue order and a watch's objects together. fjall (an LSM
//! tree) writes less per event (a journal append instead of rewriting B-tree
//! pages) but brings flush and compaction threads, a journal to replay on
//! open and more dependencies; with group commit the B-tree's cost is
//! spread over the events of a commit: at 5k events/s of 6.6 KB pods it
//! costs 53–64 µs of CPU per event (record, outbox entry and ack), 1.4–1.6x
//! the floor of appending the same bytes to a file with the same fsyncs,
//! and takes 15k–43k events/s unpaced on this shared machine
//! (BENCHMARKS.md).
//!
//! # What to write when
//!
//! - On an emitted change (after [`crate::dedup::Verdict::Emit`], whatever
//!   the plugins then decide): [`Op::PutObject`] (ADDED, MODIFIED) or
//!   [`Op::RemoveObject`] (DELETED), in the same [`StateStore::submit`] as an
//!   [`Op::Enqueue`] per sink the notification goes to. Deliver once the
//!   ticket resolves; [`Op::Ack`] after the sink accepted it (no need to wait
//!   for that ticket: a lost ack redelivers with the same id).
//! - A crash between the dedup decision and the commit loses nothing: the
//!   store still holds the older state, so the next start reports the
//!   change again.
//! - At start: seed [`crate::dedup::Dedup`] from [`StateStore::hashes`],
//!   resume each sink from [`StateStore::pending`], and after each watch's
//!   first list run [`vanished`] with [`StateStore::objects`]; the first list
//!   itself goes through the pipeline's admission stage, which compares it
//!   with the seeded states.

mod catchup;
mod op;
mod record;
mod store;
mod writer;

#[cfg(test)]
mod crash_tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use catchup::vanished;
pub use op::{Op, StoreOptions, StoreStats, Ticket};
pub use record::ObjectRecord;
pub use store::{FILE_NAME, StateStore};

/// What can go wrong with the state dir.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state dir cannot be created (or the writer thread not started).
    #[error("state dir {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file cannot be opened: locked by another process, not a
    /// redb file, or unrecoverable.
    #[error("open state file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// A read or a commit failed; a failed commit wrote nothing.
    #[error("state store")]
    Storage(#[source] Arc<redb::Error>),
    /// A stored value does not decode.
    #[error("state store: corrupt {0}")]
    Corrupt(String),
    /// A stored object is not JSON.
    #[error("state store: object JSON")]
    Json(#[source] serde_json::Error),
    /// The store was dropped before the write was committed.
    #[error("state store closed")]
    Closed,
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
