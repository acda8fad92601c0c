//! [`vanished`]: after a restart, the objects herald notified that the API
//! server no longer lists: deleted while herald was down. (New and changed
//! objects come from the watch's first list itself, through the pipeline's
//! admission stage.)

use std::collections::HashSet;

use serde_json::Value;

use super::Result;
use super::record::ObjectRecord;
use crate::change::{ChangeEvent, ChangeType, Gvk};

/// From the listed uids only (no object parsed or hashed): the stored
/// records of `watch` whose uid the fresh list no longer has, as DELETED with
/// their last stored state as the object and as `old`, the way the source
/// reports deletions.
///
/// # Errors
///
/// The first error `stored` yields, or a stored object that is not JSON.
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
    use crate::dedup::{ObjectHash, ObjectHasher};
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
    fn stored_and_not_listed_is_deleted_with_its_last_state() {
        let h = ObjectHasher::default();
        let stored = vec![
            record(&h, &obj("a", "same", 1)),
            record(&h, &obj("c", "gone", 3)),
        ];
        let listed: HashSet<&str> = ["a", "d"].into();
        let evs = vanished("w", stored, &listed).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!((evs[0].change, evs[0].uid()), (ChangeType::Deleted, "c"));
        assert_eq!(evs[0].object, obj("c", "gone", 3));
        assert_eq!(evs[0].old.as_deref(), Some(&obj("c", "gone", 3)));
        assert!(evs[0].watch == "w" && evs[0].gvk == gvk());
    }

    #[test]
    fn errors_are_passed_on() {
        let h = ObjectHasher::default();
        let bad = ObjectRecord {
            object: b"{not json".to_vec(),
            hash: ObjectHash::from_u128(1),
            ..record(&h, &obj("a", "x", 1)).unwrap()
        };
        let none = HashSet::new();
        assert!(vanished("w", vec![Ok(bad)], &none).is_err());
        let failing = vec![Err(super::super::Error::Corrupt("x".into()))];
        assert!(vanished("w", failing, &none).is_err());
    }
}
