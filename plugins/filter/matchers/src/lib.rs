//! Matching code shared by the `filter`, `route` and `noise` plugins:
//!
//! - [`selector`]: Kubernetes label selectors (`a=b`, `a in (x,y)`, `!a`, ...),
//!   from the workspace's `herald-selectors`.
//! - [`glob`]: namespace globs (`*`, `?`).
//!
//! The `filter` crate re-exports both as `filter::selector` and
//! `filter::glob`.

pub mod glob;
pub mod selector;
