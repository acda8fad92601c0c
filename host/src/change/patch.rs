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
        (b'{', b'{') => diff_object(left, l.start, right, r.start, at, patch),
        (b'[', b'[') => diff_array(left, l.start, right, r.start, at, patch),
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
    l: usize,
    right: &[u8],
    r: usize,
    at: &mut PointerBuf,
    patch: &mut Patch,
) -> Result<(), Malformed> {
    let (ea, eb) = (raw::entries(left, l)?, raw::entries(right, r)?);
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
    l: usize,
    right: &[u8],
    r: usize,
    at: &mut PointerBuf,
    patch: &mut Patch,
) -> Result<(), Malformed> {
    let (a, b) = (raw::entries(left, l)?, raw::entries(right, r)?);
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

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
