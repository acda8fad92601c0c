//! herald's config file: the schema, and the checks that span fields
//! (sink names a watch refers to, plugin names, HA settings), with errors
//! that name the file, the field path and the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

pub(crate) use crate::api::config::{ApiConfig, MetricsConfig};
use crate::plugin::{Capability, Chain, OnError, PluginInstance, PluginSettings, Runtime};
use crate::sink::SinkConfig;
use crate::source::{SourceSettings, WatchSpec};

/// herald's config file.
///
/// ```yaml
/// cluster: prod-eu-1
/// watch:
///   - group: apps
///     version: v1
///     kind: Deployment
///     plugins: [prune-noise]
/// plugins:
///   dir: /plugins
///   config:
///     prune-noise: { remove: ["/metadata/managedFields", "/status"] }
///   policy:
///     prune-noise: { file: prune.wasm, onError: pass, deadline: 200ms }
/// api:
///   listen: 0.0.0.0:8443
/// metrics:
///   listen: 0.0.0.0:9090
/// ```
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Name of the cluster, put on every notification. Example: `prod-eu-1`
    #[serde(default)]
    pub cluster: String,
    /// Kubeconfig to use; default: `KUBECONFIG`, `~/.kube/config`, in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Source-wide settings (initial list, stall timeout, discovery refresh).
    #[serde(default)]
    pub source: SourceSettings,
    /// The watched types.
    pub watch: Vec<WatchSpec>,
    /// The plugins.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Where notifications go. None: one `log` sink gets everything.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// The sink that gets what herald cannot route: a notification whose
    /// plugins' route verdict names a sink that does not exist goes there
    /// (too), its `deadLetter` field saying which route. Default: none (such
    /// routes are logged and counted as `unrouted`). Example: `dead-letters`
    #[serde(default)]
    pub dead_letter: Option<String>,
    /// Where herald keeps what it has notified and what sinks have not yet
    /// acknowledged, so a restart reports what changed while it was down and
    /// redelivers what was in flight. None: nothing survives a restart.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Emit dedup: drops states already notified.
    #[serde(default)]
    pub dedup: crate::dedup::DedupSettings,
    /// Offer every cached object to dedup again this often (only changes the
    /// dedup stage has not seen get through). Default: off. Example: `30m`
    #[serde(default, with = "humantime_serde")]
    pub resync_interval: Option<Duration>,
    /// herald's own log: level and format; `HERALD_LOG` and
    /// `HERALD_LOG_FORMAT` override. Example: `{level: debug, format: json}`
    #[serde(default)]
    pub log: LogConfig,
    /// Leader election among replicas; only the leader delivers.
    #[serde(default)]
    pub(crate) ha: Option<crate::ha::HaConfig>,
    /// How long SIGTERM waits for the sinks' queues to drain. Default: 30s
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// The query and admin APIs (authenticated by the API server unless
    /// `auth: none`).
    #[serde(default)]
    pub(crate) api: Option<ApiConfig>,
    /// `/metrics`, `/healthz` and `/readyz`, without authentication.
    #[serde(default)]
    pub(crate) metrics: Option<MetricsConfig>,
    /// The pipeline's threads. Example: `{workers: 4}`
    #[serde(default)]
    pub pipeline: crate::pipeline::PipelineConfig,
    /// The ring of recent decisions (`/api/v1/decisions`, the status page).
    /// Example: `{maxBytes: 64MiB}`
    #[serde(default)]
    pub decisions: crate::decisions::DecisionsConfig,
    /// The file and text it was read from, to name lines in later errors.
    #[serde(skip)]
    pub(crate) origin: Option<std::sync::Arc<super::check::Origin>>,
}

fn default_drain() -> Duration {
    Duration::from_secs(30)
}

/// Where plugins come from and how each runs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of `.wasm` files. Example: `/plugins`
    #[serde(default)]
    pub dir: PathBuf,
    /// Directory for compiled components; none compiles at every start.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Each plugin's own config, by plugin name. Example: `prune-noise: {remove: [/status]}`
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    /// How each plugin runs, by plugin name.
    #[serde(default)]
    pub policy: BTreeMap<String, PluginPolicy>,
    /// When a failing plugin is suspended. Example: `{failures: 5, backoff: 5s, maxBackoff: 5m}`
    #[serde(default)]
    pub breaker: crate::plugin::BreakerSettings,
}

/// How one plugin runs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginPolicy {
    /// The `.wasm` file in the plugin directory; default `<name>.wasm`.
    #[serde(default)]
    pub file: Option<String>,
    /// Fate of the events of a failed call: `pass`, `drop` or `{route: sink}`.
    #[serde(default)]
    pub on_error: OnError,
    /// CPU time one call may use (the clock caps a call at ten times it). Example: `200ms`
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// Memory cap in MiB. Example: `64`
    #[serde(default)]
    pub memory_limit_mib: Option<usize>,
    /// Extra capabilities. Example: `[clocks]`
    #[serde(default)]
    pub allow: Vec<Capability>,
}

/// herald's own log: level and format.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info` (default), `debug`, `trace`, or a filter such
    /// as `herald=debug,kube=warn`.
    #[serde(default)]
    pub level: Option<String>,
    /// `pretty` (default) or `json`.
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Reads and checks a config file. Errors name the file, the line and
/// column, and the field path.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read config", path.display()))?;
    parse_config(&text, path)
}

/// Parses and checks config text; `path` names it in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<Config> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        // The YAML parser names the path itself; say it once.
        let inner = e.inner().to_string();
        let inner = match inner.split_once(": ") {
            Some((p, rest)) if !p.is_empty() && field.starts_with(p) => rest.to_string(),
            _ => inner,
        };
        // A check that spans fields has no position of its own: name the
        // line of the key it is about.
        // (such checks start their message with the key, e.g. `auth: …`).
        let at = if inner.contains(" line ") {
            String::new()
        } else {
            let key = inner
                .split_once(": ")
                .map(|(k, _)| k)
                .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()));
            let path = match key {
                Some(k) => format!("{field}.{k}"),
                None => field.clone(),
            };
            line_of(text, &path)
                .map(|l| format!(" at line {l}"))
                .unwrap_or_default()
        };
        anyhow::anyhow!("{}: {}: {inner}{at}", path.display(), field)
    })?;
    for (i, w) in config.watch.iter().enumerate() {
        w.validate()
            .map_err(|e| anyhow::anyhow!("{}: watch[{i}]: {e}", path.display()))?;
        if w.plugins.iter().any(|p| p.trim().is_empty()) {
            bail!(
                "{}: watch[{i}].plugins: a plugin name is empty",
                path.display()
            );
        }
    }
    if let Some(level) = &config.log.level {
        tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
            anyhow::anyhow!(
                "{}: log.level: {level:?} is not a level or filter: {e}",
                path.display()
            )
        })?;
    }
    config
        .pipeline
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: pipeline.{e}", path.display()))?;
    config
        .plugins
        .breaker
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: plugins.breaker.{e}", path.display()))?;
    if let Some(ha) = &config.ha {
        ha.validate()
            .map_err(|e| anyhow::anyhow!("{}: ha.{e}", path.display()))?;
    }
    crate::dedup::Dedup::new(&config.dedup)
        .map_err(|e| anyhow::anyhow!("{}: dedup: {e}", path.display()))?;
    crate::sink::config::validate_all(&config.sinks, config.state_dir.is_some())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut config = config;
    config.origin = Some(std::sync::Arc::new(super::check::Origin {
        path: path.to_path_buf(),
        text: text.to_string(),
    }));
    super::check::sink_references(&config)?;
    for (i, w) in config.watch.iter().enumerate() {
        for s in &w.sinks {
            if !config.sinks.iter().any(|c| c.name() == s) {
                bail!(
                    "{}: watch[{i}].sinks: no sink is named {s:?} (sinks: {})",
                    path.display(),
                    config
                        .sinks
                        .iter()
                        .map(SinkConfig::name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    for name in config
        .plugins
        .policy
        .keys()
        .chain(config.plugins.config.keys())
    {
        if !config.watch.iter().any(|w| w.plugins.contains(name)) {
            tracing::warn!(plugin = name, "plugin is configured but no watch uses it");
        }
    }
    for warning in super::check::fail_open_secret_plugins(&config) {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// The line (from 1) of the key at dotted `path` (`api.auth`) in block-style
/// YAML `text`; the deepest key of the path found.
pub(super) fn line_of(text: &str, path: &str) -> Option<usize> {
    let mut found = None;
    let mut from = 0;
    let mut indent: Option<usize> = None;
    for key in path
        .split('.')
        .filter(|k| !k.is_empty() && !k.contains('['))
    {
        let lines = text.lines().enumerate().skip(from);
        let mut hit = None;
        for (i, line) in lines {
            let trimmed = line.trim_start();
            let depth = line.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if indent.is_some_and(|d| depth <= d) {
                break;
            }
            if trimmed.starts_with(&format!("{key}:")) {
                hit = Some((i, depth));
                break;
            }
        }
        let (i, depth) = hit?;
        found = Some(i + 1);
        from = i + 1;
        indent = Some(depth);
    }
    found
}

impl Config {
    pub(super) fn plugin_file(&self, name: &str) -> PathBuf {
        let file = self
            .plugins
            .policy
            .get(name)
            .and_then(|p| p.file.clone())
            .unwrap_or_else(|| format!("{name}.wasm"));
        self.plugins.dir.join(file)
    }

    /// Each watch's default sinks (its `sinks:`), keyed by watch id.
    pub fn watch_sinks(&self) -> BTreeMap<String, Vec<String>> {
        self.watch
            .iter()
            .map(|w| (w.id(), w.sinks.clone()))
            .collect()
    }

    /// Where notifications go: the sinks, each watch's `sinks`, the
    /// `deadLetter`.
    pub(crate) fn routes(&self) -> crate::pipeline::Routes {
        crate::pipeline::Routes::new(&self.sinks, self.watch_sinks())
            .with_dead_letter(self.dead_letter.clone())
    }

    /// One chain per watch, keyed by watch id.
    pub fn chains(&self, rt: &Runtime) -> Result<BTreeMap<String, Chain>> {
        self.chains_for(&self.watch, rt)
    }

    /// One chain per watch of `watches`, with this config's plugins.
    pub(crate) fn chains_for(
        &self,
        watches: &[WatchSpec],
        rt: &Runtime,
    ) -> Result<BTreeMap<String, Chain>> {
        let mut chains = BTreeMap::new();
        // One compiled plugin (one InstancePre) per file, shared by every
        // watch that uses it; each watch gets instances of its own.
        let mut loaded: std::collections::HashMap<
            (PathBuf, Vec<Capability>),
            std::sync::Arc<crate::plugin::LoadedPlugin>,
        > = std::collections::HashMap::new();
        for (i, w) in watches.iter().enumerate() {
            let index = self
                .watch
                .iter()
                .position(|x| x.id() == w.id())
                .unwrap_or(i);
            let mut instances = Vec::new();
            for name in &w.plugins {
                let policy = self.plugins.policy.get(name);
                let allow = policy.map(|p| p.allow.clone()).unwrap_or_default();
                let file = self.plugin_file(name);
                let key = (file, allow.clone());
                let plugin = match loaded.get(&key) {
                    Some(p) => p.clone(),
                    None => {
                        let p = rt
                            .load(name, &key.0, &allow)
                            .map_err(|e| self.plugin_error(index, name, e))?;
                        loaded.insert(key, p.clone());
                        p
                    }
                };
                let defaults = PluginSettings::default();
                let settings = PluginSettings {
                    // No config, or an empty one (`name:` in YAML), is `{}`.
                    config: self
                        .plugins
                        .config
                        .get(name)
                        .filter(|v| !v.is_null())
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".into()),
                    memory_limit: policy
                        .and_then(|p| p.memory_limit_mib)
                        .map(|m| m << 20)
                        .unwrap_or(defaults.memory_limit),
                    deadline: policy.and_then(|p| p.deadline).unwrap_or(defaults.deadline),
                    on_error: policy.map(|p| p.on_error.clone()).unwrap_or_default(),
                    allow,
                };
                instances.push(
                    PluginInstance::new(plugin, settings)
                        .map_err(|e| self.plugin_error(index, name, e))?,
                );
            }
            chains.insert(w.id(), Chain::new(instances));
        }
        Ok(chains)
    }
}
