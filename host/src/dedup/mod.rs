//! Emit dedup: drops a change whose object, as it would be emitted, equals the
//! last state emitted for the same uid.
//!
//! Start at [`Dedup`]: [`Dedup::observe`] takes every change before the plugin
//! chain runs and answers [`Verdict::Emit`] or [`Verdict::Duplicate`].
//! [`ObjectHasher`] computes the 128-bit [`ObjectHash`] it compares, with the
//! noise fields of [`DedupSettings`] left out; the hash is stable across
//! processes and versions, so [`crate::state`] persists it and
//! [`Dedup::seed`] warms a new process from it.
//!
//! # The invariant
//!
//! Each distinct emitted state of an object is notified once: for one uid,
//! two notifications in a row never carry the same state, nothing is notified
//! after its DELETED, and every change that makes the state differ from the
//! last one emitted is notified. "State" is the object with
//! [`ALWAYS_EXCLUDED`](settings::ALWAYS_EXCLUDED) and [`DedupSettings::exclude`] removed, so relists,
//! resyncs, watch restarts and the initial list of a warm cache notify nothing
//! for unchanged objects. `tests/dedup.rs` checks this against a model over
//! 100k random sequences.
//!
//! # Limits
//!
//! - The cache is bounded ([`DedupSettings::capacity`]) and forgets a uid not
//!   observed for [`DedupSettings::ttl`]. A forgotten uid is unknown, and its
//!   next change is emitted even when it equals the last one: after an
//!   eviction a resync or relist can notify an unchanged object once more. Set
//!   `ttl` above the resync period and `capacity` above the number of watched
//!   objects. With a state dir, seed the cache from [`crate::state`] at start.
//! - Only the last emitted state is kept. An out-of-order replay of an older
//!   state (A, B, then A again) is a real change from dedup's point of view and
//!   is emitted. kube's watcher never does this: it resumes from the last
//!   resourceVersion it saw, and a relist delivers current states.

mod cache;
mod hash;
mod settings;

pub use cache::{Dedup, DedupStats, Verdict};
pub use hash::{ObjectHash, ObjectHasher};
pub use settings::{DedupSettings, SettingsError};
