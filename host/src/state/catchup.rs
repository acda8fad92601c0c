//! [`catch_up`]: after a restart, the changes between what was last emitted
//! (the stored records of a watch) and what the API server lists now.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::Result;
use super::record::ObjectRecord;
use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::dedup::ObjectHasher;

/// The changes a watch missed while herald was down, with no I/O:
///
/// - a listed uid not stored: ADDED;
/// - a stored uid listed with another hash: MODIFIED, `old` = the stored state;
/// - a stored uid not listed: DELETED with the stored (last emitted) state as
///   the object and as `old`, the way the source reports deletions;
/// - a stored uid listed with the same hash: nothing.
///
/// `stored` are the records of `watch` ([`super::StateStore::objects`]);
/// `listed` the objects of its fresh list by uid; `hasher` must be the
/// dedup stage's ([`crate::dedup::Dedup::hasher`]). Events carry `watch` and
/// `gvk` (DELETED ones the stored gvk); DELETED and MODIFIED come in uid
/// order, then ADDED in uid order. Feed them through dedup (seeded from the
/// store) like any other change.
///
/// # Errors
///
/// The first error `stored` yields, or a stored object that is not JSON.
pub fn catch_up(
    watch: &str,
    gvk: &Gvk,
    stored: impl IntoIterator<Item = Result<ObjectRecord>>,
    listed: impl IntoIterator<Item = (String, Value)>,
    hasher: &ObjectHasher,
) -> Result<Vec<ChangeEvent>> {
    let mut listed: HashMap<String, Value> = listed.into_iter().collect();
    let mut out = Vec::new();
    for rec in stored {
        let rec = rec?;
        match listed.remove(&rec.uid) {
            Some(obj) => {
                if hasher.hash(&obj) != rec.hash {
                    let old = rec.parse_object()?;
                    out.push(event(
                        ChangeType::Modified,
                        gvk.clone(),
                        obj,
                        Some(old),
                        watch,
                    ));
                }
            }
            None => out.push(deleted(rec, watch)?),
        }
    }
    let mut added: Vec<_> = listed.into_iter().collect();
    added.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out.extend(
        added
            .into_iter()
            .map(|(_, obj)| event(ChangeType::Added, gvk.clone(), obj, None, watch)),
    );
    Ok(out)
}

/// The DELETED part of [`catch_up`] alone, from the listed uids only (no
/// object parsed or hashed): the stored records of `watch` whose uid the
/// fresh list no longer has, as DELETED with their last stored state.
///
/// # Errors
///
/// As [`catch_up`].
pub fn vanished(
    watch: &str,
    stored: impl IntoIterator<Item = Result<ObjectRecord>>,
    listed: &HashSet<&str>,
) -> Result<Vec<ChangeEvent>> {
    let mut out = Vec::new();
    for rec in stored {
        let rec = rec?;
        if !listed.contains(rec.uid.as_str()) {
            out.push(deleted(rec, watch)?);
        }
    }
    Ok(out)
}

/// A stored object reported deleted: its last state as the object and as
/// `old`, the way the source reports deletions.
fn deleted(rec: ObjectRecord, watch: &str) -> Result<ChangeEvent> {
    let last = rec.parse_object()?;
    Ok(event(
        ChangeType::Deleted,
        rec.gvk,
        last.clone(),
        Some(last),
        watch,
    ))
}

fn event(
    change: ChangeType,
    gvk: Gvk,
    object: Value,
    old: Option<Value>,
    watch: &str,
) -> ChangeEvent {
    ChangeEvent::new(change, gvk, object, old).with_watch(watch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::ObjectHash;
    use serde_json::json;

    fn gvk() -> Gvk {
        Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
        }
    }

    fn obj(uid: &str, data: &str, rv: u64) -> Value {
        json!({"metadata": {"uid": uid, "name": format!("n-{uid}"), "namespace": "ns",
            "resourceVersion": rv.to_string()}, "data": {"d": data}})
    }

    fn record(h: &ObjectHasher, o: &Value) -> Result<ObjectRecord> {
        let ev = ChangeEvent::new(ChangeType::Added, gvk(), o.clone(), None).with_watch("w");
        ObjectRecord::from_event(&ev, h.hash(o))
    }

    #[test]
    fn reports_exactly_the_differences() {
        let h = ObjectHasher::default();
        let stored = vec![
            record(&h, &obj("a", "same", 1)),
            record(&h, &obj("b", "old", 2)),
            record(&h, &obj("c", "gone", 3)),
        ];
        let listed = vec![
            ("a".to_string(), obj("a", "same", 9)), // only the resourceVersion moved
            ("b".to_string(), obj("b", "new", 10)),
            ("e".to_string(), obj("e", "new", 12)),
            ("d".to_string(), obj("d", "new", 11)),
        ];
        let evs = catch_up("w", &gvk(), stored, listed, &h).unwrap();
        let got: Vec<_> = evs
            .iter()
            .map(|e| (e.change, e.uid().to_string()))
            .collect();
        use ChangeType::*;
        assert_eq!(
            got,
            [
                (Modified, "b".to_string()),
                (Deleted, "c".to_string()),
                (Added, "d".to_string()),
                (Added, "e".to_string())
            ]
        );
        assert_eq!(evs[0].old, Some(obj("b", "old", 2)));
        assert_eq!(evs[0].object, obj("b", "new", 10));
        assert_eq!(evs[1].object, obj("c", "gone", 3));
        assert_eq!(evs[1].old, Some(obj("c", "gone", 3)));
        assert_eq!(evs[2].old, None);
        assert!(evs.iter().all(|e| e.watch == "w" && e.gvk == gvk()));
    }

    #[test]
    fn nothing_stored_or_nothing_listed() {
        let h = ObjectHasher::default();
        let listed = vec![("a".to_string(), obj("a", "x", 1))];
        let evs = catch_up("w", &gvk(), Vec::new(), listed, &h).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].change, ChangeType::Added);

        let stored = vec![record(&h, &obj("a", "x", 1))];
        let evs = catch_up("w", &gvk(), stored, Vec::new(), &h).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].change, ChangeType::Deleted);
    }

    #[test]
    fn errors_are_passed_on() {
        let h = ObjectHasher::default();
        let bad = ObjectRecord {
            object: b"{not json".to_vec(),
            hash: ObjectHash::from_u128(1),
            ..record(&h, &obj("a", "x", 1)).unwrap()
        };
        assert!(catch_up("w", &gvk(), vec![Ok(bad)], Vec::new(), &h).is_err());
        let failing = vec![Err(super::super::Error::Corrupt("x".into()))];
        assert!(catch_up("w", &gvk(), failing, Vec::new(), &h).is_err());
    }
}
