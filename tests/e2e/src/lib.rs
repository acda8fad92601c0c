//! Support for herald's end-to-end tests (the tests themselves are in
//! `tests/e2e/tests/`, built as the `e2e` test of the `herald` package so
//! they run the real binary).
//!
//! - [`wasm`]: the path of a plugin built by `scripts/build-plugins`.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("workspace root: {e}"))
}

/// The `.wasm` of plugin crate `name` (underscored, e.g. `label_filter`).
///
/// # Panics
/// When it has not been built: run `scripts/build-plugins` (the README's test
/// command does).
pub fn wasm(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target
        .join("wasm32-wasip2/plugin")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins with scripts/build-plugins (scripts/test does)",
        path.display()
    );
    path
}
