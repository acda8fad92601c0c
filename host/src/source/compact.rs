//! Re-encodes whatever a serde `Deserializer` yields as compact JSON into a buffer,
//! value by value, without building a tree.
//!
//! This is how a watched object goes from the API server's bytes to the cache's bytes:
//! kube's client hands each list item and watch event to our `Deserialize` (through
//! serde's buffered content for lists, whose `ObjectList` flattens its type fields),
//! and we write it straight back out. Keys keep the server's order; numbers and strings
//! are written as serde_json writes them.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::change::raw::{self, Malformed};

/// What [`top_level`] noticed while writing an object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TopLevel {
    /// Where the `metadata` value was written in the buffer.
    pub(crate) metadata: Option<Range<usize>>,
    /// The object has an `apiVersion` key.
    pub(crate) api_version: bool,
    /// The object has a `kind` key.
    pub(crate) kind: bool,
    /// `metadata`'s members, as offsets in the text, when they were read on
    /// the way ([`top_level_of_text`], for an object `metadata`).
    pub(crate) metadata_entries: Option<Vec<raw::Entry>>,
}

/// Writes the JSON object `d` yields to `out` (appending), noting where its
/// `metadata` is and whether it has `apiVersion` and `kind`.
///
/// # Errors
/// The deserializer's, or "expected a JSON object" when the value is not one.
pub(crate) fn top_level<'de, D: Deserializer<'de>>(
    d: D,
    out: &mut Vec<u8>,
) -> Result<TopLevel, D::Error> {
    d.deserialize_map(Top { out })
}

/// What [`top_level`] would note of the JSON object text `json`, read from
/// the text: its members are walked until `metadata`, `apiVersion` and
/// `kind` have been met, or to its end. `metadata`'s members are read on
/// the way (the metadata the cache indexes is read from them), so the
/// walk passes over `metadata` once.
///
/// # Errors
/// The text is not a JSON object (where it was walked).
pub(crate) fn top_level_of_text(json: &[u8]) -> Result<TopLevel, Malformed> {
    if json.first() != Some(&b'{') {
        return Err(Malformed { at: 0 });
    }
    let mut seen = TopLevel::default();
    fn note(seen: &mut TopLevel, key: &[u8]) {
        if raw::key_is(key, "apiVersion") {
            seen.api_version = true;
        } else if raw::key_is(key, "kind") {
            seen.kind = true;
        }
    }
    // Until `metadata` (the API server writes it after `apiVersion` and
    // `kind`): its value's start.
    let mut metadata = None;
    raw::walk(
        json,
        0,
        |value, key| {
            let hit = key.is_some_and(|k| raw::key_is(k, "metadata"));
            if hit {
                metadata = Some(value);
            }
            hit
        },
        |entry| note(&mut seen, &json[entry.start..entry.key_end]),
    )?;
    let Some(value) = metadata else {
        return Ok(seen);
    };
    let end = if json.get(value) == Some(&b'{') {
        let (entries, end) = raw::entries_and_end(json, value)?;
        seen.metadata_entries = Some(entries);
        end
    } else {
        raw::skip_value(json, value)?
    };
    seen.metadata = Some(value..end);
    if !(seen.api_version && seen.kind) {
        let (rest, _) = raw::entries_until(json, 0, Some(end), |_| false)?;
        for entry in rest {
            note(&mut seen, &json[entry.start..entry.key_end]);
        }
    }
    Ok(seen)
}

/// Writes any value `d` yields to `out` (appending).
///
/// # Errors
/// The deserializer's.
#[cfg(test)]
pub(crate) fn value<'de, D: Deserializer<'de>>(d: D, out: &mut Vec<u8>) -> Result<(), D::Error> {
    Any { out }.deserialize(d)
}

fn put<E: de::Error>(out: &mut Vec<u8>, v: &impl serde::Serialize) -> Result<(), E> {
    serde_json::to_writer(out, v).map_err(E::custom)
}

/// Writes `s` as a JSON string. Most strings of an object (keys, names,
/// managed-field paths) need no escape: those are copied between quotes
/// after one branch-free pass, the rest go through serde_json.
fn put_str<E: de::Error>(out: &mut Vec<u8>, s: &str) -> Result<(), E> {
    let special = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if special {
        return put(out, &s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

// === impl Top ===

struct Top<'a> {
    out: &'a mut Vec<u8>,
}

/// A top-level key that matters.
#[derive(PartialEq, Eq)]
enum Key {
    Metadata,
    ApiVersion,
    Kind,
    Other,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut seen = TopLevel::default();
        self.out.push(b'{');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let Some(key) = map.next_key_seed(KeySeed { out: self.out })? else {
                self.out.truncate(mark);
                break;
            };
            first = false;
            self.out.push(b':');
            let start = self.out.len();
            map.next_value_seed(Any { out: self.out })?;
            match key {
                Key::Metadata => seen.metadata = Some(start..self.out.len()),
                Key::ApiVersion => seen.api_version = true,
                Key::Kind => seen.kind = true,
                Key::Other => {}
            }
        }
        self.out.push(b'}');
        Ok(seen)
    }
}

/// Writes a map key and says which it was.
struct KeySeed<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        put_str(self.out, s)?;
        Ok(match s {
            "metadata" => Key::Metadata,
            "apiVersion" => Key::ApiVersion,
            "kind" => Key::Kind,
            _ => Key::Other,
        })
    }
}

// === impl Any ===

/// Writes any value.
struct Any<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Any<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Any<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        put(self.out, &v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        put(self.out, &v)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<(), E> {
        put(self.out, &v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<(), E> {
        put(self.out, &v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        put(self.out, &v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        put_str(self.out, v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        // JSON input never yields bytes; write them as serde_json would.
        put(self.out, &v)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if seq.next_element_seed(Any { out: self.out })?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if map.next_key_seed(KeySeed { out: self.out })?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
            self.out.push(b':');
            map.next_value_seed(Any { out: self.out })?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::Value;

    const DOC: &str = r#" { "kind" : "Pod", "metadata": {"name": "a\"b", "labels": {"x": "1"}},
        "spec": {"n": -3, "big": 18446744073709551615, "f": 1.5, "e": [], "o": {}, "z": null,
                 "t": true, "u": "\u00e9\n", "arr": [1, [2, {"k": false}]]} } "#;

    #[test]
    fn writes_compact_json_in_the_source_order() {
        let mut out = Vec::new();
        let seen =
            top_level(&mut serde_json::Deserializer::from_str(DOC), &mut out).expect("transcode");
        let text = String::from_utf8(out.clone()).expect("utf-8");
        assert_eq!(
            text,
            r#"{"kind":"Pod","metadata":{"name":"a\"b","labels":{"x":"1"}},"spec":{"n":-3,"big":18446744073709551615,"f":1.5,"e":[],"o":{},"z":null,"t":true,"u":"é\n","arr":[1,[2,{"k":false}]]}}"#
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&out).expect("json"),
            serde_json::from_str::<Value>(DOC).expect("json")
        );
        let m = seen.metadata.expect("metadata");
        assert_eq!(&text[m], r#"{"name":"a\"b","labels":{"x":"1"}}"#);
        assert!(seen.kind && !seen.api_version);
    }

    #[test]
    fn a_string_is_written_as_serde_json_writes_it() {
        for s in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "tab\t",
            "\u{1}",
            "\u{1f}",
            "\u{7f}",
            "é/ü",
            "😀",
            " ",
        ] {
            let mut out = Vec::new();
            put_str::<serde_json::Error>(&mut out, s).expect("write");
            assert_eq!(out, serde_json::to_vec(s).expect("json"), "{s:?}");
        }
    }

    #[test]
    fn works_through_serde_buffered_content() {
        // `flatten` makes serde buffer the input first, as kube's `ObjectList` does.
        #[derive(Deserialize)]
        struct Wrapper {
            #[serde(flatten)]
            _rest: std::collections::BTreeMap<String, Value>,
            #[serde(deserialize_with = "as_json")]
            item: Vec<u8>,
        }
        fn as_json<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            let mut out = Vec::new();
            value(d, &mut out)?;
            Ok(out)
        }
        let doc = format!(r#"{{"x": 1, "item": {DOC}}}"#);
        let w: Wrapper = serde_json::from_str(&doc).expect("parse");
        assert_eq!(
            serde_json::from_slice::<Value>(&w.item).expect("json"),
            serde_json::from_str::<Value>(DOC).expect("json")
        );
        assert!(!w.item.contains(&b' '));
    }

    #[test]
    fn the_text_reading_notes_what_the_serde_one_does_and_reads_metadata_on_the_way() {
        for text in [
            // The API server's order.
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":"1"},"managedFields":[{"m":"}"}]},"spec":{}}"#,
            // `apiVersion` and `kind` after `metadata`, or missing.
            r#"{"metadata":{"name":"a"},"spec":{"kind":"x"},"kind":"Pod","apiVersion":"v1"}"#,
            r#"{"metadata":{"name":"a"},"spec":{}}"#,
            r#"{"kind":"Pod","metadata":{}}"#,
            // `metadata` that is not an object, or none.
            r#"{"apiVersion":"v1","kind":"Pod","metadata":"m","spec":{}}"#,
            r#"{"kind":"Pod","metadata":null}"#,
            r#"{"kind":"Pod","spec":{"metadata":{}}}"#,
            r#"{}"#,
        ] {
            let seen = top_level_of_text(text.as_bytes()).expect(text);
            let mut out = Vec::new();
            let reference =
                top_level(&mut serde_json::Deserializer::from_str(text), &mut out).expect(text);
            assert_eq!(out, text.as_bytes(), "compact text is written as it is");
            assert_eq!(seen.metadata, reference.metadata, "{text}");
            assert_eq!(
                (seen.api_version, seen.kind),
                (reference.api_version, reference.kind),
                "{text}"
            );
            let metadata = seen.metadata.clone().map(|m| &text.as_bytes()[m]);
            let expected = match metadata {
                Some(m) if m.first() == Some(&b'{') => {
                    let start = seen.metadata.as_ref().map_or(0, |m| m.start);
                    let shifted = |e: raw::Entry| raw::Entry {
                        start: e.start + start,
                        key_end: e.key_end + start,
                        value: e.value + start,
                        end: e.end + start,
                    };
                    Some(
                        raw::entries(m, 0)
                            .unwrap()
                            .into_iter()
                            .map(shifted)
                            .collect(),
                    )
                }
                _ => None,
            };
            assert_eq!(seen.metadata_entries, expected, "{text}");
        }
        // Bad text up to `metadata`'s end is an error, never a panic.
        let good = r#"{"kind":"Pod","metadata":{"name":"a","labels":{"x":"1"}},"spec":{}}"#;
        let metadata_end = good.find(r#","spec""#).unwrap();
        for cut in 0..=metadata_end {
            assert!(
                top_level_of_text(&good.as_bytes()[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(top_level_of_text(br#"{"metadata":{"a" 1}}"#).is_err());
        assert!(top_level_of_text(b"[1]").is_err());
    }

    #[test]
    fn rejects_a_non_object() {
        let mut out = Vec::new();
        assert!(top_level(&mut serde_json::Deserializer::from_str("[1]"), &mut out).is_err());
    }
}
