//! Secret data stays in: before anything keeps a Secret (the cache, and so the
//! query API, plugins, sinks, the state dir and logs), the values of its `data`
//! and `stringData` and its `kubectl.kubernetes.io/last-applied-configuration`
//! annotation (which repeats them) are replaced by a keyed digest, unless the watch
//! says `secretData: include`.
//!
//! The keys stay visible, and a digest changes when its value does, so a rotation is
//! still a change that dedup lets through and a diff shows (`/data/password`
//! replaced), without saying what the value was or is. The digest is an HMAC with a
//! key of herald's own ([`SecretKey`]), not a plain hash: a plain hash of a short
//! password is found by trying candidates. With a state dir the key lives there, so
//! digests stay the same across restarts and a restart does not report every Secret
//! as changed.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use kube::api::ApiResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// The annotation `kubectl apply` writes: the whole object as applied, data included.
pub(super) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a watch of Secrets keeps of their values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SecretData {
    /// Values are replaced by a keyed digest (`<redacted sha256:…>`); keys stay.
    #[default]
    Redact,
    /// Values flow as the API server sends them, to every plugin and sink.
    Include,
}

impl SecretData {
    /// Whether this is the default, for `skip_serializing_if`.
    pub(crate) fn is_redact(&self) -> bool {
        *self == SecretData::Redact
    }
}

/// The key of the digests that stand for Secret values. Not config: it
/// compares equal to any other key, and its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretKey(Arc<[u8; 32]>);

impl SecretKey {
    /// A new random key from the operating system (digests then hold for
    /// this process only).
    ///
    /// # Panics
    /// When the operating system has no randomness to give, which herald cannot
    /// run without.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap_or_else(|e| panic!("no randomness for a key: {e}"));
        SecretKey(Arc::new(key))
    }

    /// The key in `path`, created (mode 0600) when the file does not exist.
    ///
    /// # Errors
    /// The file cannot be read or written, or does not hold 32 bytes.
    pub(crate) fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: holds {} bytes, not the 32 of a digest key",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(SecretKey(Arc::new(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::random();
                let tmp = path.with_extension("tmp");
                write_private(&tmp, &key.0[..])?;
                std::fs::rename(&tmp, path)?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    /// The digest that stands for `value`: `<redacted sha256:` + 16 hex + `>`.
    pub fn digest(&self, value: &[u8]) -> String {
        // An HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0[..])
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(value);
        let out = mac.finalize().into_bytes();
        format!("<redacted sha256:{}>", hex::encode(&out[..8]))
    }
}

impl Default for SecretKey {
    fn default() -> Self {
        SecretKey::random()
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Whether objects of `resource` are core/v1 Secrets.
pub(crate) fn is_secret(resource: &ApiResource) -> bool {
    resource.group.is_empty() && resource.kind == "Secret"
}

/// Replaces the values of `data` and `stringData` and the last-applied
/// annotation by their digests. Returns whether anything was replaced.
pub(super) fn redact(object: &mut Value, key: &SecretKey) -> bool {
    let mut changed = false;
    for field in ["data", "stringData"] {
        if let Some(map) = object.get_mut(field).and_then(Value::as_object_mut) {
            for v in map.values_mut() {
                let text = match &*v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                *v = Value::String(key.digest(text.as_bytes()));
                changed = true;
            }
        }
    }
    if let Some(v) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .and_then(|a| a.get_mut(LAST_APPLIED))
    {
        let text = v.as_str().unwrap_or_default().to_string();
        *v = Value::String(key.digest(text.as_bytes()));
        changed = true;
    }
    changed
}

/// [`redact`] on JSON bytes; the bytes as they were when they do not parse
/// (the caller's own JSON never fails to).
pub(crate) fn redact_bytes(json: &[u8], key: &SecretKey) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(json).ok()?;
    if !redact(&mut v, key) {
        return None;
    }
    serde_json::to_vec(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(password: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {
                LAST_APPLIED: format!("{{\"data\":{{\"password\":\"{password}\"}}}}"),
                "team": "payments"
            }},
            "data": {"password": password, "user": "YWRtaW4="},
            "stringData": {"token": "plain-token"}
        })
    }

    #[test]
    fn values_become_digests_keys_stay_and_a_rotation_changes_the_digest() {
        let key = SecretKey::random();
        let mut a = secret("aHVudGVyMg==");
        assert!(redact(&mut a, &key));
        let text = a.to_string();
        for leak in ["aHVudGVyMg==", "hunter2", "YWRtaW4=", "plain-token"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        assert_eq!(a["metadata"]["annotations"]["team"], "payments");
        let digest = a["data"]["password"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(digest.starts_with("<redacted sha256:"), "{digest}");
        let mut b = secret("bmV3LXZhbHVl");
        redact(&mut b, &key);
        assert_ne!(b["data"]["password"], a["data"]["password"], "rotated");
        assert_eq!(b["data"]["user"], a["data"]["user"], "unchanged key");
        // Another key, another digest: not a plain hash.
        let mut c = secret("aHVudGVyMg==");
        redact(&mut c, &SecretKey::random());
        assert_ne!(c["data"]["password"], a["data"]["password"]);
    }

    #[test]
    fn the_key_is_kept_in_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret-digest.key");
        let a = SecretKey::load_or_create(&path).expect("create");
        let b = SecretKey::load_or_create(&path).expect("load");
        assert_eq!(a.digest(b"x"), b.digest(b"x"));
        std::fs::write(&path, b"short").expect("write");
        let err = SecretKey::load_or_create(&path).expect_err("refused");
        assert!(err.to_string().contains("32"), "{err}");
    }

    #[test]
    fn an_object_without_data_is_left_alone() {
        let mut v = json!({"metadata": {"name": "x"}, "type": "Opaque"});
        assert!(!redact(&mut v, &SecretKey::random()));
        assert_eq!(v, json!({"metadata": {"name": "x"}, "type": "Opaque"}));
    }
}
