//! Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! one per secret, space-separated, so receivers can rotate secrets).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::BuildError;
use super::secret::Secret;

/// Signing keys, decoded once.
#[derive(Clone)]
pub(crate) struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

impl Signer {
    /// Keys from secrets: `whsec_<base64>` is decoded; a secret without the
    /// prefix is used as raw bytes. `which(i)` names secret `i` in errors.
    ///
    /// # Errors
    /// A secret that is not valid base64 after `whsec_`, or an empty key.
    pub(crate) fn new(
        secrets: &[Secret],
        which: impl Fn(usize) -> String,
    ) -> Result<Self, BuildError> {
        let mut keys = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            let v = s.expose();
            let key = match v.strip_prefix("whsec_") {
                Some(b64) => STANDARD
                    .decode(b64)
                    .map_err(|_| BuildError::SigningBase64(which(i)))?,
                None => v.as_bytes().to_vec(),
            };
            if key.is_empty() {
                return Err(BuildError::SigningEmpty(which(i)));
            }
            keys.push(key);
        }
        Ok(Signer { keys })
    }

    /// The `webhook-signature` header value for this message.
    pub(crate) fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut out = String::new();
        for key in &self.keys {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("v1,");
            out.push_str(&STANDARD.encode(mac.finalize().into_bytes()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::secret::SecretRef;

    fn secret(v: &str, var: &str) -> Secret {
        // SAFETY: each test uses its own variable name.
        unsafe { std::env::set_var(var, v) };
        SecretRef {
            env: Some(var.into()),
            file: None,
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification and its
        // reference libraries.
        let s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "HERALD_SIGN_T1");
        let signer = Signer::new(&[s], |i| format!("secrets[{i}]")).unwrap();
        let sig = signer.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_secret_signs_and_bad_base64_is_named() {
        let a = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "HERALD_SIGN_T2");
        let b = secret("plain-secret", "HERALD_SIGN_T3");
        let signer = Signer::new(&[a, b], |i| format!("secrets[{i}]")).unwrap();
        let sig = signer.signature("id", 1, b"{}");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.split(' ').all(|p| p.starts_with("v1,")));
        let bad = secret("whsec_!!!", "HERALD_SIGN_T4");
        let e = Signer::new(&[bad], |i| format!("signing.secrets[{i}]"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("signing.secrets[0]: not valid base64"), "{e}");
        assert!(!e.contains("!!!"));
    }
}
