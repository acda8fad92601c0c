//! herald: a Kubernetes change-notification gateway.
//!
//! The modules follow the data flow:
//!
//! - [`change`]: the change event every stage passes on.
//! - [`plugin`]: the sandboxed WebAssembly plugin runtime and plugin chains.
//! - [`cli`]: the `herald` command line.

pub mod change;
pub mod cli;
pub mod plugin;
