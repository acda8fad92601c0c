//! Kubernetes label selectors, equality- and set-based, as `kubectl -l`
//! takes them: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`
//! (exists), `!a` (does not exist); a comma means AND. The empty selector
//! matches everything.
//!
//! The workspace's one implementation, `herald-selectors`, which the host
//! uses too; plugins take its set-based syntax ([`Selector::parse`]).

pub use herald_selectors::SelectorError;
pub use herald_selectors::label::{Op, Requirement, Selector};
