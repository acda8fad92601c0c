//! herald-sim: a Kubernetes API server simulator for herald's end-to-end tests, its
//! demo and leader-election tests.
//!
//! It speaks the real wire protocol over loopback HTTP — discovery (legacy and
//! aggregated), LIST with pagination and continue tokens, WATCH as chunked JSON lines
//! with bookmarks and `410 Expired`, optimistic concurrency, patches — so an unmodified
//! kube-rs client (and so `herald`) runs against it, and tests inject faults at it.
//!
//! Start with [`Simulator::builder`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald_sim::Error> {
//! use herald_sim::{Simulator, fixtures};
//! let sim = Simulator::builder().start().await?;
//! sim.write_kubeconfig("/tmp/kubeconfig")?;
//! sim.create("pods", fixtures::pod("default", "web-1", &[("app", "web")])).await?;
//! sim.cut_watches();
//! # Ok(()) }
//! ```
//!
//! Requests, writes and changes are kept in memory for the life of the simulator, for
//! tests to inspect ([`Sim::requests`], [`Sim::change_log`]).
//!
//! Modules, from the wire inwards:
//! - `server` — listener and connections; stop and serve again on the same port.
//! - `http` — authentication, injected failures, routing, Status responses.
//! - `discovery` — `/version`, `/api`, `/apis` and resource lists, legacy and aggregated.
//! - `list` — LIST: resourceVersion semantics, continue tokens, list documents.
//! - `watch` — WATCH streams: history cursor, selectors, bookmarks, faults.
//! - `api` — the verbs and the server-side rules (names, uids, generation, conflicts,
//!   finalizers, namespace and CRD cascades).
//! - `patch` — JSON, merge, strategic merge and apply patches.
//! - `managed` — `managedFields` as a real server writes them (opt-in).
//! - `store` — objects, the global resourceVersion, history, past reads, change log.
//! - `object` — a stored object: JSON serialised once, plus what selectors read.
//! - [`order`] — the key order a real server writes objects in (struct order for
//!   built-in types, sorted for custom resources).
//! - `selector` — label and field selectors.
//! - `registry`, [`types`], `crd` — the served resource types.
//! - `review` — TokenReview and SubjectAccessReview from rules a test sets.
//! - `faults` — fault injection state; `state` — what the server and handle share.
//! - [`kubeconfig`], [`fixtures`] — client config and sample objects.
//! - `ids` — uids, timestamps, generated names.

mod api;
pub mod check;
mod crd;
mod discovery;
mod error;
mod faults;
pub mod fixtures;
mod http;
mod ids;
pub mod kubeconfig;
mod list;
mod managed;
mod object;
pub mod order;
mod patch;
mod registry;
mod review;
mod selector;
mod server;
mod sim;
mod state;
mod store;
pub mod types;
mod watch;

pub use error::{ApiError, Error, Result};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use sim::{Sim, SimBuilder, Simulator, defaults};
pub use state::RequestRecord;
pub use store::{Change, ChangeType};
pub use types::{GroupResource, ResourceType};
