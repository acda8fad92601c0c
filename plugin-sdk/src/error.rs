//! What can go wrong when a plugin reads or changes an event.

use crate::pointer::PointerError;

/// An error of an [`Event`](crate::Event) accessor.
///
/// Both backends (the host in wasm, memory in native tests) return the same
/// errors for the same calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The pointer is not valid, or names a read-only identity field.
    #[error(transparent)]
    Pointer(#[from] PointerError),
    /// A value given to `set` or `set_old` could not be written as JSON.
    #[error("{pointer}: invalid JSON value: {message}")]
    InvalidValue {
        /// Where it was to go.
        pointer: String,
        /// serde_json's message.
        message: String,
    },
    /// The value at the pointer does not parse (for example it nests deeper
    /// than serde_json's recursion limit of 128).
    #[error("{pointer}: the value does not parse: {message}")]
    Unparsable {
        /// Where it is.
        pointer: String,
        /// serde_json's message.
        message: String,
    },
    /// The value at the pointer does not deserialise into the requested
    /// type ([`Event::get_as`](crate::Event::get_as)).
    #[error("{pointer}: {message}")]
    WrongShape {
        /// Where it is.
        pointer: String,
        /// serde's message, e.g. `invalid type: string "x", expected u32`.
        message: String,
    },
    /// The change cannot be made: an array index out of bounds, a parent
    /// that is not an object or array, JSON text given to `set_json` that
    /// is not JSON. The message is the host's (or the test backend's, which
    /// words it the same).
    #[error("{0}")]
    Rejected(String),
}
