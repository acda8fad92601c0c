//! `herald plugin test`: run one plugin, or a chain, on one event or a file
//! of events, and print each verdict with the object and its previous state
//! as the plugins left them. The plugin author's inner loop.
//!
//! The events go through a [`Chain`] as one batch, exactly as `herald run`
//! sends them, with the deadline and memory cap a policy would set; a plugin
//! that fails is reported (not passed over, as `onError: pass` would).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use serde_json::{Map, Value, json};

use crate::change::ChangeType;
use crate::plugin::{
    Capability, Chain, EventData, Fate, OnError, PluginInstance, PluginSettings, Runtime,
    RuntimeConfig,
};

/// Arguments of `herald plugin test`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EVENT is a JSON object, a watch event \
    ({\"type\": \"MODIFIED\", \"object\": {...}, \"old\": {...}}), or a file of \
    several (JSON lines; one report per line is printed). `-` reads standard input.")]
pub struct PluginTestArgs {
    /// The plugin component (`.wasm`) then the event file; with --chain,
    /// the event file alone.
    #[arg(value_name = "[PLUGIN] EVENT", num_args = 1..=2, required = true)]
    pub paths: Vec<PathBuf>,
    /// Run these components in order, as one chain (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A.wasm,B.wasm")]
    pub chain: Vec<PathBuf>,
    /// The previous state of the object, for a single modified or deleted
    /// event.
    #[arg(long)]
    pub old: Option<PathBuf>,
    /// The plugin's config (JSON or YAML file). In a chain, `NAME=FILE`
    /// gives the plugin NAME (its file name without `.wasm`) its config;
    /// repeat for each plugin.
    #[arg(long, value_name = "[NAME=]FILE")]
    pub config: Vec<String>,
    /// The change type; default `modified` with --old, else `added`.
    #[arg(long)]
    pub change: Option<ChangeType>,
    /// Grant the plugins the wall and monotonic clocks.
    #[arg(long)]
    pub allow_clocks: bool,
    /// CPU time one call may use, as a policy's `deadline` (`50ms`, `1s`); the clock caps a call at ten times it.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub deadline: Option<Duration>,
    /// Memory cap of each plugin, as a policy's `memoryLimitMiB` (`16MiB`).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// Keep compiled components in this directory, as `plugins.cacheDir`
    /// does: a plugin that brings a language runtime (JavaScript, Python)
    /// takes seconds to compile, and is loaded in milliseconds from there.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// The chain's fate for a plugin failure: reported, never delivered.
const FAILED: &str = "\u{0}plugin-test-failed";

/// One event read from the input, with where it came from.
struct Input {
    data: EventData,
    /// `file:line` of the event, for messages.
    at: String,
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
    }
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let text = read_text(path, what)?;
    serde_json::from_str(&text)
        .with_context(|| format!("{what} {} is not valid JSON", path.display()))
}

/// Reads a plugin config file (YAML or JSON) into JSON text.
pub(crate) fn read_config(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading plugin config {}", path.display()))?;
    let value: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("plugin config {} is not valid YAML or JSON", path.display()))?;
    // An empty file is no config: `{}`, as `herald run` gives.
    if value.is_null() {
        return Ok("{}".into());
    }
    Ok(value.to_string())
}

/// The JSON values of `text` (one, or several separated by whitespace, as
/// in JSON lines), each with the line it starts on.
fn json_values(text: &str, file: &str) -> Result<Vec<(usize, Value)>> {
    let line_of = |offset: usize| {
        let skipped = text[offset..].len() - text[offset..].trim_start().len();
        text[..offset + skipped].matches('\n').count() + 1
    };
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(v)) => values.push((line_of(start), v)),
            Some(Err(e)) => bail!("{file} is not valid JSON: {e}"),
        }
    }
    if values.is_empty() {
        bail!("{file} holds no event");
    }
    Ok(values)
}

/// A watch event (`{"type": …, "object": …}`) rather than a bare object: it
/// has an `object` and none of the fields every Kubernetes object has.
fn is_envelope(m: &Map<String, Value>) -> bool {
    m.get("object").is_some_and(Value::is_object)
        && !m.contains_key("apiVersion")
        && !m.contains_key("kind")
        && !m.contains_key("metadata")
}

/// Checks a change type against whether there is a previous state, and
/// fills in a deleted event's (as the host does: its last state).
fn event(change: ChangeType, object: Value, old: Option<Value>, at: &str) -> Result<EventData> {
    let old = match (change, old) {
        (ChangeType::Added, Some(_)) => bail!(
            "{at}: an added event has no previous state, but one was given; \
             use change modified or deleted, or drop the previous state"
        ),
        (ChangeType::Deleted, None) => Some(object.clone()),
        (_, old) => old,
    };
    Ok(EventData::new(change, object, old))
}

fn read_events(args: &PluginTestArgs, path: &Path) -> Result<(Vec<Input>, bool)> {
    let file = if path == Path::new("-") {
        "standard input".to_string()
    } else {
        format!("event {}", path.display())
    };
    let text = read_text(path, "event")?;
    let values = json_values(&text, &file)?;
    let batch = values.len() > 1;
    if args.change == Some(ChangeType::Added) && args.old.is_some() {
        bail!(
            "--change added with --old: an added event has no previous state; \
             use --change modified or deleted, or leave out --old"
        );
    }
    let old = match &args.old {
        Some(_) if batch => bail!(
            "--old applies to a single event; {file} holds {}: give each its \"old\"",
            values.len()
        ),
        Some(p) => Some(read_json(p, "old object")?),
        None => None,
    };
    let mut inputs = Vec::with_capacity(values.len());
    for (line, value) in values {
        let at = if path == Path::new("-") {
            format!("standard input:{line}")
        } else {
            format!("{}:{line}", path.display())
        };
        let Value::Object(mut m) = value else {
            bail!("{at}: an event must be a JSON object");
        };
        let data = if is_envelope(&m) {
            if old.is_some() {
                bail!("{at}: --old with a watch event: give its \"old\" instead");
            }
            let kind = m
                .get("type")
                .or_else(|| m.get("change"))
                .and_then(Value::as_str)
                .map(|t| t.parse::<ChangeType>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
            let object = m.remove("object").unwrap_or(Value::Null);
            let prev = m.remove("old").or_else(|| m.remove("oldObject"));
            let change = kind.or(args.change).unwrap_or(if prev.is_some() {
                ChangeType::Modified
            } else {
                ChangeType::Added
            });
            event(change, object, prev, &at)?
        } else {
            let change = args.change.unwrap_or(if old.is_some() {
                ChangeType::Modified
            } else {
                ChangeType::Added
            });
            event(change, Value::Object(m), old.clone(), &at)?
        };
        inputs.push(Input { data, at });
    }
    Ok((inputs, batch))
}

fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

/// The config of each plugin, in chain order.
fn configs(args: &PluginTestArgs, names: &[String]) -> Result<Vec<String>> {
    let mut out = vec!["{}".to_string(); names.len()];
    let mut given = vec![false; names.len()];
    for c in &args.config {
        let named = c
            .split_once('=')
            .filter(|(n, _)| names.iter().any(|x| x == n));
        let (targets, file): (Vec<usize>, &str) = match named {
            Some((n, f)) => (
                names
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| *x == n)
                    .map(|(i, _)| i)
                    .collect(),
                f,
            ),
            None if names.len() == 1 => (vec![0], c.as_str()),
            None => bail!(
                "--config {c}: in a chain, say whose config it is: --config NAME=FILE, \
                 NAME one of {}",
                names.join(", ")
            ),
        };
        let text = read_config(Path::new(file))?;
        for i in targets {
            if given[i] {
                bail!("--config: plugin {} is given two configs", names[i]);
            }
            given[i] = true;
            out[i] = text.clone();
        }
    }
    Ok(out)
}

/// What `herald plugin test` found.
#[derive(Debug)]
pub(crate) struct TestReport {
    /// One report per event, in input order.
    pub reports: Vec<Value>,
    /// Whether the input held several events (printed one per line).
    pub batch: bool,
    /// The failed calls, `file:line: plugin `x` …` each.
    pub failures: Vec<String>,
}

/// Runs the plugins on the events.
///
/// # Errors
/// Bad arguments or input, a plugin that does not load or start, and, for
/// a single event, a plugin failure (a file of events reports failures per
/// event in [`TestReport::failures`]).
pub(crate) fn run(args: &PluginTestArgs) -> Result<TestReport> {
    let (plugins, event_path) = match (args.chain.is_empty(), args.paths.as_slice()) {
        (true, [plugin, event]) => (vec![plugin.clone()], event.clone()),
        (true, [_]) => bail!("give the plugin and the event: herald plugin test PLUGIN EVENT"),
        (false, [event]) => (args.chain.clone(), event.clone()),
        (false, _) => bail!(
            "with --chain, give only the event: herald plugin test --chain A.wasm,B.wasm EVENT"
        ),
        (true, _) => bail!("give the plugin and the event: herald plugin test PLUGIN EVENT"),
    };
    let (inputs, batch) = read_events(args, &event_path)?;
    let names: Vec<String> = plugins.iter().map(|p| plugin_name(p)).collect();
    let configs = configs(args, &names)?;
    let defaults = PluginSettings::default();
    let memory = match args.memory {
        Some(m) => usize::try_from(m.as_u64())
            .ok()
            .filter(|m| *m > 0)
            .with_context(|| format!("--memory {m}: out of range"))?,
        None => defaults.memory_limit,
    };
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: (plugins.len() as u32).saturating_mul(2).max(4),
        max_memory: memory.max(defaults.memory_limit),
        cache_dir: args.cache_dir.clone(),
        ..RuntimeConfig::default()
    })?;
    let allow = if args.allow_clocks {
        vec![Capability::Clocks]
    } else {
        vec![]
    };
    let mut instances = Vec::with_capacity(plugins.len());
    for ((path, name), config) in plugins.iter().zip(&names).zip(configs) {
        let plugin = runtime.load(name, path, &allow)?;
        instances.push(PluginInstance::new(
            plugin,
            PluginSettings {
                config,
                memory_limit: memory,
                deadline: args.deadline.unwrap_or(defaults.deadline),
                on_error: OnError::Route(FAILED.into()),
                allow: allow.clone(),
            },
        )?);
    }
    let mut chain = Chain::new(instances).without_failure_log();
    let ats: Vec<String> = inputs.iter().map(|i| i.at.clone()).collect();
    let outcomes = chain.run(inputs.into_iter().map(|i| i.data).collect());
    let mut reports = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for (outcome, at) in outcomes.into_iter().zip(ats) {
        let mut report = Map::new();
        report.insert("change".into(), json!(outcome.event.change));
        match outcome.fate {
            Fate::Deliver { routes } if routes.is_empty() => {
                report.insert("verdict".into(), json!("pass"));
            }
            Fate::Deliver { routes } => {
                report.insert("verdict".into(), json!("route"));
                report.insert("sinks".into(), json!(routes));
            }
            Fate::Dropped { plugin, reason } => {
                report.insert("verdict".into(), json!("drop"));
                report.insert("reason".into(), json!(reason));
                report.insert("plugin".into(), json!(plugin));
            }
            Fate::DeadLetter { plugin, error, .. } => {
                let message = format!("plugin `{plugin}` {error}");
                report.insert("verdict".into(), json!("error"));
                report.insert("error".into(), json!(message));
                report.insert("plugin".into(), json!(plugin));
                failures.push(if batch {
                    format!("{at}: {message}")
                } else {
                    message
                });
            }
        }
        report.insert("object".into(), outcome.event.object.into_value());
        if let Some(old) = outcome.event.old {
            report.insert("old".into(), old.into_value());
        }
        reports.push(Value::Object(report));
    }
    if !batch && !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(TestReport {
        reports,
        batch,
        failures,
    })
}

/// Runs `herald plugin test` and prints its reports: one pretty JSON
/// object for a single event, one line per event for a file of several.
///
/// # Errors
/// Those of [`run`], and a failed call in a file of events (after every
/// report is printed).
pub(crate) fn print(args: &PluginTestArgs) -> Result<()> {
    let report = run(args)?;
    for r in &report.reports {
        if report.batch {
            println!("{r}");
        } else {
            println!("{}", serde_json::to_string_pretty(r)?);
        }
    }
    if !report.failures.is_empty() {
        bail!(
            "{} of {} events failed: {}",
            report.failures.len(),
            report.reports.len(),
            report.failures.join("; ")
        );
    }
    Ok(())
}
