//! Editing a document's bytes without building a tree: removing a member or
//! an item, or replacing a value, by copying the text around it. `prune`
//! removes `managedFields` and a few lists from every object; done on the
//! bytes that costs a scan and a copy instead of a parse here and a
//! serialisation at the sink.
//!
//! Both edits find their target with [`raw::find`] (the walk a read takes)
//! and give back the whole document with the edit made, or `None` when there
//! is nothing at the pointer. The text outside the edited container is
//! copied as it is; the container itself comes back compact.

use super::Deferred;
use super::raw::{self, Malformed};

/// The document with the member or item at `tokens` removed (every member
/// of that name), or `None` when there is none. The root cannot be removed
/// (`None`).
///
/// # Errors
/// The bytes on the path are not JSON.
pub(crate) fn remove(
    json: &[u8],
    tokens: &[impl AsRef<str>],
) -> Result<Option<Vec<u8>>, Malformed> {
    let Some((last, path)) = tokens.split_last() else {
        return Ok(None);
    };
    let last = last.as_ref();
    let Some(parent) = raw::find(json, path)? else {
        return Ok(None);
    };
    let (open, close) = match json[parent.start] {
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => return Ok(None),
    };
    let entries = raw::entries(json, parent.start)?;
    let at = raw::index(last);
    let object = open == b'{';
    let keep = |(i, e): &(usize, &raw::Entry)| match object {
        true => !raw::key_is(&json[e.start..e.key_end], last),
        false => Some(*i) != at,
    };
    if entries.iter().enumerate().all(|e| keep(&e)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(json.len());
    out.extend_from_slice(&json[..parent.start]);
    out.push(open);
    let mut first = true;
    for (_, e) in entries.iter().enumerate().filter(|e| keep(e)) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&json[e.start..e.end]);
    }
    out.push(close);
    out.extend_from_slice(&json[parent.end..]);
    Ok(Some(out))
}

/// The document with every value at `pointers` removed, as [`remove`] one
/// after another would leave it, but located in `json` as it is and copied
/// once: `pointers` must be in an order where each names before any removal
/// what it names at its turn (`pointer::removal_order`'s: inner before
/// outer, higher indices first). Says which were there; `None` when none
/// was (or a pointer is not valid).
///
/// # Errors
/// The bytes on a path are not JSON.
pub(crate) fn remove_all(
    json: &[u8],
    pointers: &[String],
) -> Result<Option<RemovedAll>, Malformed> {
    let mut touched: Vec<Touched> = Vec::new();
    let mut found = Vec::with_capacity(pointers.len());
    let mut path = Path::default();
    for p in pointers {
        let Some(tokens) = raw::tokens(p) else {
            return Ok(None);
        };
        found.push(mark(json, tokens, &mut path, &mut touched)?);
    }
    if !found.contains(&true) {
        return Ok(None);
    }
    touched.sort_unstable_by_key(|t| t.open);
    let mut out = Vec::with_capacity(json.len());
    let mut next = 0;
    emit(json, 0..json.len(), &touched, &mut next, &mut out);
    Ok(Some((out, found)))
}

/// The document after [`remove_all`], and which of its pointers were there.
pub(crate) type RemovedAll = (Vec<u8>, Vec<bool>);

/// A container with members or items to remove.
struct Touched {
    open: usize,
    close: usize,
    entries: Vec<raw::Entry>,
    removed: Vec<bool>,
}

/// The last parent [`mark`] went to: its tokens, and where the value after
/// each of them starts (`at[0]` the root). Pointers in removal order share
/// their first tokens (`/spec/containers/3/env`, `/spec/containers/2/env`),
/// so the next walk starts where the two part instead of at the root.
#[derive(Default)]
struct Path<'p> {
    tokens: raw::Tokens<'p>,
    at: smallvec::SmallVec<[usize; 8]>,
}

impl<'p> Path<'p> {
    /// Where the value at `tokens` starts, walking on from the longest
    /// prefix shared with the last walk.
    fn find(
        &mut self,
        json: &[u8],
        tokens: &[std::borrow::Cow<'p, str>],
    ) -> Result<Option<usize>, Malformed> {
        if self.at.is_empty() {
            self.at.push(raw::skip_ws(json, 0)?);
        }
        let shared = self
            .tokens
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        self.tokens.truncate(shared);
        self.at.truncate(shared + 1);
        for token in &tokens[shared..] {
            let Some(at) = raw::step(json, self.at[self.at.len() - 1], token)? else {
                return Ok(None);
            };
            self.tokens.push(token.clone());
            self.at.push(at);
        }
        Ok(Some(self.at[self.at.len() - 1]))
    }
}

/// Marks what `tokens` names (every member of the name) in its container;
/// whether anything not marked before was there.
fn mark<'p>(
    json: &[u8],
    tokens: raw::Tokens<'p>,
    path: &mut Path<'p>,
    touched: &mut Vec<Touched>,
) -> Result<bool, Malformed> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        return Ok(false);
    };
    let last = last.as_ref();
    let Some(open) = path.find(json, parent_tokens)? else {
        return Ok(false);
    };
    let object = match json[open] {
        b'{' => true,
        b'[' => false,
        _ => return Ok(false),
    };
    let t = match touched.iter().position(|t| t.open == open) {
        Some(i) => &mut touched[i],
        None => {
            let entries = raw::entries(json, open)?;
            // The container's closing bracket follows its last entry.
            let close = raw::skip_ws(json, entries.last().map_or(open + 1, |e| e.end))?;
            touched.push(Touched {
                open,
                close,
                removed: vec![false; entries.len()],
                entries,
            });
            touched.last_mut().expect("pushed")
        }
    };
    let at = raw::index(last);
    let mut any = false;
    for (i, e) in t.entries.iter().enumerate() {
        let hit = match object {
            true => raw::key_is(&json[e.start..e.key_end], last),
            false => Some(i) == at,
        };
        if hit && !t.removed[i] {
            t.removed[i] = true;
            any = true;
        }
    }
    Ok(any)
}

/// Copies `json[range]` to `out`, each touched container in it (from
/// `touched[*next]` on, ordered by where they open) written with its kept
/// entries only, joined by commas as [`remove`] writes them.
fn emit(
    json: &[u8],
    range: std::ops::Range<usize>,
    touched: &[Touched],
    next: &mut usize,
    out: &mut Vec<u8>,
) {
    let mut at = range.start;
    while let Some(t) = touched.get(*next).filter(|t| t.open < range.end) {
        *next += 1;
        if !t.removed.contains(&true) {
            // Named a member that is not there: left as it is.
            continue;
        }
        out.extend_from_slice(&json[at..t.open]);
        out.push(json[t.open]);
        let mut first = true;
        for (e, removed) in t.entries.iter().zip(&t.removed) {
            if *removed {
                // What was marked inside it goes with it.
                while touched.get(*next).is_some_and(|n| n.open < e.end) {
                    *next += 1;
                }
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            emit(json, e.start..e.end, touched, next, out);
        }
        out.push(json[t.close]);
        at = t.close + 1;
    }
    out.extend_from_slice(&json[at..range.end]);
}

/// The document with the value at `tokens` replaced by the JSON text
/// `value`, or `None` when there is no value there (nothing is created).
///
/// # Errors
/// The bytes on the path are not JSON.
pub(crate) fn replace(
    json: &[u8],
    tokens: &[impl AsRef<str>],
    value: &str,
) -> Result<Option<Vec<u8>>, Malformed> {
    let Some(old) = raw::find(json, tokens)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(json.len() - old.len() + value.len());
    out.extend_from_slice(&json[..old.start]);
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(&json[old.end..]);
    Ok(Some(out))
}

/// `json` with each of the `edits` made on it, in order (what
/// [`Deferred::apply`] does to its tree); `None` when one cannot be (an
/// invalid pointer, or bytes that are not JSON where it looks).
pub(crate) fn settle(json: &[u8], edits: &[Deferred]) -> Option<Vec<u8>> {
    let mut json = std::borrow::Cow::Borrowed(json);
    for edit in edits {
        match edit {
            Deferred::Remove(p) => {
                let out = remove(&json, &raw::tokens(p)?);
                edited(&mut json, out)?;
            }
            Deferred::Replace(p, value) => {
                let out = replace(&json, &raw::tokens(p)?, &value.to_string());
                edited(&mut json, out)?;
            }
            Deferred::RemovePaths(paths) => {
                // The keys on the way are read off the bytes as they are
                // when the edit is made, as the tree's edit reads its tree.
                let mut malformed = false;
                let at = Deferred::removals(paths, |p| {
                    let found = raw::find(&json, &raw::tokens(p)?);
                    malformed |= found.is_err();
                    raw::keys(&json, found.ok()??.start)
                });
                if malformed {
                    return None;
                }
                // Writable, in removal order: removed at once.
                let out = remove_all(&json, &at).map(|o| o.map(|(out, _)| out));
                edited(&mut json, out)?;
            }
        }
    }
    Some(json.into_owned())
}

/// Takes an edit's outcome into `json`: `None` when the bytes were not
/// JSON where the edit looked.
fn edited(
    json: &mut std::borrow::Cow<'_, [u8]>,
    out: Result<Option<Vec<u8>>, Malformed>,
) -> Option<()> {
    match out {
        Ok(Some(done)) => *json = std::borrow::Cow::Owned(done),
        // Nothing there: the tree's edit does nothing either.
        Ok(None) => {}
        Err(_) => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::pointer;
    use serde_json::{Value, json};

    fn toks(p: &str) -> Vec<String> {
        pointer::tokens(p).unwrap()
    }

    fn docs() -> Vec<Vec<u8>> {
        let doc = json!({"metadata": {"labels": {"app": "web", "a/b": "s", "t~": 1},
                                      "managedFields": [{"m": "x", "f": {"f:a": {}}}],
                                      "namespace": "n", "list": [1, {"x": [true, null]}, "z"]},
                         "spec": {"containers": [{"env": [{"name": "A", "v": "}]\"\\"}], "i": "a"},
                                                 {"env": [], "i": "b"}]},
                         "n": null, "e": {}, "one": {"only": [0]}, "num": -1.5e3});
        let pretty = serde_json::to_vec_pretty(&doc).unwrap();
        vec![serde_json::to_vec(&doc).unwrap(), pretty]
    }

    const POINTERS: [&str; 22] = [
        "",
        "/metadata",
        "/metadata/labels/app",
        "/metadata/labels/a~1b",
        "/metadata/labels/t~0",
        "/metadata/managedFields",
        "/metadata/list/0",
        "/metadata/list/1",
        "/metadata/list/2",
        "/metadata/list/3",
        "/metadata/list/01",
        "/metadata/list/-",
        "/metadata/list/1/x/1",
        "/spec/containers/0/env",
        "/spec/containers/1/env",
        "/spec/containers/0/env/0/v",
        "/one/only",
        "/one/only/0",
        "/n",
        "/num",
        "/missing",
        "/n/x",
    ];

    #[test]
    fn a_removal_on_the_bytes_gives_what_a_removal_from_the_tree_gives() {
        for bytes in docs() {
            let tree: Value = serde_json::from_slice(&bytes).unwrap();
            for p in POINTERS {
                let mut want = tree.clone();
                let hit = !p.is_empty() && pointer::remove(&mut want, p).is_some();
                let got = remove(&bytes, &toks(p)).unwrap();
                assert_eq!(got.is_some(), hit, "{p}");
                if let Some(got) = got {
                    let got: Value = serde_json::from_slice(&got)
                        .unwrap_or_else(|e| panic!("{p}: {e}: {}", String::from_utf8_lossy(&got)));
                    assert_eq!(got, want, "{p}");
                }
            }
        }
    }

    #[test]
    fn a_replacement_on_the_bytes_gives_what_one_in_the_tree_gives_and_creates_nothing() {
        for bytes in docs() {
            let tree: Value = serde_json::from_slice(&bytes).unwrap();
            for p in POINTERS {
                let mut want = tree.clone();
                let hit = pointer::get(&want, p).is_some();
                if let Some(v) = want.pointer_mut(p) {
                    *v = json!("<redacted>");
                }
                let got = replace(&bytes, &toks(p), "\"<redacted>\"").unwrap();
                assert_eq!(got.is_some(), hit, "{p}");
                if let Some(got) = got {
                    assert_eq!(serde_json::from_slice::<Value>(&got).unwrap(), want, "{p}");
                }
            }
        }
    }

    #[test]
    fn every_member_of_a_duplicated_name_goes_and_escaped_keys_match() {
        let raw = br#"{"dup": 1, "k\u0065y": [1], "dup": {"x": 2}, "z": 0}"#;
        let out = remove(raw, &toks("/dup")).unwrap().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!({"key": [1], "z": 0})
        );
        let out = remove(raw, &toks("/key")).unwrap().unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"dup": 1,"dup": {"x": 2},"z": 0}"#
        );
        assert!(remove(b"{\"a\": ", &toks("/a")).is_err(), "not a document");
    }

    mod prop {
        use super::super::*;
        use herald_plugin_sdk::pointer;
        use proptest::prelude::*;
        use serde_json::Value;

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (-1e6f64..1e6).prop_map(Value::from),
                "[a-z\"\\\\\\]{}\\[,: ]{0,6}".prop_map(Value::from),
            ];
            let keys = ["a", "b", "0", "1", "a/b", "~", "\"", "\\", "é", ""];
            crate::change::testing::value(leaf.boxed(), keys.to_vec(), 5)
        }

        /// Every pointer into `v`, and one past each container's end.
        fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
            let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
            match v {
                Value::Object(m) => {
                    out.push(format!("{at}/missing"));
                    for (k, c) in m {
                        let p = format!("{at}/{}", esc(k));
                        out.push(p.clone());
                        pointers(c, p, out);
                    }
                }
                Value::Array(a) => {
                    out.push(format!("{at}/{}", a.len()));
                    for (i, c) in a.iter().enumerate() {
                        let p = format!("{at}/{i}");
                        out.push(p.clone());
                        pointers(c, p, out);
                    }
                }
                _ => out.push(format!("{at}/x")),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Removing several pointers at once, in removal order, leaves
            /// the bytes [`remove`] leaves one after another (to the byte,
            /// compact or pretty) and finds what it finds.
            #[test]
            fn removing_at_once_equals_removing_one_after_another(
                v in value(),
                pretty in any::<bool>(),
                pick in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
            ) {
                let bytes = if pretty {
                    serde_json::to_vec_pretty(&v).unwrap()
                } else {
                    serde_json::to_vec(&v).unwrap()
                };
                let mut all = Vec::new();
                pointers(&v, String::new(), &mut all);
                let mut chosen: Vec<String> = pick.iter().map(|i| i.get(&all).clone()).collect();
                pointer::removal_order(&mut chosen);
                let mut want = bytes.clone();
                let mut hits = Vec::new();
                for p in &chosen {
                    let out = remove(&want, &pointer::tokens(p).unwrap()).unwrap();
                    hits.push(out.is_some());
                    if let Some(out) = out {
                        want = out;
                    }
                }
                match remove_all(&bytes, &chosen).unwrap() {
                    Some((got, found)) => {
                        prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
                        prop_assert_eq!(found, hits);
                    }
                    None => {
                        prop_assert!(!hits.contains(&true), "{:?} {:?}", chosen, hits);
                    }
                }
            }

            /// A read, a removal and a replacement on the bytes (compact or
            /// pretty) give what they give on the tree.
            #[test]
            fn the_bytes_answer_and_change_as_the_tree_does(v in value(), pretty in any::<bool>()) {
                let bytes = if pretty {
                    serde_json::to_vec_pretty(&v).unwrap()
                } else {
                    serde_json::to_vec(&v).unwrap()
                };
                // The reference is the tree of the same bytes (floats read back
                // as serde_json reads them).
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                let mut all = vec![String::new()];
                pointers(&v, String::new(), &mut all);
                for p in all {
                    let t = pointer::tokens(&p).unwrap();
                    let read = raw::lookup(&bytes, &t).unwrap()
                        .map(|r| serde_json::from_str::<Value>(r).unwrap());
                    prop_assert_eq!(read.as_ref(), v.pointer(&p), "read {}", p);

                    let mut want = v.clone();
                    let hit = !p.is_empty() && pointer::remove(&mut want, &p).is_some();
                    let got = remove(&bytes, &t).unwrap();
                    prop_assert_eq!(got.is_some(), hit, "remove {}", p);
                    if let Some(got) = got {
                        prop_assert_eq!(serde_json::from_slice::<Value>(&got).unwrap(), want, "remove {}", p);
                    }

                    let mut want = v.clone();
                    let hit = want.pointer_mut(&p).map(|x| *x = Value::from("<r>")).is_some();
                    let got = replace(&bytes, &t, "\"<r>\"").unwrap();
                    prop_assert_eq!(got.is_some(), hit, "replace {}", p);
                    if let Some(got) = got {
                        prop_assert_eq!(serde_json::from_slice::<Value>(&got).unwrap(), want, "replace {}", p);
                    }
                }
            }
        }
    }
}
