//! Secrets in config: only ever a reference, `{env: NAME}` or `{file: PATH}`.
//! The value is read when a sink is built and never appears in a log line or
//! an error: errors name the variable or the file, not what is in it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret comes from. Exactly one of `env` and `file`.
///
/// ```yaml
/// webhookUrl: { env: SLACK_WEBHOOK_URL }
/// password: { file: /var/run/secrets/herald/password }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SecretRef {
    /// Name of an environment variable holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Path of a file holding the value; surrounding whitespace is trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// A secret value. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// The value.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret reference of the wrong shape, or one whose value cannot be
/// read. It names the variable or the file, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Both `env` and `file`.
    #[error("give either `env` or `file`, not both")]
    Both,
    /// Neither.
    #[error("give `env: VARIABLE` or `file: /path`")]
    Neither,
    /// `env: ""`.
    #[error("`env` is empty")]
    EmptyName,
    /// The variable is not set.
    #[error("environment variable {0} is not set (or not UTF-8)")]
    Unset(String),
    /// The file cannot be read.
    #[error("cannot read secret file {}: {error}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The variable is empty.
    #[error("environment variable {0} is empty")]
    EmptyVariable(String),
    /// The file is empty (or only whitespace).
    #[error("secret file {} is empty", .0.display())]
    EmptyFile(PathBuf),
}

impl SecretRef {
    /// Checks the reference's shape (not the value): exactly one source.
    ///
    /// # Errors
    /// Both sources, none, or an empty variable name.
    pub(crate) fn validate(&self) -> Result<(), SecretError> {
        match (&self.env, &self.file) {
            (Some(_), Some(_)) => Err(SecretError::Both),
            (None, None) => Err(SecretError::Neither),
            (Some(v), None) if v.trim().is_empty() => Err(SecretError::EmptyName),
            _ => Ok(()),
        }
    }

    /// Reads the value. The error names the variable or file, never a value.
    ///
    /// # Errors
    /// A reference of the wrong shape, or a value that is missing or empty.
    pub(crate) fn resolve(&self) -> Result<Secret, SecretError> {
        self.validate()?;
        let value = match (&self.env, &self.file) {
            (Some(var), _) => std::env::var(var).map_err(|_| SecretError::Unset(var.clone()))?,
            (_, Some(path)) => std::fs::read_to_string(path)
                .map_err(|error| SecretError::Unreadable {
                    path: path.clone(),
                    error,
                })?
                .trim()
                .to_string(),
            (None, None) => return Err(SecretError::Neither),
        };
        if value.is_empty() {
            return Err(match (&self.env, &self.file) {
                (Some(var), _) => SecretError::EmptyVariable(var.clone()),
                (_, Some(path)) => SecretError::EmptyFile(path.clone()),
                (None, None) => SecretError::Neither,
            });
        }
        Ok(Secret(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_file_resolve_and_errors_name_the_source_not_the_value() {
        // SAFETY: the variable name is unique to this test.
        unsafe { std::env::set_var("HERALD_TEST_SECRET_A", "s3cret") };
        let r = SecretRef {
            env: Some("HERALD_TEST_SECRET_A".into()),
            file: None,
        };
        let s = r.resolve().unwrap();
        assert_eq!(s.expose(), "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  tok\n").unwrap();
        let r = SecretRef {
            env: None,
            file: Some(path.clone()),
        };
        assert_eq!(r.resolve().unwrap().expose(), "tok");

        let missing = SecretRef {
            env: Some("HERALD_TEST_SECRET_MISSING".into()),
            file: None,
        };
        assert!(
            missing
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("HERALD_TEST_SECRET_MISSING")
        );
        let both = SecretRef {
            env: Some("X".into()),
            file: Some(path),
        };
        assert!(
            both.validate()
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
    }
}
