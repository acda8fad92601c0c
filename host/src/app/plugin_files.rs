//! What a plugin-directory change changed: the content of each `.wasm`
//! file (SHA-256) as last loaded, so a reload restarts only the chains whose
//! plugin files changed, a file no watch uses is checked and reported, and a
//! file caught mid-copy is waited for instead of reported as broken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Each `.wasm` file's content hash (`None`: unreadable).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PluginFiles(BTreeMap<PathBuf, Option<[u8; 32]>>);

impl PluginFiles {
    /// The `.wasm` files of `dir` now, plus `also` (files named by a policy
    /// with another extension).
    pub(super) fn scan(dir: &Path, also: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut files: BTreeSet<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                    .collect()
            })
            .unwrap_or_default();
        files.extend(also);
        PluginFiles(
            files
                .into_iter()
                .map(|p| {
                    let hash = std::fs::read(&p).ok().map(|b| Sha256::digest(&b).into());
                    (p, hash)
                })
                .collect(),
        )
    }

    /// Files added, removed or changed between `self` and `now`.
    pub(super) fn changed(&self, now: &PluginFiles) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for (p, h) in &now.0 {
            if self.0.get(p) != Some(h) {
                out.insert(p.clone());
            }
        }
        for p in self.0.keys() {
            if !now.0.contains_key(p) {
                out.insert(p.clone());
            }
        }
        out
    }

    /// The content hashes (hex), as the compiled cache names them.
    pub(super) fn hashes(&self) -> BTreeSet<String> {
        self.0.values().flatten().map(hex::encode).collect()
    }

    /// Whether `path` exists now.
    pub(super) fn has(&self, path: &Path) -> bool {
        self.0.get(path).is_some_and(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_whose_content_changed_count() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.wasm");
        let b = dir.path().join("b.wasm");
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"two").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let before = PluginFiles::scan(dir.path(), []);
        assert!(
            before
                .changed(&PluginFiles::scan(dir.path(), []))
                .is_empty()
        );
        // Rewritten with the same bytes: not a change.
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"three").unwrap();
        let c = dir.path().join("c.wasm");
        std::fs::write(&c, b"new").unwrap();
        let now = PluginFiles::scan(dir.path(), []);
        assert_eq!(now.changed(&before).len(), 2);
        assert_eq!(before.changed(&now), BTreeSet::from([b.clone(), c.clone()]));
        std::fs::remove_file(&b).unwrap();
        let gone = PluginFiles::scan(dir.path(), []);
        assert_eq!(now.changed(&gone), BTreeSet::from([b.clone()]));
        assert!(!gone.has(&b) && gone.has(&a));
    }
}
