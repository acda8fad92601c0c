//! Sorting, `limit` and `continue` for list answers.
//!
//! Objects are ordered by (namespace, name). A continue token names the last key
//! returned; the next page starts after it. Unlike the API server there is no snapshot
//! behind a token: an object present for the whole walk is returned exactly once, one
//! created or deleted meanwhile may or may not be.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::cache::{CachedObject, object_key};

use super::error::ApiError;

/// One page of a list.
pub(crate) struct Page {
    pub(crate) items: Vec<Arc<CachedObject>>,
    /// Token for the next page, when there is one.
    pub(crate) continue_token: Option<String>,
    /// Objects after this page (at the time of the request).
    pub(crate) remaining: Option<usize>,
}

fn by_key(a: &Arc<CachedObject>, b: &Arc<CachedObject>) -> Ordering {
    object_key(a).cmp(&object_key(b))
}

/// Sorts `items`, drops duplicates when `dedup` (several watches of one type may
/// overlap) and keeps the first `limit` (0 or `None`: all).
pub(crate) fn paginate(
    mut items: Vec<Arc<CachedObject>>,
    limit: Option<usize>,
    dedup: bool,
) -> Page {
    let limit = limit.filter(|l| *l > 0);
    let total = if dedup {
        items.sort_unstable_by(by_key);
        items.dedup_by(|a, b| object_key(a) == object_key(b));
        items.len()
    } else {
        let total = items.len();
        // Only the page needs sorting: select it first (O(n)), then sort it.
        if let Some(l) = limit
            && l < total
        {
            items.select_nth_unstable_by(l, by_key);
            items.truncate(l);
        }
        items.sort_unstable_by(by_key);
        total
    };
    match limit {
        Some(l) if total > l => {
            items.truncate(l);
            let continue_token = items.last().map(|o| {
                let (ns, name) = object_key(o);
                encode(ns, name)
            });
            Page {
                items,
                continue_token,
                remaining: Some(total - l),
            }
        }
        _ => Page {
            items,
            continue_token: None,
            remaining: None,
        },
    }
}

fn encode(namespace: &str, name: &str) -> String {
    hex::encode(format!("{namespace}/{name}"))
}

/// The (namespace, name) a continue token resumes after.
///
/// # Errors
/// [`ApiError::BadRequest`] for a token this API did not make.
pub(crate) fn decode(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::BadRequest {
        what: "continue",
        reason: "not a token from a previous page".into(),
    };
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ns, name) = text.split_once('/').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    Ok((ns.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::IndexFields;

    fn obj(ns: &str, name: &str) -> Arc<CachedObject> {
        Arc::new(CachedObject::new(
            ns,
            name,
            b"{}".to_vec().into(),
            &IndexFields::default(),
        ))
    }

    fn names(p: &Page) -> Vec<String> {
        p.items
            .iter()
            .map(|o| {
                let (ns, n) = object_key(o);
                format!("{ns}/{n}")
            })
            .collect()
    }

    #[test]
    fn pages_are_sorted_and_tokens_resume_after_the_last_key() {
        let all: Vec<_> = (0..10)
            .rev()
            .map(|i| obj(if i % 2 == 0 { "a" } else { "b" }, &format!("p{i}")))
            .collect();
        let p = paginate(all.clone(), Some(3), false);
        assert_eq!(names(&p), ["a/p0", "a/p2", "a/p4"]);
        assert_eq!(p.remaining, Some(7));
        let after = decode(p.continue_token.as_deref().expect("more")).expect("token");
        assert_eq!(after, ("a".to_string(), "p4".to_string()));
        let rest: Vec<_> = all
            .into_iter()
            .filter(|o| {
                let (ns, n) = object_key(o);
                (ns, n) > (after.0.as_str(), after.1.as_str())
            })
            .collect();
        let p = paginate(rest, None, false);
        assert_eq!(p.items.len(), 7);
        assert!(p.continue_token.is_none());
    }

    #[test]
    fn dedup_drops_overlapping_watches() {
        let items = vec![obj("a", "x"), obj("a", "y"), obj("a", "x")];
        let p = paginate(items, Some(0), true);
        assert_eq!(names(&p), ["a/x", "a/y"]);
        assert!(p.continue_token.is_none());
    }

    #[test]
    fn foreign_tokens_are_rejected() {
        for t in ["zz", "616263", &hex::encode("ns/")] {
            assert!(decode(t).is_err(), "{t}");
        }
        assert_eq!(
            decode(&encode("", "node-1")).expect("cluster-scoped"),
            (String::new(), "node-1".into())
        );
    }
}
