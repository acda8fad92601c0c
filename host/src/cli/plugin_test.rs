//! `herald plugin test`: run one plugin on one event and print the verdict
//! and the resulting object. The plugin author's inner loop.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::change::ChangeType;
use crate::plugin::{
    Capability, EventData, PluginInstance, PluginSettings, Runtime, RuntimeConfig, Verdict,
};

/// Arguments of `herald plugin test`.
#[derive(Debug, clap::Args)]
pub struct PluginTestArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// The object as JSON (a file path, or `-` for standard input).
    pub event: PathBuf,
    /// The previous state of the object, for modified and deleted events.
    #[arg(long)]
    pub old: Option<PathBuf>,
    /// The plugin's config (JSON or YAML file).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The change type; default `modified` with --old, else `added`.
    #[arg(long)]
    pub change: Option<ChangeType>,
    /// Grant the plugin the wall and monotonic clocks.
    #[arg(long)]
    pub allow_clocks: bool,
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading {what} {}", path.display()))?
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{what} {} is not valid JSON", path.display()))
}

/// Reads a plugin config file (YAML or JSON) into JSON text.
pub fn read_config(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading plugin config {}", path.display()))?;
    let value: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("plugin config {} is not valid YAML or JSON", path.display()))?;
    Ok(value.to_string())
}

/// Runs the plugin once and returns the report that is printed.
pub fn run(args: &PluginTestArgs) -> Result<Value> {
    let object = read_json(&args.event, "event")?;
    if !object.is_object() {
        bail!("event {} must be a JSON object", args.event.display());
    }
    let old = args
        .old
        .as_deref()
        .map(|p| read_json(p, "old object"))
        .transpose()?;
    let change = args.change.unwrap_or(if old.is_some() {
        ChangeType::Modified
    } else {
        ChangeType::Added
    });
    let old = match (change, old) {
        (ChangeType::Deleted, None) => Some(object.clone()),
        (_, old) => old,
    };
    let config = match &args.config {
        Some(p) => read_config(p)?,
        None => "{}".to_string(),
    };
    let name = args
        .plugin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    })?;
    let allow = if args.allow_clocks {
        vec![Capability::Clocks]
    } else {
        vec![]
    };
    let plugin = runtime.load(&name, &args.plugin, &allow)?;
    let mut instance = PluginInstance::new(
        plugin,
        PluginSettings {
            config,
            allow,
            ..PluginSettings::default()
        },
    )?;
    let out = instance.handle(vec![EventData::new(change, object, old)]);
    let verdict = out
        .verdicts
        .map_err(|e| anyhow::anyhow!("plugin `{name}` {e}"))?
        .pop()
        .context("plugin returned no verdict")?;
    let object = out.events.into_iter().next().map(|e| e.object);
    let verdict = match verdict {
        Verdict::Pass => json!({"verdict": "pass"}),
        Verdict::Drop(reason) => json!({"verdict": "drop", "reason": reason}),
        Verdict::Route(sinks) => json!({"verdict": "route", "sinks": sinks}),
    };
    let mut report = verdict;
    report["change"] = json!(change);
    report["object"] = object.unwrap_or(Value::Null);
    Ok(report)
}
