//! Paths with `*` (the `prune` plugin's wildcard): their expansion into
//! concrete pointers, over a parsed value or over the keys the host names,
//! and the order that removes what they reach safely.

use serde_json::Value;

use super::{PointerError, array_index, escape, join, tokens, unescape};

/// The pointers of every value `pattern` reaches in `value`, where a token
/// that is exactly `*` runs over every key of a map and every item of an
/// array (the `prune` plugin's wildcard). Pointers come back in an order
/// that [`super::remove`]s them one after another safely ([`removal_order`]).
///
/// ```
/// use herald_plugin_sdk::pointer::expand;
/// let pod = serde_json::json!({"spec": {"containers": [{"env": 1}, {}, {"env": 2}]}});
/// assert_eq!(
///     expand(&pod, "/spec/containers/*/env").unwrap(),
///     ["/spec/containers/2/env", "/spec/containers/0/env"]
/// );
/// ```
pub fn expand(value: &Value, pattern: &str) -> Result<Vec<String>, PointerError> {
    tokens(pattern)?;
    let raw: Vec<&str> = if pattern.is_empty() {
        Vec::new()
    } else {
        pattern[1..].split('/').collect()
    };
    let mut out = Vec::new();
    expand_into(value, &mut String::new(), &raw, &mut out);
    removal_order(&mut out);
    Ok(out)
}

fn expand_into(value: &Value, at: &mut String, rest: &[&str], out: &mut Vec<String>) {
    let Some((first, rest)) = rest.split_first() else {
        out.push(at.clone());
        return;
    };
    let len = at.len();
    let step = |token: &str, v: &Value, at: &mut String, out: &mut Vec<String>| {
        at.push('/');
        at.push_str(token);
        expand_into(v, at, rest, out);
        at.truncate(len);
    };
    match (*first, value) {
        ("*", Value::Object(map)) => {
            for (k, v) in map {
                step(&escape(k), v, at, out);
            }
        }
        ("*", Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                step(&i.to_string(), v, at, out);
            }
        }
        (raw, Value::Object(map)) => {
            if let Some(v) = map.get(&unescape(raw)) {
                step(raw, v, at, out);
            }
        }
        (raw, Value::Array(items)) => {
            if let Some(v) = array_index(raw, items.len()).and_then(|i| items.get(i)) {
                step(raw, v, at, out);
            }
        }
        _ => {}
    }
}

/// One step of a path with wildcards (the `prune` plugin's paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A map key or an array index, unescaped.
    Key(String),
    /// `*`: every key of a map, every item of an array.
    Any,
}

/// The keys of a map, or the indices of an array (`"0"`, `"1"`, …), as the
/// host's `keys` gives them; `None` for a scalar.
///
/// ```
/// use herald_plugin_sdk::pointer::keys;
/// assert_eq!(keys(&serde_json::json!([7, 8])), Some(vec!["0".into(), "1".into()]));
/// assert_eq!(keys(&serde_json::json!("s")), None);
/// ```
pub fn keys(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Object(m) => Some(m.keys().cloned().collect()),
        Value::Array(a) => Some((0..a.len()).map(|i| i.to_string()).collect()),
        _ => None,
    }
}

/// Appends to `out` the pointer of every value `steps` reach from the value
/// at `at`, asking `keys` for the keys (or indices) of each map (or array)
/// on the way ([`crate::Event::keys`]): only names cross from the host,
/// never the values (a Pod's containers are most of a Pod). A step the
/// value does not have reaches nothing; a key is matched as given, an index
/// as its digits.
///
/// ```
/// use herald_plugin_sdk::pointer::{Step, expand_keys};
/// use herald_plugin_sdk::TestEvent;
/// let mut pod = TestEvent::added(serde_json::json!(
///     {"spec": {"containers": [{"env": 1}, {}, {"env": 2}]}}));
/// let event = pod.as_event();
/// let mut out = Vec::new();
/// let steps = [Step::Any, Step::Key("env".into())];
/// expand_keys(&mut |p| event.keys(p), &mut "/spec/containers".into(), &steps, &mut out);
/// assert_eq!(out, ["/spec/containers/0/env", "/spec/containers/2/env"]);
/// ```
pub fn expand_keys(
    keys: &mut dyn FnMut(&str) -> Option<Vec<String>>,
    at: &mut String,
    steps: &[Step],
    out: &mut Vec<String>,
) {
    let Some((first, rest)) = steps.split_first() else {
        out.push(at.clone());
        return;
    };
    let Some(present) = keys(at) else {
        return;
    };
    let len = at.len();
    let mut go = |key: &str, at: &mut String| {
        at.push('/');
        at.push_str(&escape(key));
        expand_keys(keys, at, rest, out);
        at.truncate(len);
    };
    match first {
        Step::Any => present.iter().for_each(|k| go(k, at)),
        Step::Key(want) => {
            if present.iter().any(|k| k == want) {
                go(want, at)
            }
        }
    }
}

/// Appends to `out` the pointers `steps` may reach, for a removal: the
/// keys of each map or array from the first `*` to the last are asked of
/// `keys` ([`expand_keys`]); the steps before and after are joined as
/// given, since a removal skips a pointer to nothing. One `keys` call for
/// `/spec/containers/*/env`, where [`expand_keys`] makes one per container
/// and one per step before the `*`.
pub fn removal_candidates(
    keys: &mut dyn FnMut(&str) -> Option<Vec<String>>,
    steps: &[Step],
    out: &mut Vec<String>,
) {
    fn key(s: &Step) -> &str {
        match s {
            Step::Key(k) => k,
            // Never joined: the steps joined are before the first `*` or
            // after the last.
            Step::Any => "*",
        }
    }
    let (Some(first), Some(last)) = (
        steps.iter().position(|s| *s == Step::Any),
        steps.iter().rposition(|s| *s == Step::Any),
    ) else {
        out.push(join(steps.iter().map(key)));
        return;
    };
    let start = out.len();
    let mut at = join(steps[..first].iter().map(key));
    expand_keys(keys, &mut at, &steps[first..=last], out);
    let tail = join(steps[last + 1..].iter().map(key));
    for p in &mut out[start..] {
        p.push_str(&tail);
    }
}

/// Orders pointers so that removing them one after another removes what
/// each named before any removal: within an array, higher indices first,
/// and anything inside an item before the item. Drops repeats.
pub fn removal_order(pointers: &mut Vec<String>) {
    // An insertion sort: the lists are short, and std's sort costs a plugin
    // ~18 KB of .wasm.
    for i in 1..pointers.len() {
        let mut j = i;
        while j > 0 && removed_before(&pointers[j], &pointers[j - 1]) {
            pointers.swap(j, j - 1);
            j -= 1;
        }
    }
    pointers.dedup();
}

/// Whether `a` must be removed before `b`: token by token, a higher array
/// index first, a key before any index, keys in reverse order, and a longer
/// pointer before its own prefix.
fn removed_before(a: &str, b: &str) -> bool {
    use std::cmp::Ordering;
    // RFC 6901: digits, no leading zero.
    let index = |t: &str| -> Option<usize> {
        let digits = !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        (digits && (t == "0" || !t.starts_with('0')))
            .then(|| t.parse().ok())
            .flatten()
    };
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
