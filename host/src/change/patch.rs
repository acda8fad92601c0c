//! The JSON Patch (RFC 6902) from one state of an object to the next, as
//! `json_patch::diff` computes it, read from the stored bytes: members whose
//! text is the same in both states are skipped without being parsed, so a
//! label change on a Pod parses the label, not the Pod. States that are
//! trees by now (a plugin changed them) are diffed as trees.

use std::collections::BTreeMap;
use std::ops::Range;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::Value;

use super::Doc;
use super::raw::{self, Malformed};

/// The patch that turns `old` into `new`: the same operations, in the same
/// order, as `json_patch::diff` on their trees.
pub fn diff(old: &Doc, new: &Doc) -> Patch {
    if let (Some(a), Some(b)) = (old.raw_json(), new.raw_json()) {
        let mut patch = Patch::default();
        let mut at = PointerBuf::new();
        match diff_text(a, whole(a), b, whole(b), &mut at, &mut patch) {
            Ok(()) => return patch,
            // The bytes are ones the cache wrote; the trees say the same.
            Err(error) => tracing::error!(%error, "stored object does not parse; diffing trees"),
        }
    }
    json_patch::diff(old, new)
}

fn whole(json: &[u8]) -> Range<usize> {
    let start = json
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let end = json
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    start..end
}

/// `json_patch`'s `diff_impl` over the values at `l` in `left` and `r` in
/// `right`.
fn diff_text(
    left: &[u8],
    l: Range<usize>,
    right: &[u8],
    r: Range<usize>,
    at: &mut PointerBuf,
    patch: &mut Patch,
) -> Result<(), Malformed> {
    if l.is_empty() || r.is_empty() {
        return Err(Malformed { at: l.start });
    }
    if left[l.clone()] == right[r.clone()] {
        return Ok(());
    }
    match (left[l.start], right[r.start]) {
        (b'{', b'{') => diff_object(left, l, right, r, at, patch),
        (b'[', b'[') => diff_array(left, l, right, r, at, patch),
        _ => {
            let (a, b) = (parse(left, l)?, parse(right, r)?);
            if a != b {
                patch.0.push(PatchOperation::Replace(ReplaceOperation {
                    path: at.clone(),
                    value: b,
                }));
            }
            Ok(())
        }
    }
}

fn diff_object(
    left: &[u8],
    l: Range<usize>,
    right: &[u8],
    r: Range<usize>,
    at: &mut PointerBuf,
    patch: &mut Patch,
) -> Result<(), Malformed> {
    let (ea, eb) = paired_entries(left, l, right, r)?;
    if let Some(order) = same_keys(left, &ea, right, &eb) {
        // The same keys in the same places: only changed members matter,
        // in the order of their keys (a map's).
        for i in order {
            let (x, y) = (&ea[i], &eb[i]);
            if left[x.value..x.end] == right[y.value..y.end] {
                continue;
            }
            let key = raw::unquote(&left[x.start..x.key_end]).ok_or(Malformed { at: x.start })?;
            at.push_back(&*key);
            diff_text(left, x.value..x.end, right, y.value..y.end, at, patch)?;
            at.pop_back();
        }
        return Ok(());
    }
    let (a, b) = (members(left, &ea)?, members(right, &eb)?);
    for (key, rv) in &b {
        at.push_back(key.as_str());
        match a.get(key) {
            Some(lv) => diff_text(left, lv.clone(), right, rv.clone(), at, patch)?,
            None => add(patch, at, parse(right, rv.clone())?),
        }
        at.pop_back();
    }
    for key in a.keys().filter(|k| !b.contains_key(*k)) {
        at.push_back(key.as_str());
        patch
            .0
            .push(PatchOperation::Remove(RemoveOperation { path: at.clone() }));
        at.pop_back();
    }
    Ok(())
}

fn diff_array(
    left: &[u8],
    l: Range<usize>,
    right: &[u8],
    r: Range<usize>,
    at: &mut PointerBuf,
    patch: &mut Patch,
) -> Result<(), Malformed> {
    let (a, b) = paired_entries(left, l, right, r)?;
    let mut shift = 0usize;
    for i in 0..a.len().max(b.len()) {
        at.push_back(i - shift);
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => {
                diff_text(left, x.value..x.end, right, y.value..y.end, at, patch)?
            }
            (Some(_), None) => {
                shift += 1;
                patch
                    .0
                    .push(PatchOperation::Remove(RemoveOperation { path: at.clone() }));
            }
            (None, Some(y)) => add(patch, at, parse(right, y.value..y.end)?),
            (None, None) => {}
        }
        at.pop_back();
    }
    Ok(())
}

/// The entries of the containers at `l` in `left` and at `r` in `right`:
/// what `raw::entries` gives for each, with the text the two share at
/// their start and at their end read once, from the left. The same bytes
/// read from the same place in the grammar give the same entries, so
/// - an entry of the left that ends within the common start is the right's
///   at the same offsets;
/// - once the right's reading comes to an entry start whose rest of the
///   text is within the common end and as long as the rest from one of the
///   left's entry starts, the right's remaining entries are the left's
///   from there, moved.
///
/// A change to one label of a Pod reads the Pod's `spec` and `status`
/// once, not once per side.
fn paired_entries(
    left: &[u8],
    l: Range<usize>,
    right: &[u8],
    r: Range<usize>,
) -> Result<(Vec<raw::Entry>, Vec<raw::Entry>), Malformed> {
    let a = raw::entries(left, l.start)?;
    let (lt, rt) = (&left[l.clone()], &right[r.clone()]);
    let start = common_prefix(lt, rt);
    let end = common_suffix(lt, rt);
    let moved = |e: &raw::Entry, from: usize, to: usize| raw::Entry {
        start: e.start - from + to,
        key_end: e.key_end - from + to,
        value: e.value - from + to,
        end: e.end - from + to,
    };
    let shared = a.iter().take_while(|e| e.end - l.start <= start).count();
    let mut b: Vec<raw::Entry> = a[..shared]
        .iter()
        .map(|e| moved(e, l.start, r.start))
        .collect();
    // The left's entry whose rest of the text is `len` bytes long, if any
    // (entries come in order, so their rests shorten).
    let from_end = |len: usize| {
        let i = a.partition_point(|e| l.end - e.start > len);
        a.get(i).filter(|e| l.end - e.start == len).map(|_| i)
    };
    let (read, stopped) = raw::entries_until(right, r.start, b.last().map(|e| e.end), |y| {
        let len = r.end - y;
        len <= end && from_end(len).is_some()
    })?;
    b.extend(read);
    if let Some(y) = stopped {
        let i = from_end(r.end - y).ok_or(Malformed { at: y })?;
        b.extend(a[i..].iter().map(|e| moved(e, a[i].start, y)));
    }
    Ok((a, b))
}

/// How many bytes `a` and `b` share at their start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 32;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at their end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 32;
    let n = a.len().min(b.len());
    let (ea, eb) = (a.len(), b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[ea - i - CHUNK..ea - i] == b[eb - i - CHUNK..eb - i] {
        i += CHUNK;
    }
    i + a[..ea - i]
        .iter()
        .rev()
        .zip(b[..eb - i].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// When the objects of `a` (in `left`) and `b` (in `right`) have the same
/// keys, spelt the same, in the same places, each once and none escaped:
/// their indices in the order a map orders their keys (a key's bytes are
/// its string's). `None` otherwise (the maps decide).
fn same_keys(left: &[u8], a: &[raw::Entry], right: &[u8], b: &[raw::Entry]) -> Option<Vec<usize>> {
    if a.len() != b.len() {
        return None;
    }
    for (x, y) in a.iter().zip(b) {
        let key = &left[x.start..x.key_end];
        if key != &right[y.start..y.key_end] || key.contains(&b'\\') {
            return None;
        }
    }
    let key = |i: usize| &left[a[i].start..a[i].key_end];
    let mut order: Vec<usize> = (0..a.len()).collect();
    order.sort_unstable_by(|&i, &j| key(i).cmp(key(j)));
    if order.windows(2).any(|w| key(w[0]) == key(w[1])) {
        return None;
    }
    Some(order)
}

/// The members `entries` of an object in `json`, by key as a parsed map
/// orders them (the last of repeated keys kept).
fn members(
    json: &[u8],
    entries: &[raw::Entry],
) -> Result<BTreeMap<String, Range<usize>>, Malformed> {
    let mut out = BTreeMap::new();
    for e in entries {
        let key = raw::unquote(&json[e.start..e.key_end]).ok_or(Malformed { at: e.start })?;
        out.insert(key.into_owned(), e.value..e.end);
    }
    Ok(out)
}

fn add(patch: &mut Patch, at: &PointerBuf, value: Value) {
    patch.0.push(PatchOperation::Add(AddOperation {
        path: at.clone(),
        value,
    }));
}

fn parse(json: &[u8], span: Range<usize>) -> Result<Value, Malformed> {
    let at = span.start;
    serde_json::from_slice(&json[span]).map_err(|_| Malformed { at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachedObject;
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Arc;

    fn doc(v: &Value) -> Doc {
        Doc::stored(Arc::new(CachedObject::from_value(v)))
    }

    /// Small values, so that two documents often share some.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            (-3i64..3).prop_map(|n| Value::from(n as f64 + 0.5)),
            "[ab\"]{0,3}".prop_map(Value::from),
        ];
        let keys = ["a", "b", "c", "a/b", "~", "é", ""];
        crate::change::testing::value(leaf.boxed(), keys.to_vec(), 4)
    }

    #[test]
    fn a_label_change_is_the_patch_json_patch_gives() {
        let old = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "p", "namespace": "n", "uid": "u",
                                      "labels": {"app": "web", "gone": "x"}},
                         "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"app": "db", "new": "y"});
        new["spec"]["containers"] = json!([{"name": "a", "image": "i"}]);
        let want = json_patch::diff(&old, &new);
        assert_eq!(diff(&doc(&old), &doc(&new)), want);
        assert_eq!(want.0.len(), 5, "{want:?}");
        assert!(diff(&doc(&old), &doc(&old)).0.is_empty());
    }

    /// A doc over `json` as the server wrote it (members in its order).
    fn text(json: &str) -> Doc {
        let fields = crate::cache::IndexFields::default();
        Doc::stored(Arc::new(CachedObject::new(
            "",
            "x",
            json.as_bytes().into(),
            &fields,
        )))
    }

    #[test]
    fn members_in_any_order_repeated_or_escaped_give_json_patch_s_patch() {
        let pairs = [
            // The same keys in the same places (the server's usual case).
            (
                r#"{"b":1,"a":{"y":1,"x":2},"c":[1]}"#,
                r#"{"b":2,"a":{"y":1,"x":3},"c":[1]}"#,
            ),
            // Another order.
            (r#"{"b":1,"a":2}"#, r#"{"a":3,"b":1}"#),
            // A repeated key: the last counts.
            (r#"{"k":1,"k":2}"#, r#"{"k":2,"k":2}"#),
            (r#"{"k":1,"k":2}"#, r#"{"k":1,"k":3}"#),
            // The same key spelt with an escape.
            (r#"{"a":1,"b":2}"#, r#"{"\u0061":1,"b":3}"#),
            (r#"{"\u0061":1}"#, r#"{"\u0061":2}"#),
            // Keys a byte sort and a map sort agree on: é after z.
            (
                r#"{"é":1,"z":1,"~":1,"a/b":1}"#,
                r#"{"é":2,"z":2,"~":2,"a/b":2}"#,
            ),
        ];
        for (a, b) in pairs {
            let (va, vb): (Value, Value) = (
                serde_json::from_str(a).unwrap(),
                serde_json::from_str(b).unwrap(),
            );
            let want = json_patch::diff(&va, &vb);
            assert_eq!(diff(&text(a), &text(b)), want, "{a} -> {b}");
            let mut applied = va.clone();
            json_patch::patch(&mut applied, &want).unwrap();
            assert_eq!(applied, vb, "{a} -> {b}");
        }
    }

    /// `v` with the entry that `path` picks (an index per level, taken
    /// modulo the container's length) set to `new`, or removed for `None`;
    /// where the path ends early, `new` is added (or replaces a scalar).
    fn edit(v: &mut Value, path: &[usize], new: Option<Value>) {
        match (v, path.split_first()) {
            (Value::Object(m), Some((&i, rest))) if !m.is_empty() => {
                let key = m.keys().nth(i % m.len()).cloned().unwrap_or_default();
                match (rest.is_empty(), new) {
                    (true, Some(n)) => {
                        m.insert(key, n);
                    }
                    (true, None) => {
                        m.remove(&key);
                    }
                    (false, new) => edit(&mut m[&key], rest, new),
                }
            }
            (Value::Array(items), Some((&i, rest))) if !items.is_empty() => {
                let k = i % items.len();
                match (rest.is_empty(), new) {
                    (true, Some(n)) => items[k] = n,
                    (true, None) => {
                        items.remove(k);
                    }
                    (false, new) => edit(&mut items[k], rest, new),
                }
            }
            (Value::Object(m), _) => {
                if let Some(n) = new {
                    m.insert("added".into(), n);
                }
            }
            (Value::Array(items), _) => items.extend(new),
            (leaf, _) => {
                if let Some(n) = new {
                    *leaf = n;
                }
            }
        }
    }

    /// The bytes of a stored doc.
    fn bytes(v: &Value) -> Vec<u8> {
        doc(v).to_json()
    }

    #[test]
    fn shared_starts_and_ends_give_the_entries_each_side_has() {
        // A label changed: the start (apiVersion, kind) and the end (spec,
        // status) are shared; an added member; a longer value; a duplicate
        // and an escaped key in the shared end; arrays; nothing shared.
        let pairs = [
            (
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"a":"1"}},"spec":{"x":[1,2]},"status":{}}"#,
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"a":"22"}},"spec":{"x":[1,2]},"status":{}}"#,
            ),
            (r#"{"a":1,"b":2}"#, r#"{"a":1,"n":0,"b":2}"#),
            (
                r#"{"a":1,"k":1,"z":2,"k":5}"#,
                r#"{"a":2,"k":1,"z":2,"k":5}"#,
            ),
            (r#"{"a":1,"\u0061":2}"#, r#"{"a":3,"\u0061":2}"#),
            (r#"[1,[2,3],{"a":4},5]"#, r#"[1,[2,3,4],{"a":4},5]"#),
            (r#"{"a":0,"b":0}"#, r#"{"a":0,"b":0,"b":0}"#),
            (r#"{"x":"}"}"#, r#"{"y":"}"}"#),
            ("{}", r#"{"a":{}}"#),
            ("[]", "[]"),
        ];
        for (a, b) in pairs {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            let got = paired_entries(a, 0..a.len(), b, 0..b.len()).unwrap();
            let want = (raw::entries(a, 0).unwrap(), raw::entries(b, 0).unwrap());
            assert_eq!(
                got,
                want,
                "{} / {}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// A document and the same with a few entries set, added or
        /// removed (what an update does, so the texts share their start and
        /// end): each side's entries as `raw::entries` reads them, and the
        /// patch json_patch gives.
        #[test]
        fn an_edited_document_gives_the_same_entries_and_json_patchs_patch(
            a in prop::collection::vec(("[abc]", value()), 0..6),
            edits in prop::collection::vec(
                (prop::collection::vec(0usize..8, 0..4), prop::option::of(value())),
                1..4,
            ),
        ) {
            let a = Value::Object(a.into_iter().collect());
            let mut b = a.clone();
            for (path, new) in edits {
                edit(&mut b, &path, new);
            }
            let (ta, tb) = (bytes(&a), bytes(&b));
            let got = paired_entries(&ta, whole(&ta), &tb, whole(&tb)).unwrap();
            prop_assert_eq!(got, (raw::entries(&ta, 0).unwrap(), raw::entries(&tb, 0).unwrap()));
            let (va, vb): (Value, Value) =
                (serde_json::from_slice(&ta).unwrap(), serde_json::from_slice(&tb).unwrap());
            let patch = diff(&doc(&a), &doc(&b));
            prop_assert_eq!(&patch, &json_patch::diff(&va, &vb));
            let mut patched = va.clone();
            json_patch::patch(&mut patched, &patch).unwrap();
            prop_assert_eq!(patched, vb);
        }

        /// Any two documents (objects at the top, as every object is): the
        /// same patch as json_patch's, and it turns the old into the new.
        #[test]
        fn the_patch_from_the_bytes_is_json_patchs(
            a in prop::collection::vec(("[abc]", value()), 0..5),
            b in prop::collection::vec(("[abc]", value()), 0..5),
        ) {
            let a = Value::Object(a.into_iter().collect());
            let b = Value::Object(b.into_iter().collect());
            let (da, db) = (doc(&a), doc(&b));
            // The reference is json_patch on the trees of the same bytes.
            let (ta, tb) = (da.to_json(), db.to_json());
            let (ta, tb): (Value, Value) =
                (serde_json::from_slice(&ta).unwrap(), serde_json::from_slice(&tb).unwrap());
            let got = diff(&da, &db);
            prop_assert_eq!(&got, &json_patch::diff(&ta, &tb));
            let mut patched = ta.clone();
            json_patch::patch(&mut patched, &got).unwrap();
            prop_assert_eq!(patched, tb);
        }
    }
}
