//! [`Found`]: a value read out of a [`Doc`](super::Doc), borrowed from its
//! bytes or its tree.

use serde_json::Value;

use super::raw;

/// A value read out of a [`Doc`](super::Doc): borrowed from its bytes or its tree.
#[derive(Debug, Clone, Copy)]
pub enum Found<'a> {
    /// JSON text inside the stored bytes.
    Raw(&'a str),
    /// A node of the parsed tree.
    Tree(&'a Value),
}

impl Found<'_> {
    /// The value as compact JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Found::Raw(r) => r.to_string(),
            Found::Tree(v) => v.to_string(),
        }
    }

    /// The keys of a map, each once in the order they come, or the indices
    /// of an array; `None` for a scalar (or bytes that are not JSON).
    pub fn keys(&self) -> Option<Vec<String>> {
        match self {
            Found::Raw(r) => raw::keys(r.as_bytes(), 0),
            Found::Tree(v) => herald_plugin_sdk::pointer::keys(v),
        }
    }

    /// The value if it is a string.
    pub fn as_string(&self) -> Option<String> {
        match self {
            Found::Raw(r) => {
                let inner = r.strip_prefix('"')?.strip_suffix('"')?;
                if inner.contains('\\') {
                    serde_json::from_str(r).ok()
                } else {
                    Some(inner.to_string())
                }
            }
            Found::Tree(v) => v.as_str().map(str::to_string),
        }
    }
}
