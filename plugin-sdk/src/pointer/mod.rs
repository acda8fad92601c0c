//! RFC 6901 JSON pointer helpers, shared by the SDK's test backend and the
//! host so that both apply a plugin's changes the same way.
//!
//! Plugins may not change an object's identity: `""` (the whole object),
//! `/apiVersion`, `/kind`, `/metadata` and `/metadata/name`, `namespace` and
//! `uid` are read-only ([`check_writable`]). Sinks, dedup and the state dir
//! key an object by these; a plugin that rewrote them would make a change
//! look like another object's.

/// Escapes one reference token: `~` becomes `~0`, `/` becomes `~1`.
///
/// ```
/// assert_eq!(herald_plugin_sdk::pointer::escape("app.kubernetes.io/name"), "app.kubernetes.io~1name");
/// ```
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Builds a pointer from tokens, escaping each.
///
/// ```
/// assert_eq!(herald_plugin_sdk::pointer::join(["metadata", "labels", "a/b"]), "/metadata/labels/a~1b");
/// ```
pub fn join<I, S>(tokens: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for t in tokens {
        out.push('/');
        out.push_str(&escape(t.as_ref()));
    }
    out
}

use std::borrow::Cow;

use serde_json::Value;

mod wildcard;

pub use wildcard::{Step, expand, expand_keys, keys, removal_candidates, removal_order};

/// Why a plugin cannot use a pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// Not empty and not starting with `/`.
    #[error("invalid JSON pointer {0:?}: it must be empty or start with `/`")]
    NoLeadingSlash(String),
    /// A `~` not followed by `0` or `1`.
    #[error(
        "invalid JSON pointer {0:?}: `~` must be followed by `0` or `1` (`~0` is `~`, `~1` is `/`)"
    )]
    BadEscape(String),
    /// The pointer is, contains or is inside an identity field.
    #[error(
        "{0:?} is read-only: a plugin cannot change an object's identity \
         (apiVersion, kind, metadata.name, metadata.namespace, metadata.uid)"
    )]
    ReadOnly(String),
}

/// The fields that identify an object, as token lists. A plugin cannot set,
/// remove or replace them, or anything that holds them (`""`, `/metadata`).
pub const IDENTITY: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "uid"],
];

/// The unescaped reference tokens of `pointer`; empty for `""`.
///
/// ```
/// use herald_plugin_sdk::pointer::{tokens, PointerError};
/// assert_eq!(tokens("/a~1b/c~0d").unwrap(), ["a/b", "c~d"]);
/// assert_eq!(tokens("").unwrap(), Vec::<String>::new());
/// assert!(matches!(tokens("/metadata/~2"), Err(PointerError::BadEscape(_))));
/// assert!(matches!(tokens("metadata"), Err(PointerError::NoLeadingSlash(_))));
/// ```
pub fn tokens(pointer: &str) -> Result<Vec<String>, PointerError> {
    split(pointer)?.map(|t| t.map(Cow::into_owned)).collect()
}

/// The reference tokens of `pointer` one by one, unescaped, each borrowed
/// from `pointer` unless it holds an escape: what [`tokens`] gives, without
/// allocating for the common pointer.
///
/// ```
/// use herald_plugin_sdk::pointer::split;
/// let t: Result<Vec<_>, _> = split("/metadata/labels/a~1b").unwrap().collect();
/// assert_eq!(t.unwrap(), ["metadata", "labels", "a/b"]);
/// assert!(split("/a/~2").unwrap().nth(1).unwrap().is_err());
/// ```
///
/// # Errors
/// `pointer` is neither empty nor starts with `/`; an item is an error
/// where a `~` is not followed by `0` or `1`.
pub fn split(
    pointer: &str,
) -> Result<impl Iterator<Item = Result<Cow<'_, str>, PointerError>>, PointerError> {
    let rest = match pointer.strip_prefix('/') {
        Some(rest) => Some(rest),
        None if pointer.is_empty() => None,
        None => return Err(PointerError::NoLeadingSlash(pointer.to_string())),
    };
    Ok(rest
        .into_iter()
        .flat_map(|r| r.split('/'))
        .map(move |raw| read_token(raw, pointer)))
}

/// One token of `pointer` with `~0` and `~1` read.
fn read_token<'a>(raw: &'a str, pointer: &str) -> Result<Cow<'a, str>, PointerError> {
    if !raw.contains('~') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => return Err(PointerError::BadEscape(pointer.to_string())),
        }
    }
    Ok(Cow::Owned(out))
}

/// Whether a plugin may change the value at `pointer`: a valid pointer that
/// neither is, holds nor lies inside an identity field ([`IDENTITY`]).
///
/// ```
/// use herald_plugin_sdk::pointer::{check_writable, PointerError};
/// assert!(check_writable("/metadata/labels/app").is_ok());
/// for p in ["", "/kind", "/metadata", "/metadata/name", "/metadata/uid"] {
///     assert!(matches!(check_writable(p), Err(PointerError::ReadOnly(_))), "{p}");
/// }
/// ```
pub fn check_writable(pointer: &str) -> Result<(), PointerError> {
    // Every identity field is at most two tokens deep: the first two are
    // kept, the rest only checked.
    let (mut head, mut n): ([Cow<'_, str>; 2], usize) = (Default::default(), 0);
    for t in split(pointer)? {
        let t = t?;
        if let Some(slot) = head.get_mut(n) {
            *slot = t;
        }
        n += 1;
    }
    let read_only = IDENTITY.iter().any(|id| {
        let m = n.min(id.len());
        head[..m].iter().zip(&id[..m]).all(|(t, i)| t == i)
    });
    if read_only {
        return Err(PointerError::ReadOnly(pointer.to_string()));
    }
    Ok(())
}

/// The value at `pointer`; `None` if absent or if `pointer` is not a valid
/// pointer (serde_json's lookup would read `~2` as a literal key).
pub fn get<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if split(pointer).ok()?.any(|t| t.is_err()) {
        return None;
    }
    value.pointer(pointer)
}

/// How to take back one [`remove`] or [`set`]; the host keeps these so that a
/// plugin that fails half-way leaves the event as it found it.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Put `value` back under `token` of the container at `parent`
    /// (at `index` when the container is an array).
    Reinsert {
        /// Pointer to the container.
        parent: String,
        /// Object key (unescaped) when the container is an object.
        token: String,
        /// Array position when the container is an array.
        index: Option<usize>,
        /// The removed value.
        value: Value,
    },
    /// Put `value` back at `pointer` (which exists).
    Replace {
        /// Pointer to the replaced value.
        pointer: String,
        /// The value before.
        value: Value,
    },
    /// Remove what a set created at `pointer`.
    Delete {
        /// Pointer to the created value.
        pointer: String,
    },
    /// Restore the whole object.
    Root(Value),
}

/// Unescapes one reference token.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits `/a/b/c` into (`/a/b`, `c` unescaped). `None` for the root pointer
/// and for text that is not a pointer.
fn split_last(pointer: &str) -> Option<(&str, String)> {
    if !pointer.starts_with('/') {
        return None;
    }
    let cut = pointer.rfind('/')?;
    Some((&pointer[..cut], unescape(&pointer[cut + 1..])))
}

fn array_index(token: &str, len: usize) -> Option<usize> {
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    token.parse::<usize>().ok().filter(|i| *i < len)
}

/// Removes the value at `pointer` if it exists. The root cannot be removed.
pub fn remove(target: &mut Value, pointer: &str) -> Option<Undo> {
    let (parent, token) = split_last(pointer)?;
    match target.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&token).map(|value| Undo::Reinsert {
            parent: parent.to_string(),
            token,
            index: None,
            value,
        }),
        Value::Array(items) => {
            let i = array_index(&token, items.len())?;
            Some(Undo::Reinsert {
                parent: parent.to_string(),
                token,
                index: Some(i),
                value: items.remove(i),
            })
        }
        _ => None,
    }
}

/// Sets `pointer` to `value`, creating missing parents as objects; `-` or
/// the length appends to an array. Every step is pushed onto `undo`.
pub fn set(
    target: &mut Value,
    pointer: &str,
    value: Value,
    undo: &mut Vec<Undo>,
) -> Result<(), String> {
    if pointer.is_empty() {
        undo.push(Undo::Root(std::mem::replace(target, value)));
        return Ok(());
    }
    let (parent, token) = split_last(pointer)
        .ok_or_else(|| format!("invalid JSON pointer {pointer:?}: must start with /"))?;
    if target.pointer(parent).is_none() {
        set(target, parent, Value::Object(Default::default()), undo)?;
    }
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            match map.insert(token, value) {
                Some(old) => undo.push(Undo::Replace {
                    pointer: pointer.to_string(),
                    value: old,
                }),
                None => undo.push(Undo::Delete {
                    pointer: pointer.to_string(),
                }),
            }
            Ok(())
        }
        Some(Value::Array(items)) => {
            let len = items.len();
            if token == "-" || token == len.to_string() {
                items.push(value);
                undo.push(Undo::Delete {
                    pointer: format!("{parent}/{len}"),
                });
                Ok(())
            } else if let Some(i) = array_index(&token, len) {
                let old = std::mem::replace(&mut items[i], value);
                undo.push(Undo::Replace {
                    pointer: pointer.to_string(),
                    value: old,
                });
                Ok(())
            } else {
                Err(format!(
                    "cannot set {pointer}: index {token:?} is out of bounds for an array of {len}"
                ))
            }
        }
        Some(_) => Err(format!(
            "cannot set {pointer}: {parent:?} is not an object or array"
        )),
        None => Err(format!(
            "cannot set {pointer}: parent {parent:?} is missing"
        )),
    }
}

/// Replaces the value at `pointer` if `target` has one, pushing the step
/// onto `undo`; creates nothing. Whether it replaced; an error only for text
/// that is not a pointer.
pub fn replace(
    target: &mut Value,
    pointer: &str,
    value: Value,
    undo: &mut Vec<Undo>,
) -> Result<bool, String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "invalid JSON pointer {pointer:?}: must start with /"
        ));
    }
    let Some(slot) = target.pointer_mut(pointer) else {
        return Ok(false);
    };
    let before = std::mem::replace(slot, value);
    undo.push(if pointer.is_empty() {
        Undo::Root(before)
    } else {
        Undo::Replace {
            pointer: pointer.to_string(),
            value: before,
        }
    });
    Ok(true)
}

/// A plugin's `set` as the host applies it: [`set`] on `object`, and
/// [`replace`] on the previous state `old` where it has a value at
/// `pointer`, so a value a plugin overwrites (a redaction) cannot reach a
/// sink through `old` or a patch built from it. Nothing is created in
/// `old`. The steps go onto `undo` and `undo_old`; on an error neither state
/// changed.
pub fn set_mirrored(
    object: &mut Value,
    old: Option<&mut Value>,
    pointer: &str,
    value: Value,
    undo: &mut Vec<Undo>,
    undo_old: &mut Vec<Undo>,
) -> Result<(), String> {
    let copy = match &old {
        Some(o) if o.pointer(pointer).is_some() => Some(value.clone()),
        _ => None,
    };
    set(object, pointer, value, undo)?;
    if let (Some(value), Some(old)) = (copy, old) {
        replace(old, pointer, value, undo_old)?;
    }
    Ok(())
}

/// Takes back every step in `log`, newest first.
pub fn undo(target: &mut Value, log: Vec<Undo>) {
    for step in log.into_iter().rev() {
        match step {
            Undo::Root(v) => *target = v,
            Undo::Replace { pointer, value } => {
                if let Some(slot) = target.pointer_mut(&pointer) {
                    *slot = value;
                }
            }
            Undo::Delete { pointer } => {
                remove(target, &pointer);
            }
            Undo::Reinsert {
                parent,
                token,
                index,
                value,
            } => match (target.pointer_mut(&parent), index) {
                (Some(Value::Object(map)), None) => {
                    map.insert(token, value);
                }
                (Some(Value::Array(items)), Some(i)) if i <= items.len() => items.insert(i, value),
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remove_then_undo_restores_objects_and_arrays() {
        let orig = json!({"a": {"b/c": 1, "d": [1, 2, 3]}, "e": 2});
        let mut v = orig.clone();
        let mut log = vec![];
        log.extend(remove(&mut v, "/a/b~1c"));
        log.extend(remove(&mut v, "/a/d/1"));
        log.extend(remove(&mut v, "/e"));
        assert!(remove(&mut v, "/nope").is_none());
        assert!(remove(&mut v, "/a/d/9").is_none());
        assert!(remove(&mut v, "").is_none());
        assert_eq!(v, json!({"a": {"d": [1, 3]}}));
        undo(&mut v, log);
        assert_eq!(v, orig);
    }

    #[test]
    fn set_creates_parents_appends_and_undoes() {
        let orig = json!({"a": [1], "b": {"c": 1}});
        let mut v = orig.clone();
        let mut log = vec![];
        set(&mut v, "/x/y/z", json!(true), &mut log).unwrap();
        set(&mut v, "/a/-", json!(2), &mut log).unwrap();
        set(&mut v, "/a/0", json!(0), &mut log).unwrap();
        set(&mut v, "/b/c", json!(5), &mut log).unwrap();
        assert_eq!(
            v,
            json!({"a": [0, 2], "b": {"c": 5}, "x": {"y": {"z": true}}})
        );
        assert!(set(&mut v, "/a/7", json!(1), &mut log).is_err());
        assert!(set(&mut v, "/b/c/d", json!(1), &mut log).is_err());
        assert!(set(&mut v, "nope", json!(1), &mut log).is_err());
        undo(&mut v, log);
        assert_eq!(v, orig);
    }

    #[test]
    fn replace_changes_only_existing_values_and_undoes() {
        let orig = json!({"a": {"b": 1}, "l": [1, 2]});
        let mut v = orig.clone();
        let mut log = vec![];
        assert_eq!(replace(&mut v, "/a/b", json!("x"), &mut log), Ok(true));
        assert_eq!(replace(&mut v, "/l/1", json!("y"), &mut log), Ok(true));
        for absent in ["/a/c", "/l/2", "/l/-", "/l/01", "/z/y"] {
            assert_eq!(
                replace(&mut v, absent, json!(0), &mut log),
                Ok(false),
                "{absent}"
            );
        }
        assert!(replace(&mut v, "a", json!(0), &mut log).is_err());
        assert_eq!(v, json!({"a": {"b": "x"}, "l": [1, "y"]}));
        assert_eq!(replace(&mut v, "", json!({}), &mut log), Ok(true));
        assert_eq!(v, json!({}));
        undo(&mut v, log);
        assert_eq!(v, orig);
    }

    #[test]
    fn identity_fields_and_their_parents_are_read_only_and_nothing_else() {
        for p in [
            "",
            "/apiVersion",
            "/kind",
            "/metadata",
            "/metadata/name",
            "/metadata/namespace",
            "/metadata/uid",
            "/metadata/name/x",
        ] {
            assert_eq!(
                check_writable(p),
                Err(PointerError::ReadOnly(p.to_string())),
                "{p}"
            );
        }
        for p in [
            "/metadata/labels",
            "/metadata/labels/app",
            "/metadata/names",
            "/kinds",
            "/spec/kind",
            "/metadata/uid~1x",
        ] {
            assert_eq!(check_writable(p), Ok(()), "{p}");
        }
        // Escapes are read before the comparison: `/meta~0data` is another key.
        assert_eq!(check_writable("/meta~0data/name"), Ok(()));
        assert!(matches!(
            check_writable("/metadata/~2"),
            Err(PointerError::BadEscape(_))
        ));
        assert!(matches!(
            check_writable("/a/~"),
            Err(PointerError::BadEscape(_))
        ));
    }

    #[test]
    fn get_refuses_invalid_pointers_and_expand_runs_over_maps_and_arrays() {
        let v = json!({"~2": 1, "a": {"x": {"k": 1}, "y": {"k": 2}, "z": {}}, "l": [[1], [2, 3]]});
        assert_eq!(get(&v, "/~2"), None, "not a pointer");
        assert_eq!(get(&v, "/a/x/k"), Some(&json!(1)));
        assert_eq!(expand(&v, "/a/*/k").unwrap(), ["/a/y/k", "/a/x/k"]);
        assert_eq!(expand(&v, "/l/*/1").unwrap(), ["/l/1/1"]);
        assert_eq!(expand(&v, "/l/*").unwrap(), ["/l/1", "/l/0"]);
        assert!(expand(&v, "/absent/*").unwrap().is_empty());
        assert!(expand(&v, "/a/~2").is_err());
    }

    #[test]
    fn removal_order_puts_higher_indices_and_deeper_paths_first() {
        let mut ps: Vec<String> = ["/a/2", "/a/10", "/a/1/x", "/a/1", "/b", "/a/2"]
            .map(String::from)
            .to_vec();
        removal_order(&mut ps);
        assert_eq!(ps, ["/b", "/a/10", "/a/2", "/a/1/x", "/a/1"]);
    }

    #[test]
    fn set_mirrored_overwrites_the_old_value_where_there_is_one() {
        let (obj0, old0) = (json!({"s": {"k": "new"}}), json!({"s": {"k": "old"}}));
        let (mut obj, mut old) = (obj0.clone(), old0.clone());
        let (mut log, mut log_old) = (vec![], vec![]);
        set_mirrored(
            &mut obj,
            Some(&mut old),
            "/s/k",
            json!("<r>"),
            &mut log,
            &mut log_old,
        )
        .unwrap();
        set_mirrored(
            &mut obj,
            Some(&mut old),
            "/s/n",
            json!(1),
            &mut log,
            &mut log_old,
        )
        .unwrap();
        assert_eq!(obj, json!({"s": {"k": "<r>", "n": 1}}));
        assert_eq!(old, json!({"s": {"k": "<r>"}}), "nothing created in old");
        assert!(
            set_mirrored(
                &mut obj,
                Some(&mut old),
                "/s/k/x",
                json!(1),
                &mut log,
                &mut log_old
            )
            .is_err()
        );
        undo(&mut obj, log);
        undo(&mut old, log_old);
        assert_eq!((obj, old), (obj0, old0));
    }
}
