//! The source: list-watch of the configured types, turning every change into a
//! [`ChangeEvent`](crate::change::ChangeEvent) and keeping the [`cache`](crate::cache).
//!
//! Start with [`Sources`]: build a client with [`client`], create `Sources` with a
//! channel for the changes, and [`Sources::add`] a [`WatchSpec`] per type.

mod activity;
mod client;
mod compact;
mod diff;
mod error;
pub mod matching;
mod object;
mod resolve;
mod resume;
mod secrets;
mod settings;
mod sources;
mod spec;
mod status;
mod watch;

pub use client::client;
pub use error::{Error, Result};
pub use resume::Checkpoints;
pub(crate) use resume::stream_key;
pub(crate) use secrets::SecretData;
pub use secrets::SecretKey;
pub use settings::{InitialList, RetryBackoff, SourceSettings};
pub use sources::Sources;
pub use spec::WatchSpec;
pub use status::{ResourceInfo, ScopeReport, WatchState, WatchStatus};
