//! Reading one JSON pointer out of a document's bytes without building a
//! tree: a scan that skips every value before the one on the path, stops
//! there, and borrows its text. Plugins mostly read a few fields (labels,
//! the namespace, one list); a scan costs a fraction of a parse, and one that
//! stops at its target (metadata comes early) a fraction of that.
//!
//! The bytes are the cache's: one JSON document with each key once in an
//! object, as the API server writes objects (Go's encoder writes a key
//! once). A scan takes the first member of a name. It checks the structure
//! it walks through, not what it skips (strings are skipped to their
//! closing quote): bad bytes give [`Malformed`] or, where they are skipped,
//! a wrong span, never a panic.

use std::fmt;
use std::ops::Range;

pub(crate) use super::blocks::string_stop;

/// The scan met something that is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Byte offset into the document.
    pub(crate) at: usize,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not JSON at byte {}", self.at)
    }
}

impl std::error::Error for Malformed {}

/// The name serde_json's `RawValue` travels through serde under
/// (`serde_json::raw::TOKEN`, not public). A `Deserialize` that asks
/// serde_json (or its `Value`) for a newtype struct of this name is handed
/// a map whose one member, under this key, is the value's JSON text; a
/// `Serialize` that gives serde_json a struct of this name with one field of
/// this name has that field's string written verbatim.
pub(crate) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Whether the JSON text `json` has no whitespace outside its strings (as
/// the API server writes objects). Text that is not JSON may give either
/// answer.
pub(crate) fn is_compact(json: &[u8]) -> bool {
    super::blocks::is_compact(json)
}

/// The JSON text at the pointer given as its unescaped `tokens`, or `None`
/// when the document has nothing there (a missing key, an index out of
/// range, a path through a scalar).
///
/// # Errors
/// The bytes on the path are not JSON.
pub(crate) fn lookup<'a>(
    json: &'a [u8],
    tokens: &[impl AsRef<str>],
) -> Result<Option<&'a str>, Malformed> {
    let Some(span) = find(json, tokens)? else {
        return Ok(None);
    };
    std::str::from_utf8(&json[span.clone()])
        .map(Some)
        .map_err(|e| Malformed {
            at: span.start + e.valid_up_to(),
        })
}

/// Where the value at `tokens` is in `json`.
///
/// # Errors
/// The bytes on the path are not JSON.
pub(crate) fn find(
    json: &[u8],
    tokens: &[impl AsRef<str>],
) -> Result<Option<Range<usize>>, Malformed> {
    let Some(i) = locate(json, tokens)? else {
        return Ok(None);
    };
    Ok(Some(i..skip_value(json, i)?))
}

/// Where the value at `tokens` starts in `json`, its end not read (as
/// [`find`]).
///
/// # Errors
/// The bytes on the path are not JSON.
pub(crate) fn locate(json: &[u8], tokens: &[impl AsRef<str>]) -> Result<Option<usize>, Malformed> {
    let mut i = skip_ws(json, 0)?;
    for token in tokens {
        match step(json, i, token.as_ref())? {
            Some(at) => i = at,
            None => return Ok(None),
        }
    }
    Ok(Some(i))
}

/// Where the value `token` names in the container at `i` starts (a member
/// of an object, an item of an array); `None` when there is none or `i` is
/// a scalar.
///
/// # Errors
/// The container is not JSON.
pub(crate) fn step(json: &[u8], i: usize, token: &str) -> Result<Option<usize>, Malformed> {
    match byte(json, i)? {
        b'{' => member(json, i, token),
        b'[' => match index(token) {
            Some(n) => item(json, i, n),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// A pointer's unescaped tokens, borrowed from it where they hold no
/// escape, on the stack up to eight deep.
pub(crate) type Tokens<'a> = smallvec::SmallVec<[std::borrow::Cow<'a, str>; 8]>;

/// The tokens of `pointer` (see [`Tokens`]); `None` when it is not a valid
/// pointer.
pub(crate) fn tokens(pointer: &str) -> Option<Tokens<'_>> {
    herald_plugin_sdk::pointer::split(pointer)
        .ok()?
        .collect::<Result<_, _>>()
        .ok()
}

/// Whether an edit at `edit` (remove or replace) can change what `read`
/// finds: one lies within the other, or the edit removes an item of an
/// array the read goes through (the items after it move).
pub(crate) fn overlaps(edit: &str, read: &str, removal: bool) -> bool {
    let within = |outer: &str, inner: &str| {
        inner == outer
            || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
    };
    if within(edit, read) || within(read, edit) {
        return true;
    }
    if removal && let Some((parent, last)) = edit.rsplit_once('/') {
        let index = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
        return index && within(parent, read);
    }
    false
}

/// One member of an object or item of an array, as offsets: the member's
/// key (for an item, its value) starts at `start`, its value at `value`,
/// and it ends at `end`; a member's key, quoted, ends at `key_end` (for an
/// item, `start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) start: usize,
    pub(crate) key_end: usize,
    pub(crate) value: usize,
    pub(crate) end: usize,
}

/// The members of the object, or the items of the array, that starts at
/// `open`.
///
/// # Errors
/// The container is not JSON.
pub(crate) fn entries(json: &[u8], open: usize) -> Result<Vec<Entry>, Malformed> {
    let mut out = Vec::new();
    walk(json, open, |_, _| false, |e| out.push(e))?;
    Ok(out)
}

/// [`entries`], and where the container ends (one past its closing
/// bracket): a caller that reads a container's members and walks on after
/// it skips it once, not twice.
///
/// # Errors
/// The container is not JSON.
pub(crate) fn entries_and_end(json: &[u8], open: usize) -> Result<(Vec<Entry>, usize), Malformed> {
    let out = entries(json, open)?;
    // The walk ended at the closing bracket, the first byte after the last
    // entry (or the opening one) that is not whitespace.
    let close = skip_ws(json, out.last().map_or(open + 1, |e| e.end))?;
    Ok((out, close + 1))
}

/// The keys of the object at `open`, each once in the order they come
/// (escapes read), or the indices of the array there; `None` for a scalar
/// or bytes that are not JSON.
pub(crate) fn keys(json: &[u8], open: usize) -> Option<Vec<String>> {
    keys_checked(json, open).ok().flatten()
}

/// [`keys`], with bytes that are not JSON an error: `Ok(None)` is a
/// scalar.
///
/// # Errors
/// The value at `open` is not JSON.
pub(crate) fn keys_checked(json: &[u8], open: usize) -> Result<Option<Vec<String>>, Malformed> {
    let object = match byte(json, open)? {
        b'{' => true,
        b'[' => false,
        _ => {
            skip_value(json, open)?;
            return Ok(None);
        }
    };
    let entries = entries(json, open)?;
    if !object {
        return Ok(Some((0..entries.len()).map(|i| i.to_string()).collect()));
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    let mut keys = Vec::with_capacity(entries.len());
    for e in entries {
        let key = unquote(&json[e.start..e.key_end]).ok_or(Malformed { at: e.start })?;
        if seen.insert(key.clone()) {
            keys.push(key.into_owned());
        }
    }
    Ok(Some(keys))
}

/// Whether the quoted key `quoted` (with its quotes) is `token`, escapes read.
pub(crate) fn key_is(quoted: &[u8], token: &str) -> bool {
    match quoted {
        // No escape: the bytes are the key (equal to UTF-8 text, so UTF-8).
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => inner == token.as_bytes(),
        _ => unquote(quoted).is_some_and(|k| k == token),
    }
}

/// The string the quoted JSON string `quoted` (with its quotes) holds,
/// borrowed when it has no escape; `None` when it is not one.
pub(crate) fn unquote(quoted: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if inner.contains(&b'\\') {
        return serde_json::from_slice::<String>(quoted)
            .ok()
            .map(Into::into);
    }
    std::str::from_utf8(inner).ok().map(Into::into)
}

/// The array index `token` names (RFC 6901: digits, no leading zero).
pub(crate) fn index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    (digits && (token == "0" || !token.starts_with('0')))
        .then(|| token.parse().ok())
        .flatten()
}

/// Where the value of the member `token` of the object at `open` starts.
fn member(json: &[u8], open: usize, token: &str) -> Result<Option<usize>, Malformed> {
    let mut found = None;
    let stop = |value, key: Option<&[u8]>| {
        let hit = key.is_some_and(|k| key_is(k, token));
        if hit {
            found = Some(value);
        }
        hit
    };
    walk(json, open, stop, |_| {})?;
    Ok(found)
}

/// Where item `n` of the array at `open` starts.
fn item(json: &[u8], open: usize, n: usize) -> Result<Option<usize>, Malformed> {
    let mut found = None;
    let mut i = 0;
    let stop = |value, _: Option<&[u8]>| {
        let hit = i == n;
        if hit {
            found = Some(value);
        }
        i += 1;
        hit
    };
    walk(json, open, stop, |_| {})?;
    Ok(found)
}

/// Visits each entry of the container at `open` in order: `stop` gets where
/// its value starts and its quoted key (`None` for an item) and ends the
/// walk there by saying so, before the value is skipped; else `each` gets
/// the whole entry.
pub(crate) fn walk<'a>(
    json: &'a [u8],
    open: usize,
    mut stop: impl FnMut(usize, Option<&'a [u8]>) -> bool,
    each: impl FnMut(Entry),
) -> Result<(), Malformed> {
    let object = byte(json, open)? == b'{';
    walk_on(json, object, open + 1, true, |_, v, k| stop(v, k), each)
}

/// The entries of the container that starts at `open`, from the first, or
/// from the one after the entry that ends at `after`, until `until` says
/// yes at the start of one (where its key, or an item, starts): the
/// entries read, and that start (`None` when the container ended first).
///
/// # Errors
/// The container is not JSON.
pub(crate) fn entries_until(
    json: &[u8],
    open: usize,
    after: Option<usize>,
    mut until: impl FnMut(usize) -> bool,
) -> Result<(Vec<Entry>, Option<usize>), Malformed> {
    let object = byte(json, open)? == b'{';
    let (mut out, mut stopped) = (Vec::new(), None);
    let from = after.unwrap_or(open + 1);
    walk_on(
        json,
        object,
        from,
        after.is_none(),
        |start, _, _| {
            let stop = until(start);
            if stop {
                stopped = Some(start);
            }
            stop
        },
        |e| out.push(e),
    )?;
    Ok((out, stopped))
}

/// [`walk`] from `i` in a container (an object's when `object`): at its
/// first entry or its end when `first`, else right after an entry. `stop`
/// gets where the entry starts as well.
fn walk_on<'a>(
    json: &'a [u8],
    object: bool,
    i: usize,
    first: bool,
    mut stop: impl FnMut(usize, usize, Option<&'a [u8]>) -> bool,
    mut each: impl FnMut(Entry),
) -> Result<(), Malformed> {
    let close = if object { b'}' } else { b']' };
    let mut i = skip_ws(json, i)?;
    match byte(json, i)? {
        b if b == close => return Ok(()),
        b',' if !first => i = skip_ws(json, i + 1)?,
        _ if first => {}
        _ => return Err(Malformed { at: i }),
    }
    loop {
        let start = i;
        let (key, value) = if object {
            if byte(json, i)? != b'"' {
                return Err(Malformed { at: i });
            }
            let key_end = skip_string(json, i)?;
            let colon = skip_ws(json, key_end)?;
            if byte(json, colon)? != b':' {
                return Err(Malformed { at: colon });
            }
            (Some(&json[start..key_end]), skip_ws(json, colon + 1)?)
        } else {
            (None, start)
        };
        if stop(start, value, key) {
            return Ok(());
        }
        let end = skip_value(json, value)?;
        let key_end = start + key.map_or(0, <[u8]>::len);
        each(Entry {
            start,
            key_end,
            value,
            end,
        });
        i = skip_ws(json, end)?;
        match byte(json, i)? {
            b',' => i = skip_ws(json, i + 1)?,
            b if b == close => return Ok(()),
            _ => return Err(Malformed { at: i }),
        }
    }
}

fn byte(json: &[u8], i: usize) -> Result<u8, Malformed> {
    json.get(i).copied().ok_or(Malformed { at: i })
}

pub(crate) fn skip_ws(json: &[u8], mut i: usize) -> Result<usize, Malformed> {
    while matches!(byte(json, i)?, b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    Ok(i)
}

/// The end of the string whose opening quote is at `i`.
fn skip_string(json: &[u8], i: usize) -> Result<usize, Malformed> {
    let mut j = i + 1;
    loop {
        // A control character is not JSON in a string; skipped, it is
        // only passed over.
        let Some(k) = string_stop(json, j) else {
            return Err(Malformed { at: i });
        };
        match json[k] {
            b'"' => return Ok(k + 1),
            b'\\' => j = k + 2,
            _ => j = k + 1,
        }
    }
}

/// The end of the value that starts at `i`.
pub(crate) fn skip_value(json: &[u8], i: usize) -> Result<usize, Malformed> {
    match byte(json, i)? {
        b'"' => skip_string(json, i),
        b'{' | b'[' => super::blocks::skip_container(json, i),
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let mut j = i + 1;
            while json
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            Ok(j)
        }
        _ => Err(Malformed { at: i }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn toks(p: &str) -> Vec<String> {
        herald_plugin_sdk::pointer::tokens(p).unwrap()
    }

    #[test]
    fn a_lookup_finds_what_a_parsed_tree_finds() {
        let doc = json!({"metadata": {"labels": {"app": "web", "a/b": "s", "t~": 1},
                                      "namespace": "n", "list": [1, {"x": [true, null]}, "z"]},
                         "spec": {"containers": [{"env": [{"name": "A"}]}]}, "n": null, "e": {}});
        let bytes = serde_json::to_vec(&doc).unwrap();
        for p in [
            "",
            "/metadata",
            "/metadata/labels",
            "/metadata/labels/app",
            "/metadata/labels/a~1b",
            "/metadata/labels/t~0",
            "/metadata/namespace",
            "/metadata/list/0",
            "/metadata/list/1/x/1",
            "/metadata/list/2",
            "/metadata/list/3",
            "/metadata/list/01",
            "/metadata/list/-",
            "/spec/containers/0/env",
            "/n",
            "/n/x",
            "/e",
            "/missing",
            "/metadata/namespace/x",
            "/metadata/list/1/x/0/deeper",
        ] {
            let got = lookup(&bytes, &toks(p)).unwrap();
            let got: Option<Value> = got.map(|r| serde_json::from_str(r).unwrap());
            assert_eq!(got.as_ref(), doc.pointer(p), "{p}");
        }
        // Escaped keys in the bytes; of duplicates (which the API server
        // never writes) the scan stops at the first.
        let raw = br#"{"k\u0065y": 1, "dup": 1, "dup": {"x": 2}}"#;
        assert_eq!(lookup(raw, &toks("/key")).unwrap(), Some("1"));
        assert_eq!(lookup(raw, &toks("/dup")).unwrap(), Some("1"));
        assert_eq!(lookup(raw, &toks("/dup/x")).unwrap(), None);
        // Whitespace anywhere JSON allows it.
        let spaced = b" { \"a\" :\t[ 1 , { \"b\" : \"c\\\"]\" } ] \n} ";
        assert_eq!(lookup(spaced, &toks("/a/1/b")).unwrap(), Some(r#""c\"]""#));
        assert_eq!(
            lookup(spaced, &toks("/a/1")).unwrap(),
            Some(r#"{ "b" : "c\"]" }"#)
        );
        // Bad bytes on the path are errors, never a panic.
        for bad in [
            &b"{\"a\": "[..],
            b"{\"a\" 1}",
            b"{\"x\": 1 \"a\": 2}",
            b"{\"a",
            b"{a: 1}",
            b"",
            b"{\"x\": 1, \"a\": \"\xff\"}",
        ] {
            assert!(lookup(bad, &toks("/a")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entries_and_end_ends_where_the_container_ends() {
        for text in [
            r#"{}"#,
            r#"{ }"#,
            r#"[]"#,
            r#"{"a":1}"#,
            r#"{"a":{"b":[1,2]},"c":"}"}"#,
            r#"[ 1 , [2] , {"x":"]"} ]"#,
            "{\n \"a\" : 1 \t}",
        ] {
            // The container, then more text after it.
            let json = format!(r#"[{text},"after"]"#);
            let (got, end) = entries_and_end(json.as_bytes(), 1).unwrap();
            assert_eq!(got, entries(json.as_bytes(), 1).unwrap(), "{text}");
            assert_eq!(end, skip_value(json.as_bytes(), 1).unwrap(), "{text}");
            assert_eq!(&json[end..], r#","after"]"#, "{text}");
        }
        for bad in [&b"{\"a\":1"[..], b"{\"a\":1,}", b"[1 2]", b"{"] {
            assert!(entries_and_end(bad, 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn edits_overlap_reads_within_or_around_them_and_array_removals_shift_items() {
        assert!(overlaps("/a/b", "/a/b/c", true));
        assert!(overlaps("/a/b/c", "/a/b", false));
        assert!(overlaps("/a", "/a", false));
        assert!(!overlaps("/a/b", "/a/bc", true));
        assert!(!overlaps(
            "/metadata/managedFields",
            "/metadata/labels",
            true
        ));
        assert!(!overlaps(
            "/metadata/managedFields",
            "/spec/containers",
            true
        ));
        // Removing item 0 moves item 1.
        assert!(overlaps(
            "/spec/containers/0",
            "/spec/containers/1/env",
            true
        ));
        assert!(!overlaps(
            "/spec/containers/0",
            "/spec/containers/1/env",
            false
        ));
    }
}
