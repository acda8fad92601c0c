//! Paths the user names: RFC 6901 pointers or dotted paths, with `*` over
//! array items and map keys, and their expansion into concrete pointers.

use herald_plugin_sdk::pointer;

/// One step of a path: a key or index, or `*` (the SDK's wildcard step).
pub use herald_plugin_sdk::pointer::Step as Segment;

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

    /// `Event::keys` on an in-memory object.
    fn keys_in(doc: &Value) -> impl Fn(&str) -> Option<Vec<String>> + '_ {
        |p| pointer::keys(pointer::get(doc, p)?)
    }

    #[test]
    fn expands_over_arrays_and_maps_only_where_present() {
        let v = json!({"c": [
            {"env": [1], "ports": {"a/b": {"x": 1}, "c": {}}},
            {"name": "no-env"},
            {"env": [], "ports": []}
        ], "s": "scalar"});
        let expand = |at: &str, rest: &[&str]| {
            let mut out = vec![];
            pointer::expand_keys(&mut keys_in(&v), &mut at.to_string(), &keys(rest), &mut out);
            out
        };
        assert_eq!(expand("/c", &["*", "env"]), ["/c/0/env", "/c/2/env"]);
        assert_eq!(
            expand("/c", &["*", "ports", "*", "x"]),
            ["/c/0/ports/a~1b/x"]
        );
        assert_eq!(expand("/c", &["1", "name"]), ["/c/1/name"]);
        assert!(expand("/c", &["01", "name"]).is_empty(), "not an index");
        assert!(expand("/s", &["*"]).is_empty());
        assert!(expand("/missing", &["*"]).is_empty());
    }

    /// The array index `token` names (RFC 6901: digits, no leading zero).
    fn index(token: &str) -> Option<usize> {
        let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
        (digits && (token == "0" || !token.starts_with('0')))
            .then(|| token.parse().ok())
            .flatten()
    }

    /// The walk over a parsed tree that `expand_keys` replaces.
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
    fn the_walk_over_keys_reaches_what_a_tree_walk_reaches() {
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
            for p in paths {
                let path = Path::parse(p).unwrap();
                let (mut want, mut got) = (Vec::new(), Vec::new());
                expand_tree(doc, &mut String::new(), &path.segments, &mut want);
                pointer::expand_keys(
                    &mut keys_in(doc),
                    &mut String::new(),
                    &path.segments,
                    &mut got,
                );
                want.sort();
                got.sort();
                assert_eq!(got, want, "{p} in {doc}");
            }
        }
    }
}
