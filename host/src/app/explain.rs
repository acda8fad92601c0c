//! `herald explain`: one object through what `herald run` would do with a
//! config, each step with its verdict and why. The steps are the production
//! ones: [`source::matching`](crate::source::matching) for the watch,
//! [`pipeline::Stages::admit`] for dedup (seeded from a state dir as at a
//! start), the watch's [`Chain`](crate::plugin::Chain) built by
//! [`Config::chains_for`], [`pipeline::address`] and [`Routes`] for routing,
//! and each sink's own request builder ([`crate::sink::preview`]).

use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::Config;
use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::pipeline::{self, Addressed, Outcome, Routes};
use crate::plugin::{EventData, Fate, PluginStep, Runtime, RuntimeConfig};
use crate::sink::preview::Preview;
use crate::source::matching;

/// What to explain.
#[derive(Debug, Clone)]
pub struct Input {
    /// The object (for a deletion: its last state).
    pub object: Value,
    /// Its previous state.
    pub old: Option<Value>,
    /// The change; default: modified with `old`, else added.
    pub change: Option<ChangeType>,
    /// A state dir to dedup against (as `herald run` seeds dedup from it).
    pub state_dir: Option<std::path::PathBuf>,
}

/// The whole story.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// `apiVersion kind namespace/name`.
    pub object: String,
    /// The change explained.
    pub change: ChangeType,
    /// One report per watch of the config, in config order.
    pub watches: Vec<WatchReport>,
    /// Where it ends, in one line.
    pub fate: String,
}

/// One watch's part.
#[derive(Debug, Clone, Serialize)]
pub struct WatchReport {
    /// The watch id.
    pub watch: String,
    /// Whether it sees the object.
    pub matched: bool,
    /// Where it stops: `not-watched`, `duplicate`, `dropped`, `unrouted`,
    /// `delivered` or `dead-letter`.
    pub fate: &'static str,
    /// Why (the rule that leaves it out, the dedup verdict, the plugin's
    /// reason).
    pub reason: String,
    /// Secret values were replaced by digests (`secretData: redact`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret_redacted: bool,
    /// The dedup verdict, once matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    /// Each plugin's verdict, in chain order.
    pub plugins: Vec<PluginStep>,
    /// Where the sinks come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<&'static str>,
    /// The route verdicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// Sinks wanted but left out, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<(String, String)>,
    /// What each target sink would receive.
    pub sinks: Vec<SinkReport>,
}

/// One target sink.
#[derive(Debug, Clone, Serialize)]
pub struct SinkReport {
    /// The sink.
    pub sink: String,
    /// The request, when it can be built.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub request: Option<Preview>,
    /// Why it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl WatchReport {
    fn new(watch: String) -> Self {
        WatchReport {
            watch,
            matched: false,
            fate: "not-watched",
            reason: String::new(),
            secret_redacted: false,
            dedup: None,
            plugins: vec![],
            routing: None,
            routes: vec![],
            left_out: vec![],
            sinks: vec![],
        }
    }
}

/// Runs `input` through `config` as `herald run` would.
///
/// # Errors
/// A state dir that cannot be opened (herald running with it holds its
/// lock), a plugin that cannot be loaded.
pub fn explain(config: &Config, input: Input) -> Result<Explanation> {
    let change = input.change.unwrap_or(if input.old.is_some() {
        ChangeType::Modified
    } else {
        ChangeType::Added
    });
    let str_at = |p: &str| {
        input
            .object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let api_version = str_at("/apiVersion");
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let gvk = Gvk {
        group,
        version,
        kind: str_at("/kind"),
    };
    let namespace = str_at("/metadata/namespace");
    let object_name = format!(
        "{api_version} {} {}{}",
        gvk.kind,
        if namespace.is_empty() {
            String::new()
        } else {
            format!("{namespace}/")
        },
        str_at("/metadata/name")
    );
    let dedup = Arc::new(
        crate::dedup::Dedup::new(&config.dedup).map_err(|e| anyhow::anyhow!("dedup: {e}"))?,
    );
    let (store, key) = match &input.state_dir {
        Some(dir) => {
            let store = super::open_state(dir, &dedup).context(
                "is `herald run` using this state dir? explain needs it to itself (copy it)",
            )?;
            let path = dir.join("secret-digest.key");
            let key = crate::source::SecretKey::load_or_create(&path)
                .with_context(|| format!("the Secret digest key {}", path.display()))?;
            (Some(Arc::new(store)), key)
        }
        None => (None, crate::source::SecretKey::random()),
    };
    let stages = pipeline::Stages {
        dedup: Some(dedup.clone()),
        state: store,
        ..Default::default()
    };
    let routes = Routes::new(&config.sinks, config.watch_sinks());
    let (sink_configs, _) = crate::sink::effective(&config.sinks);
    let mut runtime = None;
    let mut reports = Vec::new();
    for spec in &config.watch {
        let mut report = WatchReport::new(spec.id());
        if let Err(e) = matching::matches(spec, &input.object, change) {
            report.reason = e.to_string();
            reports.push(report);
            continue;
        }
        report.matched = true;
        let mut object = input.object.clone();
        let mut old = input.old.clone();
        report.secret_redacted = matching::keep(spec, &mut object, &key);
        if let Some(o) = old.as_mut() {
            matching::keep(spec, o, &key);
        }
        let mut ev = ChangeEvent::new(change, gvk.clone(), object, old).with_watch(spec.id());
        let uid = ev.uid().to_string();
        let Some(_hash) = stages.admit(&mut ev) else {
            report.fate = "duplicate";
            report.reason = format!(
                "already notified: dedup holds this state of uid {uid:?}{}",
                if input.state_dir.is_some() {
                    " (recorded in the state dir)"
                } else {
                    ""
                }
            );
            report.dedup = Some(report.reason.clone());
            reports.push(report);
            continue;
        };
        report.dedup = Some(if uid.is_empty() {
            "new (the object has no metadata.uid; dedup keys on it)".into()
        } else {
            "new state: not notified before".into()
        });
        let rt = match &mut runtime {
            Some(rt) => rt,
            None => runtime.insert(Runtime::new(RuntimeConfig {
                cache_dir: config.plugins.cache_dir.clone(),
                ..RuntimeConfig::default()
            })?),
        };
        let mut chains = config.chains_for(std::slice::from_ref(spec), rt)?;
        let data = EventData::new(ev.change, ev.object.clone(), ev.old.clone());
        let (event, fate) = match chains.remove(&spec.id()) {
            Some(chain) if !chain.plugins().is_empty() => {
                let mut trace = Vec::new();
                let mut chain = chain.without_failure_log();
                let out = chain.run_traced(vec![data], Some(&mut trace)).pop();
                report.plugins = trace.pop().unwrap_or_default();
                match out {
                    Some(o) => (o.event, o.fate),
                    None => {
                        report.fate = "dropped";
                        report.reason = "the chain returned no event".into();
                        reports.push(report);
                        continue;
                    }
                }
            }
            _ => (data, Fate::Deliver { routes: vec![] }),
        };
        if let Fate::Deliver { routes: r } = &fate {
            report.routes = r.clone();
        }
        let outcome = Outcome {
            change: ev.change,
            gvk: ev.gvk.clone(),
            watch: spec.id(),
            namespace: ev.namespace().map(str::to_string),
            name: ev.name().to_string(),
            uid,
            observed_at: ev.observed_at,
            object: event.object,
            old: event.old,
            fate,
            record: vec![],
            stream: String::new(),
            plugins: Vec::new(),
        };
        let ns = outcome.namespace.clone();
        let dead = matches!(outcome.fate, Fate::DeadLetter { .. });
        if let Fate::DeadLetter {
            sink,
            plugin,
            error,
        } = &outcome.fate
        {
            report.reason = format!("plugin {plugin} failed ({error}); dead letter to {sink}");
        }
        match pipeline::address(config.cluster.as_str().into(), outcome, &routes) {
            Addressed::Dropped { plugin, reason } => {
                report.fate = "dropped";
                report.reason = format!("dropped by plugin {plugin}: {reason}");
            }
            Addressed::Notify {
                targets,
                notification,
            } => {
                report.routing = Some(if dead {
                    "the failing plugin's onError route (a dead letter)"
                } else {
                    routes.source_of(&spec.id(), &notification.routes)
                });
                report.left_out = routes.left_out(&spec.id(), ns.as_deref(), &notification.routes);
                report.fate = match (targets.is_empty(), dead) {
                    (true, _) => "unrouted",
                    (false, true) => "dead-letter",
                    (false, false) => "delivered",
                };
                if targets.is_empty() {
                    report.reason = "no sink takes it".into();
                } else if !dead {
                    report.reason = format!("to {}", targets.join(", "));
                }
                for sink in targets {
                    let preview = sink_configs
                        .iter()
                        .find(|c| c.name() == sink)
                        .map(|c| crate::sink::preview::preview(&config.cluster, c, &notification));
                    report.sinks.push(match preview {
                        Some(Ok(p)) => SinkReport {
                            sink,
                            request: Some(p),
                            error: None,
                        },
                        Some(Err(e)) => SinkReport {
                            sink,
                            request: None,
                            error: Some(format!("{e:#}")),
                        },
                        None => SinkReport {
                            sink,
                            request: None,
                            error: Some("no such sink".into()),
                        },
                    });
                }
            }
        }
        reports.push(report);
    }
    let fate = summary(&reports);
    Ok(Explanation {
        object: object_name,
        change,
        watches: reports,
        fate,
    })
}

/// Where it ends, over every watch.
fn summary(reports: &[WatchReport]) -> String {
    let matched: Vec<&WatchReport> = reports.iter().filter(|r| r.matched).collect();
    if matched.is_empty() {
        return "not notified: no watch sees it".into();
    }
    let lines: Vec<String> = matched
        .iter()
        .map(|r| match r.fate {
            "delivered" | "dead-letter" => format!(
                "{}: {} {}",
                r.watch,
                if r.fate == "delivered" {
                    "notified"
                } else {
                    "dead-lettered"
                },
                r.reason
            ),
            _ => format!("{}: not notified: {}", r.watch, r.reason),
        })
        .collect();
    lines.join("; ")
}
