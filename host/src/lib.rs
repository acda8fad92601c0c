//! herald: a Kubernetes change-notification gateway.
//!
//! The modules follow the data flow:
//!
//! - [`source`]: list-watch of the configured types (kube-rs), emitting changes.
//! - [`cache`]: the stores the watches fill, read by the query API.
//! - [`change`]: the change event every stage passes on.
//! - [`dedup`]: drops changes whose state equals the last one emitted.
//! - [`state`]: the durable state dir (last emitted state per object, sink outboxes).
//! - [`plugin`]: the sandboxed WebAssembly plugin runtime and plugin chains.
//! - [`pipeline`]: the thread that runs each change through its watch's chain.
//! - [`api`]: the HTTP query and admin APIs over the cache and the watches.
//! - [`decisions`]: the ring of what was decided about each recent change.
//! - [`sink`]: webhook, Slack, batch and log sinks and reliable delivery.
//! - [`ha`]: leader election on a Lease; only the leader delivers.
//! - [`metrics`]: Prometheus metrics on `/metrics`.
//! - [`app`]: the composition root; `app::Herald` wires the parts above.
//! - [`run`]: `herald run`, the main job; [`demo`]: `herald demo`; [`cli`]: the
//!   rest of the `herald` command line.
//!
//! # Public API
//!
//! The library serves the `herald` binary (`src/main.rs`), the tests in
//! `host/tests` and `tests/e2e`, and the benches in `host/benches`; what they
//! use is `pub`, everything else is `pub(crate)`, so unused code warns.
//!
//! - the commands: [`run::run`], [`demo::run`], [`cli::plugin`] with their
//!   arguments, and [`app::load_config`] / [`app::parse_config`] for
//!   `herald config check` and the log settings;
//! - the stages, each testable alone: [`source::Sources`] and
//!   [`source::client`], [`dedup::Dedup`], [`plugin::Runtime`] and
//!   [`plugin::Chain`], [`pipeline::Stages`] and [`pipeline::spawn_with`],
//!   [`pipeline::Delivery`], [`sink::Sinks`], [`state::StateStore`] and
//!   [`state::vanished`], [`ha::Gate`], [`metrics::Metrics`];
//! - the HTTP APIs: [`api::serve`], [`api::serve_with`], [`api::query_router`],
//!   [`api::admin_router`] with [`api::WatchControl`], and [`api::auth::Guard`];
//! - the types these take and return (configs, events, outcomes, errors).
//!
//! Composition ([`app`]'s `Herald`), config validation, reload, restart
//! catch-up, leader election and the sinks' internals are not part of it.

// The module docs are for whoever works on herald (`cargo doc
// --document-private-items`) and link to crate-private items freely.
#![allow(rustdoc::private_intra_doc_links)]

pub mod alloc;
pub mod api;
pub mod app;
pub mod cache;
pub mod change;
pub mod cli;
pub mod decisions;
pub mod dedup;
pub mod demo;
pub mod ha;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod run;
pub mod sink;
pub mod source;
pub mod state;
mod sync;
