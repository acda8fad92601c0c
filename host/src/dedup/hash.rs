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

use std::fmt;
use std::sync::LazyLock;

use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3Default;

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

// === the exclusion trie ===

/// One step of an exclusion pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Any,
}

/// Parses an RFC 6901 pointer; `*` is the wildcard.
fn parse_pointer(p: &str) -> Result<Vec<Segment>, &'static str> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(if p.is_empty() {
            "the empty pointer names the whole object"
        } else {
            "a pointer starts with `/`"
        });
    };
    rest.split('/')
        .map(|raw| {
            if raw == "*" {
                return Ok(Segment::Any);
            }
            let mut key = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => key.push('~'),
                        Some('1') => key.push('/'),
                        _ => return Err("`~` must be followed by 0 or 1"),
                    },
                    c => key.push(c),
                }
            }
            Ok(Segment::Key(key))
        })
        .collect()
}

/// A trie of excluded pointers. After [`Node::normalize`] the wildcard's
/// subtree is merged into every named child, so one node per position is
/// enough during the walk: the child for a key is the named one, else `any`.
#[derive(Debug, Clone, Default)]
struct Node {
    /// This position itself is excluded.
    excluded: bool,
    children: Vec<Child>,
    any: Option<Box<Node>>,
}

#[derive(Debug, Clone)]
struct Child {
    key: String,
    /// The key as an array index, if it is one.
    index: Option<usize>,
    node: Node,
}

impl Node {
    fn key(&self, key: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.key == key)
            .map(|c| &c.node)
            .or(self.any.as_deref())
    }

    fn index(&self, i: usize) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.index == Some(i))
            .map(|c| &c.node)
            .or(self.any.as_deref())
    }

    fn child_mut(&mut self, key: &str) -> &mut Node {
        let pos = match self.children.iter().position(|c| c.key == key) {
            Some(pos) => pos,
            None => {
                self.children.push(Child {
                    key: key.to_string(),
                    index: key
                        .parse()
                        .ok()
                        .filter(|_| key == "0" || !key.starts_with('0')),
                    node: Node::default(),
                });
                self.children.len() - 1
            }
        };
        &mut self.children[pos].node
    }

    fn insert(&mut self, segments: &[Segment]) {
        match segments.split_first() {
            None => self.excluded = true,
            Some((Segment::Any, rest)) => self.any.get_or_insert_default().insert(rest),
            Some((Segment::Key(k), rest)) => self.child_mut(k).insert(rest),
        }
    }

    fn merge(&mut self, other: &Node) {
        self.excluded |= other.excluded;
        for oc in &other.children {
            self.child_mut(&oc.key).merge(&oc.node);
        }
        match (&mut self.any, &other.any) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.any = Some(b.clone()),
            _ => {}
        }
    }

    /// Merges `any` into every named child, recursively: a named child then
    /// stands for everything that applies below its key.
    fn normalize(&mut self) {
        if let Some(any) = &mut self.any {
            any.normalize();
        }
        let any = self.any.clone();
        for c in &mut self.children {
            if let Some(a) = &any {
                c.node.merge(a);
            }
            c.node.normalize();
        }
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
}
