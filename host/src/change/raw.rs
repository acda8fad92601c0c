//! Reading one JSON pointer out of a document's bytes without building a
//! tree: a scan that skips every value off the path and borrows the one at
//! its end (`&RawValue`). Plugins mostly read a few fields (labels, the
//! namespace, one list); a scan costs a fraction of a parse.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The JSON text at the pointer given as its unescaped `tokens`, or `None`
/// when the document has nothing there (a missing key, an index out of
/// range, a path through a scalar).
///
/// # Errors
/// The bytes are not one JSON document.
pub(crate) fn lookup<'a>(
    json: &'a [u8],
    tokens: &[String],
) -> serde_json::Result<Option<&'a RawValue>> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = Find { tokens }.deserialize(&mut de)?;
    de.end()?;
    Ok(found)
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

/// Walks the remaining `tokens`; at the end, borrows the value.
struct Find<'t> {
    tokens: &'t [String],
}

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.tokens.split_first() {
            None => <&RawValue as de::Deserialize>::deserialize(d).map(Some),
            Some((token, rest)) => d.deserialize_any(Step { token, rest }),
        }
    }
}

/// One step of the walk: into the member `token` of a map or the item at
/// index `token` of an array.
struct Step<'t> {
    token: &'t str,
    rest: &'t [String],
}

/// A map key, compared with the token as it is read (escaped keys arrive
/// unescaped).
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let key = <Cow<'de, str> as de::Deserialize>::deserialize(d)?;
        Ok(key == self.0)
    }
}

macro_rules! scalar_is_not_a_container {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $t) -> Result<Self::Value, E> { Ok(None) })*
    };
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // The last of duplicate keys wins, as in a parsed tree.
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.token))? {
            if hit {
                found = map.next_value_seed(Find { tokens: self.rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // RFC 6901: digits, no leading zero ("-" names no item).
        let index = (self.token == "0" || !self.token.starts_with('0'))
            .then(|| self.token.parse::<usize>().ok())
            .flatten();
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Find { tokens: self.rest })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    scalar_is_not_a_container!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
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
            let got: Option<Value> = got.map(|r| serde_json::from_str(r.get()).unwrap());
            assert_eq!(got.as_ref(), doc.pointer(p), "{p}");
        }
        // Escaped keys in the bytes, and duplicates: the last wins.
        let raw = br#"{"k\u0065y": 1, "dup": 1, "dup": {"x": 2}}"#;
        assert_eq!(lookup(raw, &toks("/key")).unwrap().unwrap().get(), "1");
        assert_eq!(lookup(raw, &toks("/dup/x")).unwrap().unwrap().get(), "2");
        assert!(lookup(b"{\"a\": ", &toks("/a")).is_err(), "not a document");
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
