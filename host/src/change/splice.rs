//! Editing a document's bytes without building a tree: removing a member or
//! an item, or replacing a value, by copying the text around it. `prune`
//! removes `managedFields` and a few lists from every object; done on the
//! bytes that costs a scan and a copy instead of a parse here and a
//! serialisation at the sink.
//!
//! Both edits find their target with [`raw::lookup`] (the same walk a read
//! takes) and give back the whole document with the edit made, or `None`
//! when there is nothing at the pointer. The text outside the edited
//! container is copied as it is; the container itself comes back compact.

use serde_json::value::RawValue;

use super::raw;

/// The document with the member or item at `tokens` removed (every member
/// of that name, as a tree keeps only one), or `None` when there is none.
/// The root cannot be removed (`None`).
///
/// # Errors
/// The bytes are not one JSON document.
pub(crate) fn remove(json: &[u8], tokens: &[String]) -> serde_json::Result<Option<Vec<u8>>> {
    let Some((last, path)) = tokens.split_last() else {
        return Ok(None);
    };
    let Some(parent) = raw::lookup(json, path)? else {
        return Ok(None);
    };
    let text = parent.get().as_bytes();
    let entries = match text.first() {
        Some(b'{') => members(text),
        Some(b'[') => items(text),
        _ => return Ok(None),
    };
    let keep = |e: &Entry| match text[0] {
        b'{' => !key_is(&text[e.key..e.value], last),
        _ => Some(e.index) != index(last),
    };
    if entries.iter().all(keep) {
        return Ok(None);
    }
    let (open, close) = if text[0] == b'{' {
        (b'{', b'}')
    } else {
        (b'[', b']')
    };
    let mut out = Vec::with_capacity(json.len());
    let at = offset(json, parent);
    out.extend_from_slice(&json[..at]);
    out.push(open);
    let mut first = true;
    for e in entries.iter().filter(|e| keep(e)) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&text[e.key..e.end]);
    }
    out.push(close);
    out.extend_from_slice(&json[at + text.len()..]);
    Ok(Some(out))
}

/// The document with the value at `tokens` replaced by the JSON text
/// `value`, or `None` when there is no value there (nothing is created).
///
/// # Errors
/// The bytes are not one JSON document.
pub(crate) fn replace(
    json: &[u8],
    tokens: &[String],
    value: &str,
) -> serde_json::Result<Option<Vec<u8>>> {
    let Some(old) = raw::lookup(json, tokens)? else {
        return Ok(None);
    };
    let at = offset(json, old);
    let len = old.get().len();
    let mut out = Vec::with_capacity(json.len() - len + value.len());
    out.extend_from_slice(&json[..at]);
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(&json[at + len..]);
    Ok(Some(out))
}

/// Where `inner`, borrowed from `json`, starts in it.
fn offset(json: &[u8], inner: &RawValue) -> usize {
    inner.get().as_ptr() as usize - json.as_ptr() as usize
}

/// One member of an object or item of an array, as offsets into the
/// container's text: the member's key (for items, the value) starts at
/// `key`, its value at `value`, and it ends at `end`.
struct Entry {
    index: usize,
    key: usize,
    value: usize,
    end: usize,
}

/// The members of the object `text` (valid JSON, as `raw::lookup` checked).
fn members(text: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut i = skip_ws(text, 1);
    while text[i] != b'}' {
        let key = i;
        let key_end = skip_string(text, i);
        let value = skip_ws(text, skip_ws(text, key_end) + 1);
        let end = skip_value(text, value);
        out.push(Entry {
            index: out.len(),
            key,
            value: key_end,
            end,
        });
        i = skip_ws(text, end);
        if text[i] == b',' {
            i = skip_ws(text, i + 1);
        }
    }
    out
}

/// The items of the array `text`.
fn items(text: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut i = skip_ws(text, 1);
    while text[i] != b']' {
        let end = skip_value(text, i);
        out.push(Entry {
            index: out.len(),
            key: i,
            value: i,
            end,
        });
        i = skip_ws(text, end);
        if text[i] == b',' {
            i = skip_ws(text, i + 1);
        }
    }
    out
}

/// Whether the quoted key `quoted` is `token`, escapes read.
fn key_is(quoted: &[u8], token: &str) -> bool {
    let inner = &quoted[1..quoted.len() - 1];
    if !inner.contains(&b'\\') {
        return inner == token.as_bytes();
    }
    serde_json::from_slice::<String>(quoted).is_ok_and(|k| k == token)
}

/// The array index `token` names (RFC 6901: digits, no leading zero).
fn index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    (digits && (token == "0" || !token.starts_with('0')))
        .then(|| token.parse().ok())
        .flatten()
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while matches!(text[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The end of the string starting at `i` (its opening quote).
fn skip_string(text: &[u8], mut i: usize) -> usize {
    i += 1;
    loop {
        match text[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end of the value starting at `i`.
fn skip_value(text: &[u8], i: usize) -> usize {
    match text[i] {
        b'"' => skip_string(text, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match text[j] {
                    b'"' => {
                        j = skip_string(text, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while j < text.len()
                && !matches!(text[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            j
        }
    }
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
}
