//! `herald plugin new --lang rust`: a Cargo project with herald-plugin-sdk.
//!
//! The project gets the SDK of this herald, written next to it
//! (`herald-plugin-sdk/`, with the WIT), so the plugin speaks the WIT of the
//! host that made it and builds wherever it is copied; `--sdk PATH` uses an
//! SDK checkout instead (a herald repository's `plugin-sdk`).

use std::path::{Path, PathBuf};

use super::{CONFIG_YAML, POD_JSON, WIT};

/// The SDK's sources, as this herald was built with them: written into a
/// new project so that it builds without a herald checkout.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "src/bindings.rs",
        include_str!("../../../../plugin-sdk/src/bindings.rs"),
    ),
    (
        "src/change.rs",
        include_str!("../../../../plugin-sdk/src/change.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../../plugin-sdk/src/error.rs"),
    ),
    (
        "src/event/mod.rs",
        include_str!("../../../../plugin-sdk/src/event/mod.rs"),
    ),
    (
        "src/event/removal.rs",
        include_str!("../../../../plugin-sdk/src/event/removal.rs"),
    ),
    (
        "src/export.rs",
        include_str!("../../../../plugin-sdk/src/export.rs"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../plugin-sdk/src/lib.rs"),
    ),
    (
        "src/log.rs",
        include_str!("../../../../plugin-sdk/src/log.rs"),
    ),
    (
        "src/pointer/mod.rs",
        include_str!("../../../../plugin-sdk/src/pointer/mod.rs"),
    ),
    (
        "src/pointer/wildcard.rs",
        include_str!("../../../../plugin-sdk/src/pointer/wildcard.rs"),
    ),
    (
        "src/test_event.rs",
        include_str!("../../../../plugin-sdk/src/test_event.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../../plugin-sdk/src/testing.rs"),
    ),
    (
        "src/verdict.rs",
        include_str!("../../../../plugin-sdk/src/verdict.rs"),
    ),
];

/// The SDK's manifest: plugin-sdk/Cargo.toml without the workspace's
/// inheritance.
const SDK_MANIFEST: &str = r#"[package]
name = "herald-plugin-sdk"
description = "Write herald plugins in plain Rust: one trait, one macro"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
thiserror = "2"
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc"] }
"#;

/// `my-plugin` → `MyPlugin`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The files of the project, relative to its directory.
pub(super) fn project_files(name: &str, sdk: Option<&Path>) -> Vec<(PathBuf, String)> {
    let crate_name = name.replace('-', "_");
    let ty = type_name(name);
    let sdk_dep = match sdk {
        Some(p) => format!("{{ path = {:?} }}", p.display().to_string()),
        None => "{ path = \"herald-plugin-sdk\" }".to_string(),
    };
    let mut files = vec![
        (
            PathBuf::from("Cargo.toml"),
            CARGO_TOML
                .replace("{name}", name)
                .replace("{sdk_dep}", &sdk_dep),
        ),
        (
            PathBuf::from("src/lib.rs"),
            LIB_RS.replace("{Type}", &ty).replace("{crate}", &crate_name),
        ),
        (
            PathBuf::from("README.md"),
            README
                .replace("{name}", name)
                .replace("{crate}", &crate_name)
                .replace(
                    "{sdk_note}",
                    if sdk.is_some() {
                        "The SDK comes from the path in `Cargo.toml`."
                    } else {
                        "`herald-plugin-sdk/` and `wit/` are the SDK and the WIT of the herald that \
                         wrote this project, so the plugin speaks that host's contract; replace them \
                         with a newer herald's (`herald plugin new` writes them) to upgrade."
                    },
                ),
        ),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
        (PathBuf::from("pod.json"), POD_JSON.to_string()),
        (PathBuf::from("config.yaml"), CONFIG_YAML.to_string()),
    ];
    if sdk.is_none() {
        for (path, text) in SDK_FILES {
            files.push((Path::new("herald-plugin-sdk").join(path), text.to_string()));
        }
        files.push((
            PathBuf::from("herald-plugin-sdk/Cargo.toml"),
            SDK_MANIFEST.to_string(),
        ));
        files.push((PathBuf::from("wit/herald.wit"), WIT.to_string()));
    }
    files
}

/// What to run next, in the project's directory `dir`.
pub(super) fn next_steps(dir: &Path, name: &str) -> String {
    format!(
        "wrote {dir}: a filter plugin with its tests. Next:\n  \
         cd {dir}\n  \
         cargo test\n  \
         cargo build --release --target wasm32-wasip2\n  \
         herald plugin test target/wasm32-wasip2/release/{wasm}.wasm pod.json --config config.yaml",
        dir = dir.display(),
        wasm = name.replace('-', "_"),
    )
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
# cdylib: the .wasm herald loads; rlib: the native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
herald-plugin-sdk = {sdk_dep}
serde = { version = "1", features = ["derive"] }
serde_json = "1"

# Small, fast plugins.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A workspace of its own, wherever the project lives.
[workspace]
"#;

const LIB_RS: &str = r##"//! A herald plugin: passes the events of the configured namespaces and
//! drops the rest, saying why.
//!
//! Config: `{ "namespaces": ["shop", "payments"] }`

use herald_plugin_sdk::{Event, Plugin, Verdict};
use serde::Deserialize;
use serde_json::Value;

/// What the user writes under this plugin's `config` in herald's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Namespaces whose objects pass.
    pub namespaces: Vec<String>,
}

/// The plugin: built once per instance from its config, then called for
/// every event.
pub struct {Type} {
    namespaces: Vec<String>,
    /// Events seen by this instance (`handle` takes `&mut self`).
    seen: u64,
}

impl Plugin for {Type} {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.namespaces.is_empty() {
            return Err("namespaces: name at least one".into());
        }
        Ok({Type} {
            namespaces: config.namespaces,
            seen: 0,
        })
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        self.seen += 1;
        // A string field through the host handle: no JSON parsing here.
        let Some(namespace) = event.namespace() else {
            return Verdict::drop("cluster-scoped");
        };
        if !self.namespaces.contains(&namespace) {
            return Verdict::drop(format!("namespace {namespace} is not watched"));
        }
        if let Some(owner) = owner_kind(event) {
            herald_plugin_sdk::debug(&format!("{} is owned by a {owner}", event.name()));
        }
        Verdict::Pass
    }
}

/// The kind of the object's first owner: a field read as JSON.
fn owner_kind(event: &Event<'_>) -> Option<String> {
    let owners: Value = event.get("/metadata/ownerReferences").ok()??;
    owners.get(0)?.get("kind")?.as_str().map(str::to_string)
}

herald_plugin_sdk::export_plugin!({Type});

// The same code runs natively against an in-memory event: `cargo test`.
#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::{TestEvent, testing};
    use serde_json::json;

    fn pod(namespace: &str) -> TestEvent {
        TestEvent::added(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": namespace,
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]}
        }))
    }

    /// The plugin built from config text, as `init` builds it in herald.
    fn init(config: &str) -> Result<{Type}, String> {
        testing::init::<{Type}>(config)
    }

    #[test]
    fn passes_watched_namespaces_and_drops_the_rest() {
        let mut plugin = init(r#"{"namespaces": ["shop"]}"#).unwrap();
        assert_eq!(testing::run(&mut plugin, &mut pod("shop")), Verdict::Pass);
        assert_eq!(
            testing::run(&mut plugin, &mut pod("dev")),
            Verdict::drop("namespace dev is not watched")
        );
        let mut node = TestEvent::added(json!({"kind": "Node", "metadata": {"name": "n"}}));
        assert_eq!(
            testing::run(&mut plugin, &mut node),
            Verdict::drop("cluster-scoped")
        );
        assert_eq!(plugin.seen, 3);
    }

    #[test]
    fn a_config_mistake_is_an_init_error() {
        let err = init(r#"{"namespace": ["shop"]}"#).err().unwrap();
        assert!(err.contains("unknown field `namespace`"), "{err}");
        let err = init(r#"{"namespaces": []}"#).err().unwrap();
        assert!(err.contains("at least one"), "{err}");
    }
}
"##;

const README: &str = r#"# {name}

A herald plugin, written by `herald plugin new`: it passes the events of the
configured namespaces and drops the rest, saying why.

```sh
rustup target add wasm32-wasip2    # once
cargo test                          # the native unit tests in src/lib.rs
cargo build --release --target wasm32-wasip2
# -> target/wasm32-wasip2/release/{crate}.wasm
```

Try it on an object (`pod.json`) with a config (`config.yaml`):

```sh
herald plugin test target/wasm32-wasip2/release/{crate}.wasm pod.json --config config.yaml
herald plugin inspect target/wasm32-wasip2/release/{crate}.wasm
```

`herald plugin test` also takes `--old` (the previous state), `--change`,
a file of events (JSON lines), `--chain a.wasm,b.wasm`, `--deadline` and
`--memory`.

To run it, copy the `.wasm` into herald's plugin directory and name it in
the config:

```yaml
plugins:
  dir: /plugins
  config:
    {crate}: { namespaces: [shop] }
watch:
  - { version: v1, kind: Pod, plugins: [{crate}] }
```

{sdk_note}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_source_is_written_into_a_new_project() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk/src");
        fn files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
                if e.path().is_dir() {
                    files(&e.path(), &name, out);
                } else {
                    out.push(name);
                }
            }
        }
        let mut on_disk = Vec::new();
        files(&dir, "src", &mut on_disk);
        on_disk.sort();
        let embedded: Vec<String> = SDK_FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(embedded, on_disk, "add the new SDK file to SDK_FILES");
        // The same dependencies as plugin-sdk/Cargo.toml.
        let manifest = std::fs::read_to_string(dir.join("../Cargo.toml")).unwrap_or_default();
        let deps = |text: &str| -> Vec<String> {
            text.split("[dependencies]")
                .nth(1)
                .unwrap_or_default()
                .split("\n[")
                .next()
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split(['=', '.']).next())
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        };
        assert_eq!(deps(SDK_MANIFEST), deps(&manifest));
    }

    #[test]
    fn names_become_types() {
        assert_eq!(type_name("my-plugin"), "MyPlugin");
        assert_eq!(type_name("ns_filter"), "NsFilter");
    }
}
