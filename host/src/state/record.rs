//! [`ObjectRecord`]: what the state dir keeps of one object, and its stored
//! form.

use serde_json::Value;

use super::Error;
use crate::change::{ChangeEvent, Gvk};
use crate::dedup::ObjectHash;

/// What the state dir keeps of one object: the hash dedup compares (to skip
/// unchanged objects after a restart) and what a DELETED found only at the
/// restart needs (the watch, the type, the name and the last emitted state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// `metadata.uid`: the key.
    pub uid: String,
    /// The watch that emitted it ([`ChangeEvent::watch`]).
    pub watch: String,
    /// Its type.
    pub gvk: Gvk,
    /// `metadata.namespace`, if namespaced.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// [`crate::dedup::Verdict::Emit`]'s hash of the last emitted state.
    pub hash: ObjectHash,
    /// The last emitted state, as JSON.
    pub object: Vec<u8>,
}

impl ObjectRecord {
    /// The record of an emitted change (`ev.object` serialised once).
    ///
    /// # Errors
    ///
    /// The object does not serialise (a map with non-string keys cannot
    /// happen with `serde_json::Value`, so in practice: none).
    pub fn from_event(ev: &ChangeEvent, hash: ObjectHash) -> Result<Self, Error> {
        Ok(ObjectRecord {
            uid: ev.uid().to_string(),
            watch: ev.watch.clone(),
            gvk: ev.gvk.clone(),
            namespace: ev.namespace().map(str::to_string),
            name: ev.name().to_string(),
            hash,
            object: ev.object.to_json(),
        })
    }

    /// The last emitted state, parsed.
    ///
    /// # Errors
    ///
    /// The stored bytes are not JSON.
    pub(crate) fn parse_object(&self) -> Result<Value, Error> {
        serde_json::from_slice(&self.object).map_err(Error::Json)
    }

    /// The stored value (the key holds watch and uid). Version 1:
    /// `1`, hash (16 bytes LE), then group, version, kind, namespace (absent:
    /// length `u32::MAX`) and name as u32 LE length + bytes, then the object.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let strings = [
            Some(&self.gvk.group),
            Some(&self.gvk.version),
            Some(&self.gvk.kind),
            self.namespace.as_ref(),
            Some(&self.name),
        ];
        let len = 17 + strings.iter().flatten().map(|s| 4 + s.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len + 4 + self.object.len());
        out.push(1);
        out.extend_from_slice(&self.hash.to_bytes());
        for s in strings {
            match s {
                Some(s) => {
                    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
            }
        }
        out.extend_from_slice(&self.object);
        out
    }

    /// The inverse of [`ObjectRecord::encode`].
    pub(crate) fn decode(watch: &str, uid: &str, bytes: &[u8]) -> Result<Self, Error> {
        let corrupt = || Error::Corrupt(format!("object record of uid {uid:?}"));
        let mut r = Reader(bytes);
        if r.take(1).ok_or_else(corrupt)? != [1] {
            return Err(corrupt());
        }
        let hash: [u8; 16] = r
            .take(16)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?;
        let mut string = || -> Result<Option<String>, Error> {
            let len = u32::from_le_bytes(
                r.take(4)
                    .ok_or_else(corrupt)?
                    .try_into()
                    .map_err(|_| corrupt())?,
            );
            if len == u32::MAX {
                return Ok(None);
            }
            let b = r.take(len as usize).ok_or_else(corrupt)?;
            String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| corrupt())
        };
        let group = string()?.ok_or_else(corrupt)?;
        let version = string()?.ok_or_else(corrupt)?;
        let kind = string()?.ok_or_else(corrupt)?;
        let namespace = string()?;
        let name = string()?.ok_or_else(corrupt)?;
        Ok(ObjectRecord {
            uid: uid.to_string(),
            watch: watch.to_string(),
            gvk: Gvk {
                group,
                version,
                kind,
            },
            namespace,
            name,
            hash: ObjectHash::from_bytes(hash),
            object: r.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ChangeType;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let obj = json!({"metadata": {"uid": "u1", "name": "a", "namespace": "ns"}, "x": 1});
        let ev = ChangeEvent::new(
            ChangeType::Added,
            Gvk {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
            },
            obj.clone(),
            None,
        )
        .with_watch("w");
        let rec = ObjectRecord::from_event(&ev, ObjectHash::from_u128(42)).unwrap();
        assert_eq!(rec.uid, "u1");
        assert_eq!(rec.namespace.as_deref(), Some("ns"));
        let back = ObjectRecord::decode("w", "u1", &rec.encode()).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.parse_object().unwrap(), obj);

        let cluster = ObjectRecord {
            namespace: None,
            ..rec.clone()
        };
        assert_eq!(
            ObjectRecord::decode("w", "u1", &cluster.encode()).unwrap(),
            cluster
        );
        let bytes = rec.encode();
        for cut in [0, 1, 10, 20, 30] {
            assert!(
                ObjectRecord::decode("w", "u1", &bytes[..cut]).is_err(),
                "{cut}"
            );
        }
    }
}
