//! [`Doc`]: one state of an object as it flows from the source to the sinks —
//! the cache's stored bytes, parsed into a tree only when something reads it
//! as one.
//!
//! Most changes never need the tree: dedup hashes the bytes, the chain's
//! plugins read single fields, and a sink whose object no plugin changed
//! copies the bytes into its body. A read through [`Deref`] parses once (and
//! keeps the tree); a write through [`DerefMut`] parses and from then on the
//! doc is its tree. A removal or a replacement of an unparsed doc is made on
//! its bytes ([`Doc::remove_in_bytes`], [`Doc::replace_in_bytes`]): `prune`
//! edits every object and neither it nor the sink needs a tree for that.
//! Edits of a previous state a plugin never reads wait in [`Doc::defer`]
//! until something parses it, so pruning `old` costs nothing when no sink
//! sends it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use herald_plugin_sdk::pointer::Undo;
use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use crate::cache::CachedObject;

use super::Deferred;
use super::found::Found;
use super::{raw, splice};

/// One object state: the stored bytes, a tree parsed from them on first
/// read, or a tree given (see the module docs).
#[derive(Clone, Default)]
pub struct Doc {
    /// The stored object this doc was made from.
    stored: Option<Arc<CachedObject>>,
    /// The stored bytes with the edits made on them, once there are any.
    edited: Option<Arc<Vec<u8>>>,
    /// Whether the doc still equals its bytes (`edited`, else `stored`'s):
    /// no write to the tree, no deferred edit.
    pristine: bool,
    /// The tree, once parsed or given.
    tree: OnceLock<Value>,
    /// Edits applied when the tree is parsed.
    deferred: Vec<Deferred>,
    /// The bytes with the deferred edits made on them, once a sink asks
    /// for them (see [`Doc::raw_json`]); `None` inside when an edit could
    /// not be made on the bytes.
    settled: OnceLock<Option<Vec<u8>>>,
}

impl Doc {
    /// The state a stored object holds; parsed when first read.
    pub fn stored(object: Arc<CachedObject>) -> Self {
        Doc {
            stored: Some(object),
            edited: None,
            pristine: true,
            tree: OnceLock::new(),
            deferred: Vec::new(),
            settled: OnceLock::new(),
        }
    }

    /// Whether the tree has been built (read, written or given).
    pub fn is_parsed(&self) -> bool {
        self.tree.get().is_some()
    }

    /// The doc's bytes when it is exactly them (no edit since but those made
    /// on the bytes): what a sink can copy instead of serialising the tree.
    ///
    /// A previous state whose edits wait for a tree ([`Doc::defer`]: a
    /// plugin pruned the object, and so its previous state) has them made
    /// on its bytes instead, once, when first asked: a sink that sends
    /// `old` or a patch copies or diffs bytes, and parses nothing. Only a
    /// tree (read or written since) or an edit the bytes cannot take
    /// leaves this `None`.
    pub fn raw_json(&self) -> Option<&[u8]> {
        if self.pristine {
            return self.bytes();
        }
        if self.deferred.is_empty() || self.tree.get().is_some() {
            return None;
        }
        self.settled
            .get_or_init(|| splice::settle(self.bytes()?, &self.deferred))
            .as_deref()
    }

    /// About how many bytes the doc's JSON takes: those it was made from
    /// (with the edits made on them), 0 for a doc made from a tree. A
    /// writer sizes its buffer with it, never relies on it.
    pub(crate) fn size_hint(&self) -> usize {
        self.bytes().map_or(0, <[u8]>::len)
    }

    /// The bytes the doc was made from, with the edits made on them.
    fn bytes(&self) -> Option<&[u8]> {
        match &self.edited {
            Some(b) => Some(b),
            None => self.stored.as_ref().map(|o| o.json()),
        }
    }

    /// Removes the value at `pointer` (a valid, writable pointer) from the
    /// doc's bytes: `Some(true)` when it was there, `Some(false)` when not,
    /// `None` when the doc is a tree by now (or waits for one), so the
    /// caller edits the tree.
    pub(crate) fn remove_in_bytes(&mut self, pointer: &str) -> Option<bool> {
        self.splice(pointer, |json, tokens| splice::remove(json, tokens))
    }

    /// Removes the values at `pointers` (valid, writable, in removal order:
    /// see [`splice::remove_all`]) from the doc's bytes with one copy: which
    /// were there, or `None` when the doc is a tree by now (or waits for
    /// one) or its bytes are not JSON where a pointer looks, so the caller
    /// removes them one by one.
    pub(crate) fn remove_all_in_bytes(&mut self, pointers: &[String]) -> Option<Vec<bool>> {
        self.edit_bytes(
            |json| splice::remove_all(json, pointers),
            || vec![false; pointers.len()],
        )
    }

    /// Replaces the value at `pointer` with `value` in the doc's bytes: as
    /// [`Doc::remove_in_bytes`]; `Some(false)` when there is no value to
    /// replace (creating one is the tree's job). `value` is encoded only
    /// when the doc is its bytes.
    pub(crate) fn replace_in_bytes(&mut self, pointer: &str, value: &Value) -> Option<bool> {
        self.splice(pointer, |json, tokens| {
            splice::replace(json, tokens, &value.to_string())
        })
    }

    fn splice(
        &mut self,
        pointer: &str,
        edit: impl FnOnce(&[u8], &raw::Tokens<'_>) -> Result<Option<Vec<u8>>, raw::Malformed>,
    ) -> Option<bool> {
        let tokens = raw::tokens(pointer)?;
        self.edit_bytes(
            |json| Ok(edit(json, &tokens)?.map(|out| (out, true))),
            || false,
        )
    }

    /// Makes `edit` on the doc's bytes while the doc is its bytes: the
    /// edited bytes are kept and `edit`'s answer given, `absent`'s when it
    /// found nothing to edit; `None` when the doc is a tree by now (or waits
    /// for one) or its bytes are not JSON where `edit` looked (the tree's
    /// parse says the same, once).
    fn edit_bytes<T>(
        &mut self,
        edit: impl FnOnce(&[u8]) -> Result<Option<(Vec<u8>, T)>, raw::Malformed>,
        absent: impl FnOnce() -> T,
    ) -> Option<T> {
        if self.tree.get().is_some() || !self.pristine {
            return None;
        }
        match edit(self.bytes()?) {
            Ok(Some((out, answer))) => {
                self.edited = Some(Arc::new(out));
                Some(answer)
            }
            Ok(None) => Some(absent()),
            Err(_) => None,
        }
    }

    /// Where a call's edits of the bytes can be taken back to: `Some` while
    /// the doc is its bytes (see [`Doc::restore`]).
    pub(crate) fn mark(&self) -> Option<Option<Arc<Vec<u8>>>> {
        (self.tree.get().is_none() && self.pristine).then(|| self.edited.clone())
    }

    /// Takes the doc back to the bytes of `mark` (from [`Doc::mark`]),
    /// dropping any tree built since; `false` (and nothing done) for no mark.
    pub(crate) fn restore(&mut self, mark: Option<Option<Arc<Vec<u8>>>>) -> bool {
        let Some(edited) = mark else {
            return false;
        };
        self.settled.take();
        self.edited = edited;
        self.tree = OnceLock::new();
        self.deferred.clear();
        self.pristine = true;
        true
    }

    /// Defers `edit` until the tree is parsed; applies it at once when it
    /// is. Returns the undo step's count pushed onto `undo` (0 when deferred).
    pub(crate) fn defer(&mut self, edit: Deferred, undo: &mut Vec<Undo>) {
        self.settled.take();
        match self.tree.get_mut() {
            Some(v) => {
                self.pristine = false;
                self.deferred.clear();
                edit.apply(v, undo);
            }
            None => {
                self.pristine = false;
                self.deferred.push(edit);
            }
        }
    }

    /// The value at `pointer` (RFC 6901; `None` for an invalid one, as
    /// `pointer::get`). An unparsed doc answers from its bytes when no
    /// deferred edit touches the path, else parses.
    pub fn lookup(&self, pointer: &str) -> Option<Found<'_>> {
        match self.lookup_unparsed(pointer) {
            Some(found) => found,
            None => herald_plugin_sdk::pointer::get(self.tree(), pointer).map(Found::Tree),
        }
    }

    /// [`Doc::lookup`] without parsing: `None` when only the tree can
    /// answer (a deferred edit touches the path, or there are no bytes).
    pub(crate) fn lookup_unparsed(&self, pointer: &str) -> Option<Option<Found<'_>>> {
        self.unparsed(
            pointer,
            |v| v.map(Found::Tree),
            |bytes, tokens| Ok(raw::lookup(bytes, tokens)?.map(Found::Raw)),
        )
    }

    /// The keys of the map, or the indices of the array, at `pointer`, as
    /// [`Found::keys`]; read off the bytes while they answer, without
    /// copying or checking the value's text.
    pub fn keys(&self, pointer: &str) -> Option<Vec<String>> {
        self.keys_unparsed(pointer).unwrap_or_else(|| {
            Found::Tree(herald_plugin_sdk::pointer::get(self.tree(), pointer)?).keys()
        })
    }

    /// [`Doc::keys`] without parsing, as [`Doc::lookup_unparsed`].
    pub(crate) fn keys_unparsed(&self, pointer: &str) -> Option<Option<Vec<String>>> {
        self.unparsed(
            pointer,
            |v| Found::Tree(v?).keys(),
            // The container is walked once: its start, then its entries.
            |bytes, tokens| match raw::locate(bytes, tokens)? {
                Some(at) => raw::keys_checked(bytes, at),
                None => Ok(None),
            },
        )
    }

    /// `tree` on the tree when there is one, else `bytes` on the bytes and
    /// the pointer's tokens; `None` when only a tree can answer.
    fn unparsed<'a, T>(
        &'a self,
        pointer: &str,
        tree: impl FnOnce(Option<&'a Value>) -> T,
        bytes: impl FnOnce(&'a [u8], &raw::Tokens<'_>) -> Result<T, raw::Malformed>,
    ) -> Option<T> {
        if let Some(v) = self.tree.get() {
            return Some(tree(herald_plugin_sdk::pointer::get(v, pointer)));
        }
        let json = self.bytes()?;
        let Some(tokens) = raw::tokens(pointer) else {
            return Some(tree(None));
        };
        if self.deferred.iter().any(|e| e.overlaps(pointer, &tokens)) {
            return None;
        }
        match bytes(json, &tokens) {
            Ok(found) => Some(found),
            Err(error) => {
                tracing::error!(%error, name = self.name(), "stored object does not parse");
                None
            }
        }
    }

    /// How many edits wait for the tree.
    pub(crate) fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// Drops the edits deferred after the first `n` (a rolled-back call's).
    pub(crate) fn truncate_deferred(&mut self, n: usize) {
        self.settled.take();
        self.deferred.truncate(n);
        if self.deferred.is_empty() && self.tree.get().is_none() {
            self.pristine = self.bytes().is_some();
        }
    }

    /// Parses the tree now, applying the first `keep` deferred edits for
    /// good and the rest with their undo steps pushed onto `undo` (a call
    /// in progress made them; its rollback takes them back).
    pub(crate) fn parse_split(&mut self, keep: usize, undo: &mut Vec<Undo>) -> &mut Value {
        self.settled.take();
        if self.tree.get().is_none() {
            let mut v = self.parse_stored();
            let mut later = std::mem::take(&mut self.deferred);
            let now: Vec<Deferred> = later.drain(..keep.min(later.len())).collect();
            let mut discard = Vec::new();
            for e in now {
                e.apply(&mut v, &mut discard);
            }
            for e in later {
                e.apply(&mut v, undo);
            }
            let _ = self.tree.set(v);
        }
        self.tree.get_mut().expect("parsed above")
    }

    fn parse_stored(&self) -> Value {
        let Some(bytes) = self.bytes() else {
            return Value::Null;
        };
        match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(error) => {
                // The bytes are ones the cache wrote from parsed JSON.
                tracing::error!(%error, name = self.name(), "stored object does not parse");
                Value::Null
            }
        }
    }

    fn tree(&self) -> &Value {
        self.tree.get_or_init(|| {
            let mut v = self.parse_stored();
            let mut discard = Vec::new();
            for e in self.deferred.iter().cloned() {
                e.apply(&mut v, &mut discard);
            }
            v
        })
    }

    /// The tree, owned.
    pub fn into_value(mut self) -> Value {
        self.tree();
        self.tree.take().unwrap_or_default()
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        if let Some(o) = &self.stored
            && self.pristine
        {
            if self.edited.is_none() {
                return o.resource_version();
            }
            // Edited bytes: a version is digits, quoted without escapes.
            if let Some(Some(Found::Raw(r))) = self.lookup_unparsed("/metadata/resourceVersion")
                && let Some(rv) = r.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
                && !rv.contains('\\')
            {
                return Some(rv);
            }
        }
        self.tree()
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
    }

    /// `metadata.uid` (identity: plugins cannot change it).
    pub fn uid(&self) -> Option<&str> {
        match &self.stored {
            Some(o) => o.uid(),
            None => self.tree().pointer("/metadata/uid").and_then(Value::as_str),
        }
    }

    /// `metadata.name` (identity: plugins cannot change it).
    pub fn name(&self) -> Option<&str> {
        match &self.stored {
            Some(o) => Some(o.name()),
            None => self
                .tree()
                .pointer("/metadata/name")
                .and_then(Value::as_str),
        }
    }

    /// `metadata.namespace`, `None` when cluster-scoped (identity).
    pub fn namespace(&self) -> Option<&str> {
        match &self.stored {
            Some(o) => Some(o.namespace()).filter(|ns| !ns.is_empty()),
            None => self
                .tree()
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
        }
    }

    /// The doc as compact JSON: the stored bytes copied when pristine.
    pub fn to_json(&self) -> Vec<u8> {
        match self.raw_json() {
            Some(b) => b.to_vec(),
            None => serde_json::to_vec(self.tree()).expect("a tree serialises"),
        }
    }
}

impl From<Value> for Doc {
    fn from(v: Value) -> Self {
        Doc {
            stored: None,
            edited: None,
            pristine: false,
            tree: OnceLock::from(v),
            deferred: Vec::new(),
            settled: OnceLock::new(),
        }
    }
}

impl Deref for Doc {
    type Target = Value;
    /// The tree, parsed on first read.
    fn deref(&self) -> &Value {
        self.tree()
    }
}

impl DerefMut for Doc {
    /// The tree, parsed on first use; the doc no longer equals the stored
    /// bytes.
    fn deref_mut(&mut self) -> &mut Value {
        self.settled.take();
        self.tree();
        // The tree holds them now.
        self.deferred.clear();
        self.pristine = false;
        self.tree.get_mut().expect("parsed above")
    }
}

impl PartialEq for Doc {
    fn eq(&self, other: &Self) -> bool {
        self.tree() == other.tree()
    }
}

impl PartialEq<Value> for Doc {
    fn eq(&self, other: &Value) -> bool {
        self.tree() == other
    }
}

impl PartialEq<Doc> for Value {
    fn eq(&self, other: &Doc) -> bool {
        self == other.tree()
    }
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.stored, self.tree.get()) {
            (_, Some(v)) => fmt::Debug::fmt(v, f),
            (Some(o), None) => fmt::Debug::fmt(o, f),
            (None, None) => f.write_str("Null"),
        }
    }
}

impl Serialize for Doc {
    /// The bytes verbatim when the doc is them ([`Doc::raw_json`]; to
    /// serde_json, as its `RawValue` is written), else the tree.
    ///
    /// The bytes are not parsed again: they are JSON by construction (the
    /// source keeps what serde_json read, a splice puts JSON text in JSON
    /// text).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(raw) = self.raw_json()
            && let Ok(text) = std::str::from_utf8(raw)
        {
            let mut raw = s.serialize_struct(raw::RAW_VALUE_TOKEN, 1)?;
            raw.serialize_field(raw::RAW_VALUE_TOKEN, text)?;
            return raw.end();
        }
        self.tree().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Doc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Doc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::pointer;
    use serde_json::json;

    fn stored(v: &Value) -> Arc<CachedObject> {
        Arc::new(CachedObject::from_value(v))
    }

    #[test]
    fn keys_name_a_maps_members_once_and_an_arrays_indices_from_bytes_or_tree() {
        let v = json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "a", "namespace": "n", "labels": {"a/b": "1", "c": "2"}},
                       "spec": {"containers": [{"name": "x"}, {"name": "y"}, {}], "s": "t", "e": {}}});
        let tree = Doc::from(v.clone());
        let stored = Doc::stored(stored(&v));
        for d in [&tree, &stored] {
            let keys = |p: &str| {
                let keys = d.keys(p);
                assert_eq!(keys, d.lookup(p).and_then(|f| f.keys()), "{p}");
                keys
            };
            assert_eq!(
                keys("/spec/containers"),
                Some(vec!["0".into(), "1".into(), "2".into()])
            );
            let mut labels = keys("/metadata/labels").unwrap();
            labels.sort();
            assert_eq!(labels, ["a/b", "c"]);
            assert_eq!(keys("/spec/e"), Some(vec![]));
            assert_eq!(keys("/spec/s"), None);
            assert_eq!(keys("/spec/missing"), None);
        }
        assert!(!stored.is_parsed(), "keys come from the bytes");
        // Escapes read; a repeated key (which the API server never writes) once.
        let raw = r#"{"k\u0065y": 1, "dup": 1, "dup": 2, "z": [1, [2, 3]]}"#;
        assert_eq!(
            Found::Raw(raw).keys(),
            Some(vec!["key".into(), "dup".into(), "z".into()])
        );
        assert_eq!(
            Found::Raw("[1, [2, 3]]").keys(),
            Some(vec!["0".into(), "1".into()])
        );
        assert_eq!(Found::Raw("{\"a\": ").keys(), None, "not JSON");
        // What a doc's bytes answer with: not JSON is an error (the tree
        // then answers), a scalar has no keys.
        assert!(raw::keys_checked(b"{\"a\": ", 0).is_err());
        assert!(raw::keys_checked(b"\"s", 0).is_err());
        assert_eq!(raw::keys_checked(b"\"s\"", 0), Ok(None));
        assert_eq!(raw::keys_checked(b"[]", 0), Ok(Some(vec![])));
    }

    #[test]
    fn a_stored_doc_parses_only_when_read_and_stays_its_bytes_until_written() {
        let v = json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "7"},
                       "data": {"k": "v"}});
        let mut d = Doc::stored(stored(&v));
        assert_eq!(d.uid(), Some("u"));
        assert_eq!(d.resource_version(), Some("7"));
        assert_eq!((d.name(), d.namespace()), (Some("a"), Some("n")));
        assert!(!d.is_parsed(), "metadata comes from the index");
        let bytes = serde_json::to_vec(&json!({"o": &d})).unwrap();
        assert!(!d.is_parsed(), "a pristine doc serialises from its bytes");
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["o"], v);
        assert_eq!(d["data"]["k"], "v");
        assert!(
            d.is_parsed() && d.raw_json().is_some(),
            "a read keeps it pristine"
        );
        d["data"]["k"] = json!("w");
        assert!(d.raw_json().is_none(), "a write ends it");
        assert_eq!(serde_json::to_value(&d).unwrap()["data"]["k"], "w");
    }

    #[test]
    fn deferred_edits_apply_at_the_parse_and_a_split_parse_can_undo_the_later_ones() {
        let v = json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "s", "namespace": "n", "uid": "u"},
                       "data": {"a": "1", "b": "2"}});
        let mut undo = Vec::new();
        let mut d = Doc::stored(stored(&v));
        d.defer(Deferred::Remove("/data/a".into()), &mut undo);
        assert!(!d.is_parsed() && undo.is_empty());
        d.defer(Deferred::Replace("/data/b".into(), json!("x")), &mut undo);
        d.defer(Deferred::Replace("/absent".into(), json!("x")), &mut undo);
        assert_eq!(d["data"], json!({"b": "x"}));
        assert!(d.get("absent").is_none(), "replace creates nothing");

        // A call began after the first edit: its edits can be taken back.
        let mut d = Doc::stored(stored(&v));
        d.defer(Deferred::Remove("/data/a".into()), &mut undo);
        d.defer(Deferred::Remove("/data/b".into()), &mut undo);
        let mut call = Vec::new();
        d.parse_split(1, &mut call);
        assert_eq!(d["data"], json!({}));
        pointer::undo(&mut d, call);
        assert_eq!(d["data"], json!({"b": "2"}));

        // Or, never parsed, dropped.
        let mut d = Doc::stored(stored(&v));
        d.defer(Deferred::Remove("/data/a".into()), &mut undo);
        d.truncate_deferred(0);
        assert!(d.raw_json().is_some(), "back to its bytes");
    }

    /// The doc's value, from its bytes when it is them, else its tree.
    fn value_of(d: &Doc) -> Value {
        match d.raw_json() {
            Some(b) => serde_json::from_slice(b).expect("the bytes parse"),
            None => d.tree().clone(),
        }
    }

    #[test]
    fn deferred_edits_are_made_on_the_bytes_when_a_sink_asks_and_say_what_the_tree_says() {
        let v = json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "p", "namespace": "n", "uid": "u",
                                    "managedFields": [{"manager": "m"}],
                                    "annotations": {"a/b": "1", "c~d": "2"}},
                       "spec": {"containers": [{"name": "a", "env": [{"name": "X"}]},
                                               {"name": "b", "env": []}]}});
        let edits = [
            Deferred::Remove("/metadata/managedFields".into()),
            Deferred::Remove("/spec/containers/1/env".into()),
            Deferred::Remove("/spec/containers/0/env".into()),
            Deferred::Remove("/metadata/annotations/a~1b".into()),
            Deferred::Replace("/metadata/annotations/c~0d".into(), json!({"x": [1, "\""]})),
            Deferred::Remove("/absent/x".into()),
            Deferred::Replace("/spec/absent".into(), json!(1)),
            Deferred::Remove("/spec/containers/7".into()),
        ];
        let mut undo = Vec::new();
        let mut on_bytes = Doc::stored(stored(&v));
        let mut on_tree = Doc::stored(stored(&v));
        for e in edits {
            on_bytes.defer(e.clone(), &mut undo);
            on_tree.defer(e, &mut undo);
        }
        let bytes = on_bytes
            .raw_json()
            .expect("the edits are made on the bytes");
        assert!(!on_bytes.is_parsed(), "no tree for it");
        let want = on_tree.tree().clone();
        assert_eq!(serde_json::from_slice::<Value>(bytes).unwrap(), want);
        assert!(
            !String::from_utf8_lossy(bytes).contains("managedFields"),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        // A sink's patch from it diffs bytes; its serialisation is the bytes.
        assert_eq!(serde_json::to_value(&on_bytes).unwrap(), want);
        // A later edit is made too, not the first answer kept.
        on_bytes.defer(Deferred::Remove("/spec".into()), &mut undo);
        assert_eq!(value_of(&on_bytes).get("spec"), None);
        // Once a tree is read, the tree answers.
        let _ = on_bytes.tree();
        assert!(on_bytes.raw_json().is_none());
        assert_eq!(value_of(&on_bytes).get("spec"), None);
        assert!(undo.is_empty(), "deferred edits push no undo");
    }

    mod props {
        use super::*;
        use herald_plugin_sdk::pointer::Step;
        use proptest::prelude::*;

        fn leaf() -> BoxedStrategy<Value> {
            prop_oneof![
                Just(Value::Null),
                (-3i64..3).prop_map(Value::from),
                "[ab\"~/]{0,3}".prop_map(Value::from),
            ]
            .boxed()
        }

        /// A pointer's tokens under `/d`: keys the documents have (escaped),
        /// indices, and ones they lack.
        fn token() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["a", "b", "~0", "~1", "a~1b", "é", "0", "1", "zz"])
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Any document and any removals, replacements and removals of
            /// what paths with `*` reach (at paths it has and paths it
            /// lacks): the bytes edited say what the tree edited says, and
            /// a read of the doc with its edits still waiting finds what a
            /// read of that tree finds.
            #[test]
            fn deferred_edits_on_the_bytes_equal_them_on_the_tree(
                doc in crate::change::testing::value(leaf(), vec!["a", "b", "~", "/", "a/b", "é"], 4),
                edits in prop::collection::vec(
                    (prop::collection::vec((token(), any::<bool>()), 1..4), 0u8..3), 0..5),
                read in prop::collection::vec(token(), 0..4),
            ) {
                let v = json!({"apiVersion": "v1", "kind": "Thing",
                               "metadata": {"name": "t", "uid": "u"}, "d": doc});
                let mut undo = Vec::new();
                let (mut on_bytes, mut on_tree) = (Doc::stored(stored(&v)), Doc::stored(stored(&v)));
                for (tokens, kind) in edits {
                    let p = format!("/d/{}", tokens.iter().map(|t| t.0).collect::<Vec<_>>().join("/"));
                    let e = match kind {
                        0 => Deferred::Remove(p),
                        1 => Deferred::Replace(p, json!({"r": [1, "x"]})),
                        _ => {
                            // The same path with the flagged tokens `*`.
                            let keys = pointer::tokens(&p).unwrap();
                            let steps = std::iter::once(Step::Key("d".into()))
                                .chain(keys[1..].iter().zip(&tokens).map(|(k, (_, any))| {
                                    if *any { Step::Any } else { Step::Key(k.clone()) }
                                }))
                                .collect();
                            Deferred::RemovePaths(vec![steps])
                        }
                    };
                    on_bytes.defer(e.clone(), &mut undo);
                    on_tree.defer(e, &mut undo);
                }
                let want = on_tree.tree().clone();
                let read = format!("/d/{}", read.join("/"));
                let reader = on_bytes.clone();
                let found = reader.lookup(&read).map(|f| serde_json::from_str::<Value>(&f.to_json()).unwrap());
                prop_assert_eq!(found.as_ref(), pointer::get(&want, &read));
                prop_assert!(on_bytes.raw_json().is_some() || on_bytes.deferred_len() == 0);
                prop_assert_eq!(value_of(&on_bytes), want);
            }
        }
    }
}
