//! [`CachedObject`]: one object as the cache keeps it — its compact JSON, exactly as
//! the API server sent it, plus the few fields queries and the source read.
//!
//! Why bytes and not a parsed tree: a `serde_json::Value` (or `DynamicObject`) costs
//! six to seven times the object's JSON size in heap (a B-tree leaf of ~630 bytes per
//! JSON object, one allocation per key and string); the bytes cost their length. The
//! query API copies them into answers as they are, and the source parses them back
//! only when a change needs the previous state.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Separates namespace and name in a key. `\0` sorts before every other byte, so keys
/// sort exactly as `(namespace, name)` pairs do; neither may contain it.
const SEP: char = '\0';

/// The store key of `(namespace, name)`; the namespace is `""` when cluster-scoped.
pub(crate) fn key_of(namespace: &str, name: &str) -> String {
    let mut k = String::with_capacity(namespace.len() + 1 + name.len());
    k.push_str(namespace);
    k.push(SEP);
    k.push_str(name);
    k
}

/// One cached object: its compact JSON and an index of the fields read without
/// parsing it (uid, resourceVersion, labels, owner uids).
///
/// Immutable; the store shares it behind an `Arc` with readers.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedObject {
    /// `namespace \0 name`.
    key: Box<str>,
    /// The object, compact JSON, with `apiVersion` and `kind`.
    json: Box<[u8]>,
    /// uid, resourceVersion, label keys and values, owner uids, packed; see [`Index`].
    index: Index,
}

impl fmt::Debug for CachedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedObject")
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .field("resource_version", &self.resource_version())
            .field("bytes", &self.json.len())
            .finish()
    }
}

/// The fields of `metadata` an object is indexed by, as read from its JSON.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct IndexFields {
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) owner_uids: Vec<String>,
}

impl CachedObject {
    /// An object from its compact JSON (which must already carry `apiVersion` and
    /// `kind`), its key and its indexed fields.
    pub(crate) fn new(namespace: &str, name: &str, json: Box<[u8]>, fields: &IndexFields) -> Self {
        Self {
            key: key_of(namespace, name).into_boxed_str(),
            json,
            index: Index::pack(fields),
        }
    }

    /// An object from a parsed tree (which should carry `apiVersion` and
    /// `kind`): its compact JSON and the fields the index keeps. For states
    /// that do not come from a watch (a recording, `herald explain`, tests).
    pub fn from_value(v: &Value) -> Self {
        let json = serde_json::to_vec(v).expect("a tree serialises");
        Self::of_value_and_json(v, json)
    }

    /// An object from its compact JSON, kept byte for byte (its keys in the
    /// order they come), with the fields the index keeps read from a parse of
    /// it: a state as a server wrote it (benches, tests).
    ///
    /// # Errors
    /// `json` is not JSON.
    pub fn from_json(json: Vec<u8>) -> serde_json::Result<Self> {
        let v: Value = serde_json::from_slice(&json)?;
        Ok(Self::of_value_and_json(&v, json))
    }

    /// The object whose tree is `v` and whose JSON is `json`.
    fn of_value_and_json(v: &Value, json: Vec<u8>) -> Self {
        let md = |p: &str| v.pointer(p).and_then(Value::as_str);
        let labels = v
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let owner_uids = v
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| Some(r.get("uid")?.as_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let fields = IndexFields {
            uid: md("/metadata/uid").map(str::to_string),
            resource_version: md("/metadata/resourceVersion").map(str::to_string),
            labels,
            owner_uids,
        };
        Self::new(
            md("/metadata/namespace").unwrap_or_default(),
            md("/metadata/name").unwrap_or_default(),
            json.into_boxed_slice(),
            &fields,
        )
    }

    /// The store key, `namespace \0 name`.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// `(namespace, name)`; the namespace is `""` when cluster-scoped.
    pub(crate) fn key_pair(&self) -> (&str, &str) {
        self.key.split_once(SEP).unwrap_or(("", &self.key))
    }

    /// The namespace, `""` when cluster-scoped.
    pub fn namespace(&self) -> &str {
        self.key_pair().0
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.key_pair().1
    }

    /// The object as compact JSON, byte for byte as the API server sent it (with
    /// `apiVersion` and `kind` added when the server left them out, as lists do).
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The object parsed into a JSON tree.
    ///
    /// # Errors
    /// Never for bytes the cache wrote; the error is serde_json's.
    pub fn to_value(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.json)
    }

    /// The object (or the part of it `T` names) parsed into `T`.
    ///
    /// # Errors
    /// When the JSON does not fit `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.json)
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.index.uid()
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.index.resource_version()
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every label, in the order the object has them.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.index.labels()
    }

    /// The uids of `metadata.ownerReferences`.
    pub(crate) fn owner_uids(&self) -> impl Iterator<Item = &str> {
        self.index.owner_uids()
    }
}

// === impl Index ===

/// uid, resourceVersion, labels and owner uids in one allocation: a header of two
/// `u16` counts (labels, owners) and then the strings, each preceded by its length as a
/// little-endian `u32`, in the order uid, resourceVersion, label key, label value, …,
/// owner uid, …. One allocation instead of one per string matters when a pod has ten
/// labels: each small allocation costs at least 32 bytes in glibc malloc.
#[derive(Clone, PartialEq, Eq)]
struct Index(Box<[u8]>);

/// Marks an absent uid or resourceVersion (a present one is at most `u32::MAX - 1`).
const ABSENT: u32 = u32::MAX;

impl Index {
    fn pack(f: &IndexFields) -> Self {
        let opt_len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let strings = opt_len(&f.uid)
            + opt_len(&f.resource_version)
            + f.labels
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + f.owner_uids.iter().map(String::len).sum::<usize>();
        let count = 2 + 2 * f.labels.len() + f.owner_uids.len();
        let mut buf = Vec::with_capacity(4 + 4 * count + strings);
        let labels = u16::try_from(f.labels.len()).unwrap_or(u16::MAX);
        let owners = u16::try_from(f.owner_uids.len()).unwrap_or(u16::MAX);
        buf.extend_from_slice(&labels.to_le_bytes());
        buf.extend_from_slice(&owners.to_le_bytes());
        let mut put = |s: Option<&str>| match s {
            Some(s) => {
                let len = u32::try_from(s.len()).unwrap_or(ABSENT - 1);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(&s.as_bytes()[..len as usize]);
            }
            None => buf.extend_from_slice(&ABSENT.to_le_bytes()),
        };
        put(f.uid.as_deref());
        put(f.resource_version.as_deref());
        for (k, v) in f.labels.iter().take(labels.into()) {
            put(Some(k));
            put(Some(v));
        }
        for o in f.owner_uids.iter().take(owners.into()) {
            put(Some(o));
        }
        Self(buf.into_boxed_slice())
    }

    fn counts(&self) -> (usize, usize) {
        let n = |i: usize| usize::from(u16::from_le_bytes([self.0[i], self.0[i + 1]]));
        (n(0), n(2))
    }

    /// Every string slot after the header, in order.
    fn slots(&self) -> Slots<'_> {
        Slots { rest: &self.0[4..] }
    }

    fn uid(&self) -> Option<&str> {
        self.slots().next().flatten()
    }

    fn resource_version(&self) -> Option<&str> {
        self.slots().nth(1).flatten()
    }

    fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        let (labels, _) = self.counts();
        let mut slots = self.slots().skip(2).map(Option::unwrap_or_default);
        std::iter::from_fn(move || Some((slots.next()?, slots.next()?))).take(labels)
    }

    fn owner_uids(&self) -> impl Iterator<Item = &str> {
        let (labels, owners) = self.counts();
        self.slots()
            .skip(2 + 2 * labels)
            .take(owners)
            .map(Option::unwrap_or_default)
    }
}

struct Slots<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Slots<'a> {
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Self::Item> {
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len);
        if len == ABSENT {
            self.rest = rest;
            return Some(None);
        }
        let (s, rest) = rest.split_at_checked(len as usize)?;
        self.rest = rest;
        // Packed from `&str`s, so always UTF-8.
        Some(std::str::from_utf8(s).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_namespace_name_pairs() {
        let pairs = [("a", "z"), ("a-b", "a"), ("ab", "a"), ("", "n"), ("a", "")];
        let mut by_key: Vec<_> = pairs.iter().map(|(n, m)| key_of(n, m)).collect();
        by_key.sort();
        let mut by_pair = pairs.to_vec();
        by_pair.sort();
        let want: Vec<_> = by_pair.iter().map(|(n, m)| key_of(n, m)).collect();
        assert_eq!(by_key, want);
    }

    #[test]
    fn index_round_trips() {
        let fields = IndexFields {
            uid: Some("u-1".into()),
            resource_version: None,
            labels: vec![
                ("app".into(), "web".into()),
                ("empty".into(), String::new()),
            ],
            owner_uids: vec!["o-1".into(), "o-2".into()],
        };
        let o = CachedObject::new("ns", "x", b"{}".to_vec().into(), &fields);
        assert_eq!(o.key_pair(), ("ns", "x"));
        assert_eq!(o.uid(), Some("u-1"));
        assert_eq!(o.resource_version(), None);
        assert_eq!(
            o.labels().collect::<Vec<_>>(),
            [("app", "web"), ("empty", "")]
        );
        assert_eq!(o.label("app"), Some("web"));
        assert_eq!(o.label("nope"), None);
        assert_eq!(o.owner_uids().collect::<Vec<_>>(), ["o-1", "o-2"]);

        let bare = CachedObject::new("", "node", b"{}".to_vec().into(), &IndexFields::default());
        assert_eq!(bare.key_pair(), ("", "node"));
        assert_eq!((bare.uid(), bare.resource_version()), (None, None));
        assert_eq!(bare.labels().count() + bare.owner_uids().count(), 0);
    }
}
