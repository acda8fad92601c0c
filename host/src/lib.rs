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
//! - [`sink`]: webhook, Slack, batch and log sinks and reliable delivery.
//! - [`ha`]: leader election on a Lease; only the leader delivers.
//! - [`metrics`]: Prometheus metrics on `/metrics`.
//! - [`app`]: the composition root; [`Herald`](app::Herald) wires the parts above.
//! - [`run`]: `herald run`, the main job; [`demo`]: `herald demo`; [`cli`]: the
//!   rest of the `herald` command line.

pub mod api;
pub mod app;
pub mod cache;
pub mod change;
pub mod cli;
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
