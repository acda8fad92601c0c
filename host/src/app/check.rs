//! Checks that span a config's parts (every sink a policy or `deadLetter`
//! names exists), errors that point into the user's file (a plugin that
//! refuses its config, a plugin file that is not there), and `herald config
//! check`'s full look: every plugin a watch names is found, compiles, loads
//! under its policy and accepts its config, as `herald run` would.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Config;
use super::config::line_of;
use crate::plugin::{LoadError, Runtime, RuntimeConfig};

/// The file a config was read from and its text.
#[derive(Debug)]
pub(crate) struct Origin {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl Origin {
    /// ` at line N` of the key at dotted `key` (deepest key found), or
    /// nothing.
    fn at(&self, key: &str) -> String {
        line_of(&self.text, key)
            .map(|l| format!(" at line {l}"))
            .unwrap_or_default()
    }
}

impl Config {
    /// `file: ` when the config came from a file.
    fn file_prefix(&self) -> String {
        self.origin
            .as_ref()
            .map(|o| format!("{}: ", o.path.display()))
            .unwrap_or_default()
    }

    /// ` at line N` of `key` when the config came from a file.
    fn line(&self, key: &str) -> String {
        self.origin.as_ref().map(|o| o.at(key)).unwrap_or_default()
    }

    /// Why plugin `name` (of `watch[i]`) did not load, in the user's terms:
    /// the file and line of the config entry, a missing file's likely
    /// spelling, a refused config without the position in the JSON herald
    /// passed.
    pub(super) fn plugin_error(&self, watch: usize, name: &str, e: LoadError) -> anyhow::Error {
        let file = self.file_prefix();
        match e {
            LoadError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                let hint = missing_file_hint(&path, name);
                anyhow::anyhow!(
                    "{file}watch[{watch}].plugins: plugin {name:?}: {} does not exist{hint}",
                    path.display(),
                )
            }
            LoadError::Init { message, .. } => {
                let (message, field) = without_json_position(&message);
                let key = format!("plugins.config.{name}");
                // The offending field's line, else the entry's.
                let at = field
                    .map(|f| self.line(&format!("{key}.{f}")))
                    .filter(|at| !at.is_empty())
                    .unwrap_or_else(|| self.line(&key));
                let given = self
                    .plugins
                    .config
                    .get(name)
                    .filter(|v| !v.is_null())
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "{} (no config given)".into());
                anyhow::anyhow!(
                    "{file}{key}{at}: plugin {name:?} refused its config: {message} (it was given {given})"
                )
            }
            other => anyhow::Error::new(other).context(format!(
                "{file}watch[{watch}].plugins: plugin {name:?}{}",
                self.line(&format!("plugins.policy.{name}"))
            )),
        }
    }
}

/// A plugin file that is not there: the likely file (cargo writes a crate
/// named `image-watch` as `image_watch.wasm`) or what the directory holds.
fn missing_file_hint(path: &Path, name: &str) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return format!(" (the plugin directory {} is missing)", dir.display());
    };
    let mut wasm: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".wasm"))
        .collect();
    wasm.sort();
    let wanted = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let normal = |s: &str| s.replace(['-', '_'], "").to_ascii_lowercase();
    if let Some(near) = wasm.iter().find(|f| normal(f) == normal(&wanted)) {
        let stem = near.trim_end_matches(".wasm");
        return format!(
            "; {near} is there (cargo writes `-` in a crate name as `_`): name the plugin {stem:?}, or set plugins.policy.{name}.file: {near}"
        );
    }
    if wasm.is_empty() {
        format!(" ({} holds no .wasm files)", dir.display())
    } else {
        format!(" ({} holds {})", dir.display(), wasm.join(", "))
    }
}

/// A serde error from the plugin's own parse of the JSON herald passed:
/// its ` at line 1 column 11` points into that JSON, not the user's file,
/// so it goes; an unknown or missing field is returned to find its line.
fn without_json_position(message: &str) -> (String, Option<String>) {
    let mut text = message.trim().to_string();
    if let Some(i) = text.rfind(" at line ") {
        let tail = &text[i + " at line ".len()..];
        let mut parts = tail.split(" column ");
        if parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
            && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
        {
            text.truncate(i);
        }
    }
    let field = ["unknown field `", "duplicate field `"]
        .iter()
        .find_map(|p| text.find(p).map(|i| i + p.len()))
        .and_then(|start| text[start..].split('`').next().map(str::to_string));
    (text, field)
}

/// Every sink a plugin's `onError: route` or the config's `deadLetter`
/// names exists.
pub(super) fn sink_references(config: &Config) -> Result<()> {
    let (sinks, _) = crate::sink::effective(&config.sinks);
    let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
    let file = config.file_prefix();
    let missing = |key: &str, sink: &str| {
        anyhow::anyhow!(
            "{file}{key}: routes to {sink:?}, but no sink has that name (sinks: {}){}",
            names.join(", "),
            config.line(key)
        )
    };
    for (plugin, policy) in &config.plugins.policy {
        if let Some(sink) = policy.on_error.route_sink()
            && !names.contains(&sink)
        {
            return Err(missing(&format!("plugins.policy.{plugin}.onError"), sink));
        }
    }
    if let Some(sink) = &config.dead_letter
        && !names.contains(&sink.as_str())
    {
        return Err(missing("deadLetter", sink));
    }
    Ok(())
}

/// Plugins that see Secret values (their watch says `secretData: include`)
/// and whose failed calls let events go on as if they were not there
/// (`onError: pass`, the default): if such a plugin is the one that redacts,
/// a call that fails sends the values on. One line each, naming the watch,
/// the plugin and the fix, for a warning at start.
pub(super) fn fail_open_secret_plugins(config: &Config) -> Vec<String> {
    let mut found = Vec::new();
    for (i, w) in config.watch.iter().enumerate() {
        if w.secret_data != crate::source::SecretData::Include {
            continue;
        }
        for plugin in &w.plugins {
            let on_error = config.plugins.policy.get(plugin).map(|p| &p.on_error);
            if on_error.is_none_or(|e| *e == crate::plugin::OnError::Pass) {
                found.push(format!(
                    "{}watch[{i}] ({}) lets Secret values reach plugin {plugin:?}, whose onError is pass: \
                     a call of it that fails sends its events on as if it were not there, values \
                     included; if it redacts, set plugins.policy.{plugin}.onError to drop or route: <sink>",
                    config.file_prefix(),
                    w.id(),
                ));
            }
        }
    }
    found
}

/// What `herald config check` found.
#[derive(Debug)]
pub struct Checked {
    /// The config, as read.
    pub config: Config,
    /// The plugins loaded and initialised, each once, or why they were not
    /// checked (no plugin directory here).
    pub plugins: Result<usize, String>,
}

/// Reads `path` and does what `herald run` does before it starts watching:
/// every plugin a watch names is loaded under its policy and initialised
/// with its config. `plugins_dir` replaces `plugins.dir` (to check a
/// config written for a pod against a local build). A plugin directory
/// that does not exist here is not an error: the plugins are then not
/// checked, and [`Checked::plugins`] says so.
pub fn check_config(path: &Path, plugins_dir: Option<&Path>) -> Result<Checked> {
    let mut config = super::load_config(path)?;
    if let Some(dir) = plugins_dir {
        config.plugins.dir = dir.to_path_buf();
    }
    let used = config.watch.iter().any(|w| !w.plugins.is_empty());
    if !used {
        return Ok(Checked {
            config,
            plugins: Ok(0),
        });
    }
    if !config.plugins.dir.is_dir() {
        let why = format!(
            "plugins.dir {} does not exist here; plugins not checked (--plugins-dir DIR checks them against a local build)",
            config.plugins.dir.display()
        );
        return Ok(Checked {
            config,
            plugins: Err(why),
        });
    }
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: config.plugins.cache_dir.clone(),
        ..RuntimeConfig::default()
    })?;
    config.chains(&rt)?;
    let mut names: Vec<&String> = config.watch.iter().flat_map(|w| &w.plugins).collect();
    names.sort();
    names.dedup();
    let n = names.len();
    Ok(Checked {
        config,
        plugins: Ok(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serde_position_in_the_passed_json_is_left_out() {
        let (m, f) = without_json_position(
            "unknown field `labl`, expected `label` or `values` at line 1 column 7",
        );
        assert_eq!(m, "unknown field `labl`, expected `label` or `values`");
        assert_eq!(f.as_deref(), Some("labl"));
        let (m, f) = without_json_position("needs a label");
        assert_eq!(m, "needs a label");
        assert_eq!(f, None);
        let (m, _) = without_json_position("bad at line two");
        assert_eq!(m, "bad at line two", "only a real position goes");
    }

    #[test]
    fn a_plugin_that_sees_secret_values_and_fails_open_is_named() {
        let text = r#"
watch:
  - { version: v1, kind: Secret, secretData: include, plugins: [prune, tag] }
  - { name: cms, version: v1, kind: ConfigMap, plugins: [tag] }
  - { name: quiet, version: v1, kind: Secret, plugins: [tag] }
plugins:
  dir: /nonexistent
  policy:
    prune: { onError: drop }
sinks:
  - { name: out, type: log }
"#;
        let config = super::super::parse_config(text, Path::new("herald.yaml")).unwrap();
        let found = fail_open_secret_plugins(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("herald.yaml: watch[0] (secret.v1.core) lets Secret values reach plugin \"tag\", whose onError is pass")
                && found[0].contains("set plugins.policy.tag.onError to drop or route: <sink>"),
            "{found:?}"
        );
        let routed = text.replace(
            "{ onError: drop }",
            "{ onError: drop }\n    tag: { onError: \"route: out\" }",
        );
        let config = super::super::parse_config(&routed, Path::new("herald.yaml")).unwrap();
        assert_eq!(fail_open_secret_plugins(&config), Vec::<String>::new());
    }

    #[test]
    fn a_missing_plugin_file_names_the_one_cargo_wrote() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("image_watch.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("other.wasm"), b"").unwrap();
        let hint = missing_file_hint(&dir.path().join("image-watch.wasm"), "image-watch");
        assert!(
            hint.contains("image_watch.wasm is there")
                && hint.contains("name the plugin \"image_watch\"")
                && hint.contains("plugins.policy.image-watch.file: image_watch.wasm"),
            "{hint}"
        );
        let hint = missing_file_hint(&dir.path().join("nope.wasm"), "nope");
        assert!(
            hint.contains("holds image_watch.wasm, other.wasm"),
            "{hint}"
        );
    }
}
