//! Paths the user names: RFC 6901 pointers or dotted paths, with `*` over
//! array items and map keys, and their expansion into concrete pointers.

use herald_plugin_sdk::pointer;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A map key or an array index (unescaped).
    Key(String),
    /// `*`: every item of an array, every key of a map.
    Any,
}

/// A parsed path: the text the user wrote and its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// As written, for error messages.
    pub text: String,
    /// The steps, never empty.
    pub segments: Vec<Segment>,
}

impl Path {
    /// Parses `/a/b/*/c` (RFC 6901; `~0` is `~`, `~1` is `/`) or `a.b.*.c`
    /// (dotted; `\.` is a literal dot, `\*` a literal star, `\\` a backslash).
    ///
    /// # Errors
    ///
    /// The reason the text is not a path; the caller adds the path itself.
    pub fn parse(text: &str) -> Result<Path, String> {
        let segments = if let Some(rest) = text.strip_prefix('/') {
            rest.split('/')
                .map(pointer_token)
                .collect::<Result<Vec<_>, _>>()?
        } else {
            dotted(text)?
        };
        Ok(Path {
            text: text.to_string(),
            segments,
        })
    }

    /// The pointer to the value this path names, if it has no `*`.
    pub fn concrete(&self) -> Option<String> {
        let mut keys = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            match s {
                Segment::Key(k) => keys.push(k.as_str()),
                Segment::Any => return None,
            }
        }
        Some(pointer::join(keys))
    }

    /// Splits at the first `*`: the pointer to the value the `*` runs over,
    /// and the steps from the `*` on. `None` if there is no `*`.
    pub fn split_at_wildcard(&self) -> Option<(String, &[Segment])> {
        let i = self.segments.iter().position(|s| *s == Segment::Any)?;
        let keys = self.segments[..i].iter().map(|s| match s {
            Segment::Key(k) => k.as_str(),
            Segment::Any => "*",
        });
        Some((pointer::join(keys), &self.segments[i..]))
    }
}

fn pointer_token(raw: &str) -> Result<Segment, String> {
    if raw == "*" {
        return Ok(Segment::Any);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err("`~` must be followed by 0 or 1 (RFC 6901)".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(Segment::Key(out))
}

fn dotted(text: &str) -> Result<Vec<Segment>, String> {
    if text.is_empty() {
        return Err("empty path".into());
    }
    let mut segments = Vec::new();
    let mut cur = String::new();
    // A segment written `\*` is the key "*", not the wildcard.
    let mut escaped_star = false;
    let mut chars = text.chars();
    let mut finish = |cur: &mut String, escaped_star: &mut bool| -> Result<(), String> {
        if cur.is_empty() {
            return Err("empty segment (two dots in a row, or a leading or trailing dot)".into());
        }
        let seg = if cur == "*" && !*escaped_star {
            Segment::Any
        } else {
            Segment::Key(std::mem::take(cur))
        };
        cur.clear();
        *escaped_star = false;
        segments.push(seg);
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '\\')) => cur.push(e),
                Some('*') => {
                    cur.push('*');
                    escaped_star = true;
                }
                _ => return Err("`\\` must be followed by `.`, `*` or `\\`".into()),
            },
            '.' => finish(&mut cur, &mut escaped_star)?,
            c => cur.push(c),
        }
    }
    finish(&mut cur, &mut escaped_star)?;
    Ok(segments)
}

/// Appends to `out` the pointer of every value under the JSON text `json`
/// (which sits at `at`) that `rest` reaches. Each container on the way is
/// split into its members' text, so what the path does not go into is
/// skipped, never built into a tree (a Pod's containers are most of a Pod,
/// and a tree of them costs the sandbox more than the rest of the event).
/// Of repeated keys the last counts, as in a parsed map.
///
/// # Errors
/// Text on the way that is not JSON.
pub fn expand_json(
    json: &str,
    at: &mut String,
    rest: &[Segment],
    out: &mut Vec<String>,
) -> Result<(), String> {
    let Some((first, rest)) = rest.split_first() else {
        out.push(at.clone());
        return Ok(());
    };
    let len = at.len();
    let entries = split(json)?;
    for (n, (key, value)) in entries.iter().enumerate() {
        let key = match key {
            Some(quoted) => Some(unquote(quoted)?),
            None => None,
        };
        let step = match (first, &key) {
            (Segment::Any, Some(k)) => pointer::escape(k),
            (Segment::Any, None) => n.to_string(),
            (Segment::Key(want), Some(k)) if want == k => pointer::escape(k),
            (Segment::Key(want), None) if index(want) == Some(n) => want.clone(),
            _ => continue,
        };
        // A key repeated later: that member counts, not this one.
        if let Some(k) = &key
            && entries[n + 1..]
                .iter()
                .any(|(later, _)| later.is_some_and(|l| unquote(l).is_ok_and(|l| &l == k)))
        {
            continue;
        }
        at.push('/');
        at.push_str(&step);
        let r = expand_json(value, at, rest, out);
        at.truncate(len);
        r?;
    }
    Ok(())
}

/// A member's quoted key (`None` for an array item) and its value's text.
type Entry<'a> = (Option<&'a str>, &'a str);

/// The members of the object or the items of the array `json`; nothing for
/// a scalar.
fn split(json: &str) -> Result<Vec<Entry<'_>>, String> {
    let b = json.as_bytes();
    let bad = |at: usize| format!("not JSON at byte {at}");
    let ws = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    let (object, close) = match b.get(i) {
        Some(b'{') => (true, b'}'),
        Some(b'[') => (false, b']'),
        _ => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    i = ws(i + 1);
    if b.get(i) == Some(&close) {
        return Ok(out);
    }
    loop {
        let key = if object {
            let end = skip(b, i).filter(|_| b[i] == b'"').ok_or_else(|| bad(i))?;
            let colon = ws(end);
            if b.get(colon) != Some(&b':') {
                return Err(bad(colon));
            }
            let key = &json[i..end];
            i = ws(colon + 1);
            Some(key)
        } else {
            None
        };
        let end = skip(b, i).ok_or_else(|| bad(i))?;
        out.push((key, &json[i..end]));
        i = ws(end);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(c) if *c == close => return Ok(out),
            _ => return Err(bad(i)),
        }
    }
}

/// The end of the value that starts at `i`.
fn skip(b: &[u8], i: usize) -> Option<usize> {
    let string = |mut j: usize| loop {
        j += 1;
        match b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 1,
            _ => {}
        }
    };
    match b.get(i)? {
        b'"' => string(i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string(j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The key a quoted JSON string names, escapes read.
fn unquote(quoted: &str) -> Result<String, String> {
    let inner = &quoted[1..quoted.len() - 1];
    if inner.contains('\\') {
        serde_json::from_str(quoted).map_err(|e| e.to_string())
    } else {
        Ok(inner.to_string())
    }
}

fn index(token: &str) -> Option<usize> {
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    token.parse().ok()
}

/// Orders pointers so that removing them one after another removes what
/// each named before the removal: within an array, higher indices first, and
/// anything inside an item before the item or any lower one. Drops repeats.
pub fn removal_order(pointers: &mut Vec<String>) {
    // An insertion sort: the lists are short, and std's sort would add
    // ~18 KB to the .wasm.
    for i in 1..pointers.len() {
        let mut j = i;
        while j > 0 && before(&pointers[j], &pointers[j - 1]) {
            pointers.swap(j, j - 1);
            j -= 1;
        }
    }
    pointers.dedup();
}

/// Whether `a` must be removed before `b`: token by token, a higher array
/// index first, a key before any index, keys in reverse order, and a longer
/// pointer before its own prefix.
fn before(a: &str, b: &str) -> bool {
    use std::cmp::Ordering;
    let mut ta = a.split('/').skip(1);
    let mut tb = b.split('/').skip(1);
    loop {
        let ord = match (ta.next(), tb.next()) {
            (None, None) => return false,
            (Some(_), None) => return true,
            (None, Some(_)) => return false,
            (Some(x), Some(y)) => match (index(x), index(y)) {
                (Some(i), Some(j)) => i.cmp(&j),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => x.cmp(y),
            },
        };
        match ord {
            Ordering::Equal => continue,
            o => return o == Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn keys(ks: &[&str]) -> Vec<Segment> {
        ks.iter()
            .map(|k| {
                if *k == "*" {
                    Segment::Any
                } else {
                    Segment::Key(k.to_string())
                }
            })
            .collect()
    }

    #[test]
    fn parses_pointers_and_dotted_paths_alike() {
        let want = keys(&["spec", "containers", "*", "env"]);
        assert_eq!(
            Path::parse("/spec/containers/*/env").unwrap().segments,
            want
        );
        assert_eq!(Path::parse("spec.containers.*.env").unwrap().segments, want);
        assert_eq!(
            Path::parse("/metadata/annotations/a~1b~0c")
                .unwrap()
                .segments,
            keys(&["metadata", "annotations", "a/b~c"])
        );
        assert_eq!(
            Path::parse(r"metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration")
                .unwrap()
                .segments,
            keys(&[
                "metadata",
                "annotations",
                "kubectl.kubernetes.io/last-applied-configuration"
            ])
        );
        assert_eq!(
            Path::parse(r"a.\*.b\\c").unwrap().segments,
            vec![
                Segment::Key("a".into()),
                Segment::Key("*".into()),
                Segment::Key(r"b\c".into())
            ]
        );
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["", "a..b", ".a", "a.", "/a/~2", "/a~", r"a\x"] {
            assert!(Path::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn concrete_and_split() {
        let p = Path::parse("metadata.annotations.a/b").unwrap();
        assert_eq!(p.concrete().as_deref(), Some("/metadata/annotations/a~1b"));
        assert_eq!(p.split_at_wildcard(), None);
        let p = Path::parse("/spec/containers/*/env").unwrap();
        assert_eq!(p.concrete(), None);
        let (at, rest) = p.split_at_wildcard().unwrap();
        assert_eq!(at, "/spec/containers");
        assert_eq!(rest, keys(&["*", "env"]).as_slice());
    }

    #[test]
    fn expands_over_arrays_and_maps_only_where_present() {
        let v = json!([
            {"env": [1], "ports": {"a/b": {"x": 1}, "c": {}}},
            {"name": "no-env"},
            {"env": [], "ports": []}
        ]);
        let expand = |v: &Value, at: &mut String, rest: &[Segment], out: &mut Vec<String>| {
            expand_json(&v.to_string(), at, rest, out).unwrap()
        };
        let mut out = vec![];
        expand(&v, &mut "/c".to_string(), &keys(&["*", "env"]), &mut out);
        assert_eq!(out, ["/c/0/env", "/c/2/env"]);
        out.clear();
        expand(
            &v,
            &mut "/c".to_string(),
            &keys(&["*", "ports", "*", "x"]),
            &mut out,
        );
        assert_eq!(out, ["/c/0/ports/a~1b/x"]);
        out.clear();
        expand(&v, &mut String::new(), &keys(&["1", "name"]), &mut out);
        assert_eq!(out, ["/1/name"]);
        out.clear();
        expand(
            &json!("scalar"),
            &mut String::new(),
            &keys(&["*"]),
            &mut out,
        );
        assert!(out.is_empty());
        // Escaped keys come back escaped; repeated keys count once.
        let text = r#"{"a\u002fb": {"x": 1}, "d": {"x": 1}, "d": {"y": 2}}"#;
        expand_json(text, &mut String::new(), &keys(&["*", "x"]), &mut out).unwrap();
        assert_eq!(out, ["/a~1b/x"]);
        assert!(expand_json("{\"a\": [", &mut String::new(), &keys(&["*"]), &mut out).is_err());
    }

    /// The walk over a parsed tree that `expand_json` replaces.
    fn expand_tree(value: &Value, at: &mut String, rest: &[Segment], out: &mut Vec<String>) {
        let Some((first, rest)) = rest.split_first() else {
            out.push(at.clone());
            return;
        };
        let len = at.len();
        let mut go = |step: String, v: &Value, at: &mut String| {
            at.push('/');
            at.push_str(&step);
            expand_tree(v, at, rest, out);
            at.truncate(len);
        };
        match (first, value) {
            (Segment::Any, Value::Object(m)) => {
                m.iter().for_each(|(k, v)| go(pointer::escape(k), v, at))
            }
            (Segment::Any, Value::Array(a)) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| go(i.to_string(), v, at)),
            (Segment::Key(k), Value::Object(m)) => {
                if let Some(v) = m.get(k) {
                    go(pointer::escape(k), v, at)
                }
            }
            (Segment::Key(k), Value::Array(a)) => {
                if let Some(v) = index(k).and_then(|i| a.get(i)) {
                    go(k.clone(), v, at)
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_text_walk_reaches_what_a_tree_walk_reaches() {
        let docs = [
            json!({"spec": {"containers": [
                {"name": "a", "env": [{"name": "X", "value": "}]\"\\"}], "args": ["x"]},
                {"name": "b"},
                {"name": "c", "env": [], "ports": {"http": {"p": 80}, "a/b~c": {"p": 1}}}]}}),
            json!([[], {}, [[1, {"x": null}]], "s", 1.5e-3, true, null]),
            json!({"": {"": 1}, "~": {"*": [0]}, "é\n": {"x": {"y": {}}}}),
        ];
        let paths = [
            "/spec/containers/*/env",
            "/spec/containers/*/ports/*/p",
            "/spec/*/*/name",
            "/*",
            "/*/*",
            "/*/*/*",
            "/2/0/*/x",
            "/*/",
            "/~0/*/0",
            "/*/x/y",
            "/spec/containers/1/*",
        ];
        for doc in &docs {
            for text in [doc.to_string(), serde_json::to_string_pretty(doc).unwrap()] {
                for p in paths {
                    let path = Path::parse(p).unwrap();
                    let (mut want, mut got) = (Vec::new(), Vec::new());
                    expand_tree(doc, &mut String::new(), &path.segments, &mut want);
                    expand_json(&text, &mut String::new(), &path.segments, &mut got).unwrap();
                    want.sort();
                    got.sort();
                    assert_eq!(got, want, "{p} in {text}");
                }
            }
        }
    }

    #[test]
    fn removal_order_puts_higher_indices_and_deeper_paths_first() {
        let mut ps: Vec<String> = ["/a/2", "/a/10", "/a/1/x", "/a/1", "/b", "/a/2"]
            .map(String::from)
            .to_vec();
        removal_order(&mut ps);
        assert_eq!(ps, ["/b", "/a/10", "/a/2", "/a/1/x", "/a/1"]);
    }
}
