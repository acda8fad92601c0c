//! herald: a Kubernetes change-notification gateway.
//!
//! The modules follow the data flow:
//!
//! - [`change`]: the change event every stage passes on.
//! - [`plugin`]: the sandboxed WebAssembly plugin runtime and plugin chains.
//! - [`cli`]: the `herald` command line; [`demo`]: `herald demo`.

pub mod api;
pub mod cache;
pub mod change;
pub mod cli;
pub mod demo;
pub mod plugin;
pub mod source;
