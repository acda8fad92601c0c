//! Paths the user names: RFC 6901 pointers or dotted paths, with `*` over
//! array items and map keys, and their expansion into concrete pointers.

use herald_plugin_sdk::pointer;
use serde_json::Value;

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

/// Appends to `out` the pointer of every value under `value` (which sits at
/// `at`) that `rest` reaches.
pub fn expand(value: &Value, at: &mut String, rest: &[Segment], out: &mut Vec<String>) {
    let Some((first, rest)) = rest.split_first() else {
        out.push(at.clone());
        return;
    };
    let len = at.len();
    match (first, value) {
        (Segment::Any, Value::Object(map)) => {
            for (k, v) in map {
                at.push('/');
                at.push_str(&pointer::escape(k));
                expand(v, at, rest, out);
                at.truncate(len);
            }
        }
        (Segment::Any, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                expand(v, at, rest, out);
                at.truncate(len);
            }
        }
        (Segment::Key(k), Value::Object(map)) => {
            if let Some(v) = map.get(k) {
                at.push('/');
                at.push_str(&pointer::escape(k));
                expand(v, at, rest, out);
                at.truncate(len);
            }
        }
        (Segment::Key(k), Value::Array(items)) => {
            if let Some(v) = index(k).and_then(|i| items.get(i)) {
                at.push('/');
                at.push_str(k);
                expand(v, at, rest, out);
                at.truncate(len);
            }
        }
        _ => {}
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
    use serde_json::json;

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
