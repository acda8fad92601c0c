//! The cache: a store per watched type (and namespace scope), written by the source and
//! read by the query API.
//!
//! Start with [`Cache`]. Each object is a [`CachedObject`]: its compact JSON, as the
//! API server sent it, plus an index of the fields queries read (namespace, name, uid,
//! resourceVersion, labels, owner uids). The source task owns each store's
//! [`Writer`]; the cache only ever holds the cheap [`Store`] readers, so nothing
//! outside the source can change it.

mod object;
mod registry;
mod selector;
mod store;

pub use object::CachedObject;
pub(crate) use object::IndexFields;
pub(crate) use registry::object_key;
pub use registry::{Cache, CachedType};
pub(crate) use selector::{FieldSelector, LabelSelector};
pub(crate) use store::{Store, Writer};
