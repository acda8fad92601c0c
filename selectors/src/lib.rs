//! Kubernetes label and field selectors, parsed once and matched through a
//! lookup function, so a caller reads only the labels or fields a selector
//! names (a plugin through `event.label(key)`, the host's cache through its
//! stored object).
//!
//! - [`label`]: label selectors (`a=b`, `a in (x,y)`, `!a`, and with the API
//!   server's [`Syntax`] `a>1`), and `matchLabels` maps.
//! - [`field`]: field selectors (`metadata.name=x`, `f!=y`).
//!
//! Used by the host (its query API and watch config) and by the filter,
//! route and noise plugins (through `filter-matchers`).

pub mod field;
pub mod label;

pub use field::FieldSelector;
pub use label::{Selector as LabelSelector, Syntax};

/// A selector that does not parse, worded for the person who wrote it (a
/// 400 answer, a config error, a plugin's init error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);
