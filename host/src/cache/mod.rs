//! The cache: a reflector store per watched type (and namespace scope), written by the
//! source and read by the query API.
//!
//! Start with [`Cache`]. The source task owns each store's `Writer`; the cache only
//! ever holds the cheap `Store` readers, so nothing outside the source can change it.

mod registry;
mod selector;

pub use registry::{Cache, CachedType, object_key};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
