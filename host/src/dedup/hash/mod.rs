//! [`ObjectHash`]: a stable 128-bit hash of an object with its noise fields
//! left out, computed by walking the parsed `Value` (no copy, no string).
//!
//! # Encoding (version 1)
//!
//! The hash is XXH3-128 (seed 0) of this byte stream, which is part of the
//! state-dir format and must not change without a new version byte:
//!
//! - `b"H\x01"` once, then the value:
//! - null `n`; true `t`; false `f`;
//! - a number: `u` + u64 LE if it is a u64, else `i` + i64 LE if it is an i64,
//!   else `d` + the f64's bits LE;
//! - a string: `s` + byte length as u64 LE + the UTF-8 bytes;
//! - an array: `[`, each item not excluded, `]`;
//! - an object: `{`, for each key not excluded in byte order of the key:
//!   `k` + length u64 LE + bytes, then the value; then `}`.
//!
//! Every item starts with a tag and every string carries its length, so two
//! different documents never produce the same stream.
//!
//! [`ObjectHasher::hash_json`] writes the same stream straight from the JSON
//! text (no `Value`); see "From JSON text" below.

use std::cell::RefCell;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use xxhash_rust::xxh3::{Xxh3Default, xxh3_128};

mod json;
mod text;
mod trie;

use trie::*;

use super::settings::{ALWAYS_EXCLUDED, SettingsError};

/// A 128-bit hash of an object as it would be emitted; see the module docs for
/// what goes into it. Stable across processes, machines and herald versions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectHash(u128);

impl ObjectHash {
    /// Wraps a raw value (as stored by [`ObjectHash::to_bytes`]).
    pub const fn from_u128(v: u128) -> Self {
        ObjectHash(v)
    }

    /// The raw value.
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// 16 bytes, little-endian: the stored form.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The inverse of [`ObjectHash::to_bytes`].
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        ObjectHash(u128::from_le_bytes(b))
    }
}

impl fmt::Display for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectHash({self})")
    }
}

/// Hashes objects with a fixed set of fields left out ([`ALWAYS_EXCLUDED`]
/// plus the configured ones). Cheap to clone and to share between threads.
#[derive(Debug, Clone)]
pub struct ObjectHasher {
    root: Node,
}

impl Default for ObjectHasher {
    /// Leaves out [`ALWAYS_EXCLUDED`] only.
    fn default() -> Self {
        ObjectHasher::new(&[] as &[&str]).expect("the built-in pointers parse")
    }
}

impl ObjectHasher {
    /// A hasher leaving out [`ALWAYS_EXCLUDED`] and `exclude` (RFC 6901
    /// pointers; a `*` segment matches every array item and map key).
    ///
    /// # Errors
    ///
    /// The first pointer that does not parse.
    pub(crate) fn new<S: AsRef<str>>(exclude: &[S]) -> Result<Self, SettingsError> {
        let mut root = Node::default();
        for p in ALWAYS_EXCLUDED
            .iter()
            .copied()
            .chain(exclude.iter().map(AsRef::as_ref))
        {
            let segments = parse_pointer(p).map_err(|reason| SettingsError::Pointer {
                pointer: p.to_string(),
                reason,
            })?;
            root.insert(&segments);
        }
        root.normalize();
        Ok(ObjectHasher { root })
    }

    /// The hash of `obj` with the excluded fields left out.
    pub(crate) fn hash(&self, obj: &Value) -> ObjectHash {
        let mut out = Out::new();
        out.bytes(b"H\x01");
        walk(&mut out, obj, Some(&self.root), *MAP_IS_SORTED);
        ObjectHash(out.finish())
    }
}

// === the walk ===

/// Buffers the small pieces of the stream so the hasher sees large chunks.
struct Out {
    hasher: Xxh3Default,
    buf: [u8; 512],
    len: usize,
}

impl Out {
    fn new() -> Self {
        Out {
            hasher: Xxh3Default::new(),
            buf: [0; 512],
            len: 0,
        }
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        if self.len + b.len() > self.buf.len() {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
            if b.len() > self.buf.len() {
                self.hasher.update(b);
                return;
            }
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    #[inline]
    fn tagged(&mut self, tag: u8, v: [u8; 8]) {
        let mut b = [0u8; 9];
        b[0] = tag;
        b[1..].copy_from_slice(&v);
        self.bytes(&b);
    }

    #[inline]
    fn string(&mut self, tag: u8, s: &str) {
        self.tagged(tag, (s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
    }

    fn finish(mut self) -> u128 {
        self.hasher.update(&self.buf[..self.len]);
        self.hasher.digest128()
    }
}

/// Whether serde_json's `Map` iterates in key order (it is a `BTreeMap` unless
/// some crate in the build turns on `preserve_order`).
static MAP_IS_SORTED: LazyLock<bool> = LazyLock::new(|| {
    let mut m = Map::new();
    m.insert("b".into(), Value::Null);
    m.insert("a".into(), Value::Null);
    m.keys().next().map(String::as_str) == Some("a")
});

/// Hashes `v`; `node` is the exclusion trie at this position (`None`: nothing
/// below is excluded); `sorted`: maps iterate in key order already.
fn walk(out: &mut Out, v: &Value, node: Option<&Node>, sorted: bool) {
    match v {
        Value::Null => out.bytes(b"n"),
        Value::Bool(true) => out.bytes(b"t"),
        Value::Bool(false) => out.bytes(b"f"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.tagged(b'u', u.to_le_bytes());
            } else if let Some(i) = n.as_i64() {
                out.tagged(b'i', i.to_le_bytes());
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                out.tagged(b'd', f.to_bits().to_le_bytes());
            }
        }
        Value::String(s) => out.string(b's', s),
        Value::Array(items) => {
            out.bytes(b"[");
            for (i, item) in items.iter().enumerate() {
                let child = node.and_then(|n| n.index(i));
                if !child.is_some_and(|c| c.excluded) {
                    walk(out, item, child, sorted);
                }
            }
            out.bytes(b"]");
        }
        Value::Object(map) => {
            out.bytes(b"{");
            if sorted {
                for (k, item) in map {
                    entry(out, k, item, node, sorted);
                }
            } else {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, item) in entries {
                    entry(out, k, item, node, sorted);
                }
            }
            out.bytes(b"}");
        }
    }
}

#[inline]
fn entry(out: &mut Out, key: &str, item: &Value, node: Option<&Node>, sorted: bool) {
    let child = node.and_then(|n| n.key(key));
    if !child.is_some_and(|c| c.excluded) {
        out.string(b'k', key);
        walk(out, item, child, sorted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(exclude: &[&str], v: &Value) -> ObjectHash {
        ObjectHasher::new(exclude).unwrap().hash(v)
    }

    #[test]
    fn golden_value_is_stable() {
        // Persisted in state dirs: this must never change for encoding version 1.
        let v = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "u-1", "resourceVersion": "7", "generation": 2},
            "data": {"k": "v", "n": [1, -2, 2.5, true, false, null]}
        });
        assert_eq!(
            ObjectHasher::default().hash(&v).to_string(),
            "213922997461a8409b301d1f6b8a5541"
        );
        let b = ObjectHasher::default().hash(&v);
        assert_eq!(ObjectHash::from_bytes(b.to_bytes()), b);
    }

    #[test]
    fn encoding_is_the_documented_stream() {
        let v = json!({"a": [1, "x", -1, 0.5, null, true, false], "b": {}});
        let mut s = b"H\x01{".to_vec();
        s.push(b'k');
        s.extend(1u64.to_le_bytes());
        s.extend(b"a[u");
        s.extend(1u64.to_le_bytes());
        s.push(b's');
        s.extend(1u64.to_le_bytes());
        s.push(b'x');
        s.push(b'i');
        s.extend((-1i64).to_le_bytes());
        s.push(b'd');
        s.extend(0.5f64.to_bits().to_le_bytes());
        s.extend(b"ntf]k");
        s.extend(1u64.to_le_bytes());
        s.extend(b"b{}}");
        let want = xxhash_rust::xxh3::xxh3_128(&s);
        assert_eq!(ObjectHasher::default().hash(&v).to_u128(), want);
        // Longer than the buffer: the chunking does not matter.
        let long = json!({"s": "y".repeat(2000), "t": "z".repeat(300)});
        let mut s = b"H\x01{k".to_vec();
        s.extend(1u64.to_le_bytes());
        s.extend(b"ss");
        s.extend(2000u64.to_le_bytes());
        s.extend("y".repeat(2000).as_bytes());
        s.push(b'k');
        s.extend(1u64.to_le_bytes());
        s.extend(b"ts");
        s.extend(300u64.to_le_bytes());
        s.extend("z".repeat(300).as_bytes());
        s.push(b'}');
        assert_eq!(
            ObjectHasher::default().hash(&long).to_u128(),
            xxhash_rust::xxh3::xxh3_128(&s)
        );
    }

    #[test]
    fn unsorted_maps_hash_the_same() {
        // The path taken if `preserve_order` is ever on: same hash.
        assert!(
            *MAP_IS_SORTED,
            "serde_json's Map is a BTreeMap in this build"
        );
        let v = json!({"b": {"z": 1, "y": [{"k": 2, "j": 3}]}, "a": "x",
            "metadata": {"resourceVersion": "1", "name": "n"}});
        let hasher = ObjectHasher::default();
        let mut out = Out::new();
        out.bytes(b"H\x01");
        walk(&mut out, &v, Some(&hasher.root), false);
        assert_eq!(ObjectHash(out.finish()), hasher.hash(&v));
    }

    #[test]
    fn noise_is_left_out() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1",
            "managedFields": [{"time": "t1"}], "generation": 1}, "spec": {"x": 1}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = json!("2");
        b["metadata"]["managedFields"][0]["time"] = json!("t2");
        assert_eq!(h(&[], &a), h(&[], &b));
        // generation is a real change (it moves with the spec).
        b["metadata"]["generation"] = json!(2);
        assert_ne!(h(&[], &a), h(&[], &b));
        // without managedFields at all: still the same hash.
        let mut c = a.clone();
        c["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(h(&[], &a), h(&[], &c));
    }

    #[test]
    fn every_real_difference_changes_the_hash() {
        let cases = [
            json!({"a": "1"}),
            json!({"a": 1}),
            json!({"a": 1.0}),
            json!({"a": -1}),
            json!({"a": null}),
            json!({}),
            json!({"a": []}),
            json!({"a": {}}),
            json!({"a": [null]}),
            json!({"a": [[]]}),
            json!({"ab": "c"}),
            json!({"a": "bc"}),
            json!({"a": true}),
            json!({"a": false}),
            json!({"a": "", "b": ""}),
            json!({"a": {"b": ""}}),
            json!(["a", "b"]),
            json!(["ab"]),
        ];
        let hashes: Vec<_> = cases.iter().map(|v| h(&[], v)).collect();
        for i in 0..cases.len() {
            for j in i + 1..cases.len() {
                assert_ne!(hashes[i], hashes[j], "{} vs {}", cases[i], cases[j]);
            }
        }
    }

    #[test]
    fn configured_pointers_wildcards_and_indices() {
        let a = json!({"status": {"conditions": [
            {"type": "Ready", "lastHeartbeatTime": "t1"},
            {"type": "Disk", "lastHeartbeatTime": "t1"}]},
            "metadata": {"annotations": {"a/b": "1", "c": "2"}}});
        let ex = [
            "/status/conditions/*/lastHeartbeatTime",
            "/metadata/annotations/a~1b",
        ];
        let mut b = a.clone();
        b["status"]["conditions"][1]["lastHeartbeatTime"] = json!("t2");
        b["metadata"]["annotations"]["a/b"] = json!("9");
        assert_eq!(h(&ex, &a), h(&ex, &b));
        assert_ne!(h(&[], &a), h(&[], &b));
        b["status"]["conditions"][1]["type"] = json!("Mem");
        assert_ne!(h(&ex, &a), h(&ex, &b));

        // An index names one item; `*` and a named key combine.
        let ex = ["/items/0", "/m/*/x", "/m/k/y"];
        let a =
            json!({"items": [1, 2], "m": {"k": {"x": 1, "y": 1, "z": 1}, "j": {"x": 1, "y": 1}}});
        let mut b = a.clone();
        b["items"][0] = json!(5);
        b["m"]["k"]["x"] = json!(2);
        b["m"]["k"]["y"] = json!(2);
        b["m"]["j"]["x"] = json!(2);
        assert_eq!(h(&ex, &a), h(&ex, &b));
        for (ptr, v) in [("/items/1", 7), ("/m/k/z", 7), ("/m/j/y", 7)] {
            let mut c = a.clone();
            *c.pointer_mut(ptr).unwrap() = json!(v);
            assert_ne!(h(&ex, &a), h(&ex, &c), "{ptr}");
        }
        // "01" is a key, not index 1.
        let ex = ["/items/01"];
        let mut c = json!({"items": [1, 2]});
        let before = h(&ex, &c);
        c["items"][1] = json!(3);
        assert_ne!(before, h(&ex, &c));
    }

    #[test]
    fn bad_pointers() {
        for p in ["", "status", "/a~x", "/a~"] {
            assert!(ObjectHasher::new(&[p]).is_err(), "{p:?}");
        }
    }

    // === hash_json ===

    /// `hash_json` of `doc` against `hash` of `from_slice(doc)`: the same hash,
    /// or the same error. Returns the hash.
    fn same(hasher: &ObjectHasher, doc: &[u8]) -> serde_json::Result<ObjectHash> {
        let got = hasher.hash_json(doc);
        match serde_json::from_slice::<Value>(doc) {
            Ok(v) => assert_eq!(
                got.as_ref().ok(),
                Some(&hasher.hash(&v)),
                "{}",
                String::from_utf8_lossy(doc)
            ),
            Err(want) => assert_eq!(
                got.as_ref().map_err(ToString::to_string).err(),
                Some(want.to_string()),
                "{}",
                String::from_utf8_lossy(doc)
            ),
        }
        got
    }

    /// The hand-written walk alone: `Some` only with the reference's hash.
    fn fast(hasher: &ObjectHasher, doc: &[u8]) -> Option<ObjectHash> {
        let got = hasher.hash_text_in(doc, &mut json::Scratch::default());
        if let Some(h) = got {
            let v: Value = serde_json::from_slice(doc).expect("the walk took only JSON");
            assert_eq!(h, hasher.hash(&v), "{}", String::from_utf8_lossy(doc));
        }
        got
    }

    #[test]
    fn the_walk_answers_for_what_the_api_server_writes_and_leaves_the_rest() {
        let hasher = ObjectHasher::new(&["/status", "/spec/containers/*/env"]).unwrap();
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "resourceVersion": "12",
                         "labels": {"app": "web", "é": "ü😀"}, "managedFields": [{"m": 1}]},
            "spec": {"containers": [{"name": "a", "env": [{"name": "X"}], "ports": [{"p": 80}]}],
                     "n": 0, "big": 1234567890123456789u64, "t": true, "f": false, "z": null,
                     "e": [], "o": {}},
            "status": {"phase": "Running"}});
        let compact = serde_json::to_vec(&pod).unwrap();
        let pretty = serde_json::to_vec_pretty(&pod).unwrap();
        let escapes = br#"{"k:{\"name\":\"a\"}":"\u00e9\n\/","b":["\"\\"]}"#;
        for doc in [&compact[..], &pretty, escapes] {
            assert!(
                fast(&hasher, doc).is_some(),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        // Left to serde's walk, which gives the same hash or the same error.
        for doc in [
            r#"{"a":"x\y"}"#,
            r#"{"a\u00":1}"#,
            r#"{"a":-1}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":12345678901234567890}"#,
            r#"{"a":01}"#,
            r#"{"$serde_json::private::RawValue":"1"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1}x"#,
            r#"[1 2]"#,
            "",
        ] {
            assert_eq!(fast(&hasher, doc.as_bytes()), None, "{doc}");
            let _ = same(&hasher, doc.as_bytes());
        }
        let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
        assert_eq!(fast(&hasher, deep.as_bytes()), None);
        let _ = same(&hasher, deep.as_bytes());
        // Values the walk leaves to serde are left to it in an excluded field
        // too, where nothing of them is written.
        for value in [
            r#""x\y""#,
            "-1",
            "1.5",
            "1e3",
            "12345678901234567890",
            "01",
            r#"{"$serde_json::private::RawValue":"1"}"#,
            "\"tab\there\"",
            "tru",
            "[1 2]",
            "{\"a\" 1}",
            "[1,]",
            &format!("{}{}", "[".repeat(100), "]".repeat(100)),
        ] {
            for doc in [
                format!(r#"{{"status":{value}}}"#),
                format!(r#"{{"status":{{"x":[{value}]}}}}"#),
                format!(r#"{{"spec":{{"containers":[{{"env":{value},"name":"a"}}]}}}}"#),
            ] {
                assert_eq!(fast(&hasher, doc.as_bytes()), None, "{doc}");
                let _ = same(&hasher, doc.as_bytes());
            }
        }
        // What it takes there it takes as a whole, escapes included.
        for value in [
            r#"{"k:{\"name\"}":["\u00e9",0,true,null,{}]}"#,
            "[]",
            "7",
            "false",
        ] {
            let doc =
                format!(r#"{{"status":{value},"spec":{{"containers":[{{"env":{value}}}]}}}}"#);
            assert!(fast(&hasher, doc.as_bytes()).is_some(), "{doc}");
        }
        assert!(fast(&hasher, &[b'"', 0xff, b'"']).is_none(), "not UTF-8");
        // Every cut of the pod is left to serde, which refuses it.
        for n in 0..compact.len() {
            assert_eq!(fast(&hasher, &compact[..n]), None, "cut at {n}");
        }
    }

    #[test]
    fn hash_json_keeps_the_last_of_duplicate_keys() {
        let hasher = ObjectHasher::default();
        let cases: [(&str, Value); 5] = [
            (r#"{"a":1,"a":2}"#, json!({"a": 2})),
            (
                r#"{"b":1,"a":[1],"b":{"y":1,"x":2},"a":3}"#,
                json!({"a": 3, "b": {"x": 2, "y": 1}}),
            ),
            (
                r#"{"m":{"z":{"q":1,"p":2,"q":3},"y":0,"z":{"r":4,"r":5}}}"#,
                json!({"m": {"y": 0, "z": {"r": 5}}}),
            ),
            (
                r#"[{"a":1,"a":null},{"c":[],"c":[1]}]"#,
                json!([{"a": null}, {"c": [1]}]),
            ),
            (
                r#"{"metadata":{"name":"x","resourceVersion":"1","name":"y","resourceVersion":"2"}}"#,
                json!({"metadata": {"name": "y"}}),
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(
                hasher.hash_json(doc.as_bytes()).unwrap(),
                hasher.hash(&want),
                "{doc}"
            );
            same(&hasher, doc.as_bytes()).unwrap();
        }
        // The first one does count when the second differs.
        assert_ne!(
            hasher.hash_json(br#"{"a":1,"a":2}"#).unwrap(),
            hasher.hash(&json!({"a": 1}))
        );
    }

    #[test]
    fn hash_json_unescapes_strings_and_keys() {
        let hasher = ObjectHasher::default();
        let doc = r#"{"k\"\u00e9":"\ud83d\ude00 \u00e9 \"q\" \\ \/ \n","\u0062":1,"a":"é😀"}"#;
        let want = json!({"k\"é": "😀 é \"q\" \\ / \n", "b": 1, "a": "é😀"});
        assert_eq!(
            hasher.hash_json(doc.as_bytes()).unwrap(),
            hasher.hash(&want)
        );
        same(&hasher, doc.as_bytes()).unwrap();
        // An escaped key is excluded by its unescaped name.
        let doc = br#"{"metadata":{"resource\u0056ersion":"9","n\u0061me":"a"}}"#;
        assert_eq!(
            hasher.hash_json(doc).unwrap(),
            hasher.hash(&json!({"metadata": {"name": "a"}}))
        );
        assert_ne!(
            hasher.hash_json(doc).unwrap(),
            hasher.hash(&json!({"metadata": {"name": "b"}}))
        );
    }

    #[test]
    fn hash_json_classifies_numbers_as_value_does() {
        let hasher = ObjectHasher::default();
        let docs = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "-1",
            "1.0",
            "1e2",
            "-1.5E-3",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "5e-324",
            "1.7976931348623157e308",
            "0.1",
            "1e400",
            "-1e400",
        ];
        let mut hashes = Vec::new();
        for d in docs {
            let wrapped = format!(r#"{{"n":[{d}]}}"#);
            if let Ok(h) = same(&hasher, d.as_bytes()) {
                hashes.push(h);
            }
            same(&hasher, wrapped.as_bytes()).ok();
        }
        // As Value holds them: beyond u64 / i64 is a float, -0 is the float -0.0.
        let h = |v: Value| hasher.hash(&v);
        let j = |d: &str| hasher.hash_json(d.as_bytes()).unwrap();
        assert_eq!(j("18446744073709551615"), h(json!(u64::MAX)));
        assert_eq!(
            j("18446744073709551616"),
            h(json!(18446744073709551616.0f64))
        );
        assert_eq!(j("-9223372036854775808"), h(json!(i64::MIN)));
        assert_eq!(
            j("-9223372036854775809"),
            h(json!(-9223372036854775809.0f64))
        );
        assert_eq!(j("-0"), h(json!(-0.0f64)));
        assert_eq!(j("1"), h(json!(1u64)));
        assert_eq!(j("1.0"), h(json!(1.0f64)));
        // ...and they are all told apart (0.0 vs -0.0 included).
        let n = hashes.len();
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), n - 1, "only -0 and -0.0 are the same number");
        assert_ne!(j("-0.0"), j("0.0"));
        assert_ne!(j("0"), j("0.0"));
        assert!(hasher.hash_json(b"1e400").is_err());
    }

    fn fixture_pod() -> Value {
        // As benches/dedup.rs builds it.
        let mut p = herald_sim::fixtures::pod("ns", "pod-00000", &[("app", "web")]);
        p["metadata"]["uid"] = json!("5f0c6e4e-2a4b-4f43-9d4e-000000000000");
        p["metadata"]["resourceVersion"] = json!("1");
        p["metadata"]["creationTimestamp"] = json!("2024-05-01T10:00:00Z");
        p["metadata"]["generation"] = json!(1);
        p
    }

    #[test]
    fn hash_json_of_the_fixture_pod() {
        let pod = fixture_pod();
        assert!(pod.pointer("/metadata/managedFields/0").is_some());
        let bytes = serde_json::to_vec(&pod).unwrap();
        let mut shuffled = String::new();
        write_json(&pod, &mut 7, &mut shuffled);
        assert_ne!(shuffled.as_bytes(), &bytes[..]);
        let sets: [&[&str]; 4] = [
            &[],
            &["/spec/containers/*/env"],
            &["/spec/containers/*/env/*/value", "/status/conditions/*"],
            &[
                "/metadata/labels/*",
                "/spec/containers/0",
                "/status/*/0/type",
            ],
        ];
        for ex in sets {
            let hasher = ObjectHasher::new(ex).unwrap();
            let want = hasher.hash(&pod);
            assert_eq!(hasher.hash_json(&bytes).unwrap(), want, "{ex:?}");
            assert_eq!(
                hasher.hash_json(shuffled.as_bytes()).unwrap(),
                want,
                "{ex:?}"
            );
        }
        // The exclusion takes effect: an env value only matters without it.
        let mut changed = pod.clone();
        changed["spec"]["containers"][0]["env"][3]["value"] = json!("other");
        let changed = serde_json::to_vec(&changed).unwrap();
        let env = ObjectHasher::new(&["/spec/containers/*/env"]).unwrap();
        assert_eq!(
            env.hash_json(&changed).unwrap(),
            env.hash_json(&bytes).unwrap()
        );
        let plain = ObjectHasher::default();
        assert_ne!(
            plain.hash_json(&changed).unwrap(),
            plain.hash_json(&bytes).unwrap()
        );
        // The default exclusions: a new resourceVersion is not a change.
        let mut rv = pod.clone();
        rv["metadata"]["resourceVersion"] = json!("2");
        assert_eq!(
            plain.hash_json(&serde_json::to_vec(&rv).unwrap()).unwrap(),
            plain.hash(&pod)
        );
    }

    #[test]
    fn hash_json_rejects_what_from_slice_rejects() {
        let hasher = ObjectHasher::default();
        let deep = format!(
            r#"{{"metadata":{{"managedFields":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let docs: Vec<&[u8]> = vec![
            b"",
            b"   ",
            b"{",
            b"{\"a\":}",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"nul",
            b"\"\\x\"",
            b"\"\xff\"",
            b"{1:2}",
            b"01",
            // In excluded fields too, where a fast skip would accept them.
            b"{\"metadata\":{\"resourceVersion\":1e400}}",
            b"{\"metadata\":{\"resourceVersion\":\"\xff\"}}",
            b"{\"metadata\":{\"managedFields\":[\"\\ud800\"]}}",
            deep.as_bytes(),
        ];
        for doc in docs {
            assert!(
                serde_json::from_slice::<Value>(doc).is_err(),
                "{}",
                String::from_utf8_lossy(doc)
            );
            assert!(same(&hasher, doc).is_err());
        }
        // The buffers are fine after an error.
        let v = json!({"a": [1, {"c": 2, "b": 3}]});
        assert_eq!(
            hasher.hash_json(&serde_json::to_vec(&v).unwrap()).unwrap(),
            hasher.hash(&v)
        );
    }

    #[test]
    fn hash_json_reads_raw_value_keys_as_value_does() {
        // With serde_json's `raw_value` feature, `Value` reads a map whose first
        // key is the RawValue token as the JSON text in its value.
        let hasher = ObjectHasher::new(&["/x/drop"]).unwrap();
        let doc = r#"{"x":{"$serde_json::private::RawValue":"{\"b\":1,\"drop\":2,\"a\":[2]}"}}"#;
        assert_eq!(
            serde_json::from_str::<Value>(doc).unwrap(),
            json!({"x": {"a": [2], "b": 1, "drop": 2}})
        );
        assert_eq!(
            same(&hasher, doc.as_bytes()).unwrap(),
            hasher.hash(&json!({"x": {"a": [2], "b": 1}}))
        );
        for doc in [
            // Not the first key: an ordinary key.
            r#"{"a":1,"$serde_json::private::RawValue":"[1]"}"#,
            r#"[{"$serde_json::private::RawValue":"[{\"$serde_json::private::RawValue\":\"7\"}]"}]"#,
            // Errors: bad inner text, not a string, more members, under an
            // excluded key.
            r#"{"$serde_json::private::RawValue":"[1"}"#,
            r#"{"$serde_json::private::RawValue":5}"#,
            r#"{"$serde_json::private::RawValue":"1","b":2}"#,
            r#"{"metadata":{"managedFields":{"$serde_json::private::RawValue":"}"}}}"#,
            r#"{"metadata":{"managedFields":{"$serde_json::private::RawValue":"[]"}}}"#,
        ] {
            same(&hasher, doc.as_bytes()).ok();
        }
        assert!(
            hasher
                .hash_json(br#"{"$serde_json::private::RawValue":"[1"}"#)
                .is_err()
        );
    }

    // --- random documents ---

    /// A step of a small xorshift generator (the shuffles of `write_json`).
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// `v` as JSON text with maps in a random order, some keys given twice
    /// (a decoy first: `Value` keeps the last), some characters `\u` escaped.
    fn write_json(v: &Value, rng: &mut u64, out: &mut String) {
        match v {
            Value::String(s) => write_str(s, rng, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json(item, rng, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut members: Vec<_> = map.iter().collect();
                for i in (1..members.len()).rev() {
                    members.swap(i, (next(rng) % (i as u64 + 1)) as usize);
                }
                out.push('{');
                let mut first = true;
                for (k, item) in members {
                    let decoy = next(rng).is_multiple_of(4);
                    let decoy = decoy.then(|| json!({"decoy": [k.len()]}));
                    for item in decoy.iter().chain([item]) {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        write_str(k, rng, out);
                        out.push_str(if next(rng).is_multiple_of(2) {
                            ":"
                        } else {
                            " : "
                        });
                        write_json(item, rng, out);
                    }
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    fn write_str(s: &str, rng: &mut u64, out: &mut String) {
        let escape_all = next(rng).is_multiple_of(2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || (escape_all && !c.is_ascii_alphanumeric()) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Every pointer (as segments) to a value inside `v`.
    fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let children: Vec<(String, &Value)> = match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            _ => Vec::new(),
        };
        for (k, child) in children {
            prefix.push(k);
            out.push(prefix.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    }

    fn pointer(segments: &[String], wildcards: u16) -> String {
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if (wildcards >> (2 * i)) & 3 == 0 {
                    "/*".to_string()
                } else {
                    format!("/{}", s.replace('~', "~0").replace('/', "~1"))
                }
            })
            .collect()
    }

    mod random {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::Index;

        /// A finite float that survives serde_json's print and parse (it is
        /// built without `float_roundtrip`, so not every one does).
        fn float() -> impl Strategy<Value = f64> {
            let round_trip = |f: f64| -> f64 {
                serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap()
            };
            // Some do after a trip or two; some alternate between two floats.
            let settle = move |mut f: f64| {
                for _ in 0..3 {
                    f = round_trip(f);
                }
                f
            };
            prop_oneof![
                prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
                (-1000i32..1000, 0u32..12).prop_map(|(n, k)| f64::from(n) / f64::from(1u32 << k)),
                Just(-0.0),
                Just(f64::MAX),
                Just(1e300),
                Just(18446744073709551616.0),
            ]
            .prop_map(settle)
            .prop_filter("survives a round trip", move |f| {
                round_trip(*f).to_bits() == f.to_bits()
            })
        }

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-c]{0,3}",
                "\\PC{0,8}",
                prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
            ]
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => text(),
                1 => prop::sample::select(vec![
                    "metadata", "resourceVersion", "managedFields", "0", "1", "01", "*",
                    "a/b", "~", "~1", "", "é", "\"", "\\", "\u{1F600}",
                ])
                .prop_map(String::from),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (-3i64..3).prop_map(Value::from),
                float().prop_map(Value::from),
                text().prop_map(Value::from),
            ];
            leaf.prop_recursive(5, 80, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec((key(), inner), 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn hash_json_equals_hash_of_the_value(
                v in value(),
                picks in prop::collection::vec((any::<Index>(), any::<u16>()), 0..4),
                seed in any::<u64>(),
            ) {
                let mut all = Vec::new();
                paths(&v, &mut Vec::new(), &mut all);
                let ex: Vec<String> = if all.is_empty() {
                    Vec::new()
                } else {
                    picks.iter().map(|(i, w)| pointer(i.get::<Vec<String>>(&all), *w)).collect()
                };
                let hasher = ObjectHasher::new(&ex).unwrap();
                let want = hasher.hash(&v);

                let bytes = serde_json::to_vec(&v).unwrap();
                prop_assert_eq!(hasher.hash_json(&bytes).unwrap(), want, "{} {:?}", v, ex);
                // The hand-written walk, where it answers, answers the same.
                let _ = fast(&hasher, &bytes);

                let mut text = String::new();
                write_json(&v, &mut (seed | 1), &mut text);
                prop_assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), &v, "{}", text);
                prop_assert_eq!(hasher.hash_json(text.as_bytes()).unwrap(), want, "{} {:?}", text, ex);
                let _ = fast(&hasher, text.as_bytes());
            }
        }
    }
}
