//! `herald explain`: one object through what `herald run` would do with a
//! config, each step with its verdict and why. The steps are the production
//! ones: [`source::matching`](crate::source::matching) for the watch,
//! [`pipeline::Stages::admit`] for dedup (seeded from a state dir as at a
//! start), the watch's [`Chain`](crate::plugin::Chain) built by
//! [`Config::chains_for`], [`pipeline::address`] and [`Routes`] for routing,
//! and each sink's own request builder ([`crate::sink::preview`]).
//! [`Evaluator`] runs them; `herald replay` ([`super::replay`]) keeps one per
//! config for a whole recording, so dedup and the plugins' instances carry
//! from one change to the next as in a run.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::Config;
use crate::cache::CachedObject;
use crate::change::{ChangeEvent, ChangeType, Doc, Gvk};
use crate::pipeline::{self, Addressed, Outcome, Routes};
use crate::plugin::{Chain, EventData, Fate, PluginStep, Runtime, RuntimeConfig};
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
    /// When herald saw the change (`time` in the envelope); default: now.
    pub observed_at: Option<std::time::SystemTime>,
    /// A periodic resync re-offering the current state, not a change the
    /// API server reported (dedup treats it as `herald run` does).
    pub resync: bool,
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
    Evaluator::new(config, input.state_dir.as_deref(), None)?.evaluate(&input)
}

/// Evaluates objects one after another as one `herald run` with `config`
/// would: dedup remembers what it admitted and each watch's chain keeps its
/// plugin instances (and their state) from one object to the next.
/// `herald explain` evaluates one object, `herald replay` a recording.
pub(crate) struct Evaluator<'a> {
    config: &'a Config,
    stages: pipeline::Stages,
    from_state_dir: bool,
    key: crate::source::SecretKey,
    routes: Routes,
    sink_configs: Vec<crate::sink::SinkConfig>,
    runtime: Option<Runtime>,
    chains: HashMap<String, Chain>,
    /// Build each target sink's request (explain); without, the sinks are
    /// only named (replay).
    pub previews: bool,
}

impl<'a> Evaluator<'a> {
    /// A fresh run of `config`: dedup empty, or seeded from `state_dir` as
    /// at a start; Secrets digested with `key`, else with the state dir's
    /// key, else a random one.
    ///
    /// # Errors
    /// A state dir that cannot be opened (herald running with it holds its
    /// lock).
    pub(crate) fn new(
        config: &'a Config,
        state_dir: Option<&std::path::Path>,
        key: Option<crate::source::SecretKey>,
    ) -> Result<Self> {
        let dedup = Arc::new(
            crate::dedup::Dedup::new(&config.dedup).map_err(|e| anyhow::anyhow!("dedup: {e}"))?,
        );
        let store = match state_dir {
            Some(dir) => Some(Arc::new(super::open_state(dir, &dedup).context(
                "is `herald run` using this state dir? explain needs it to itself (copy it)",
            )?)),
            None => None,
        };
        let key = match (key, state_dir) {
            (Some(key), _) => key,
            (None, Some(dir)) => {
                let path = dir.join("secret-digest.key");
                crate::source::SecretKey::load_or_create(&path)
                    .with_context(|| format!("the Secret digest key {}", path.display()))?
            }
            (None, None) => crate::source::SecretKey::random(),
        };
        Ok(Evaluator {
            config,
            stages: pipeline::Stages {
                dedup: Some(dedup),
                state: store,
                ..Default::default()
            },
            from_state_dir: state_dir.is_some(),
            key,
            routes: config.routes(),
            sink_configs: crate::sink::effective(&config.sinks).0,
            runtime: None,
            chains: HashMap::new(),
            previews: true,
        })
    }

    /// The watch's chain, built at its first use.
    fn chain(&mut self, spec: &crate::source::WatchSpec) -> Result<&mut Chain> {
        let id = spec.id();
        if !self.chains.contains_key(&id) {
            let rt = match &mut self.runtime {
                Some(rt) => rt,
                None => self.runtime.insert(Runtime::new(RuntimeConfig {
                    cache_dir: self.config.plugins.cache_dir.clone(),
                    ..RuntimeConfig::default()
                })?),
            };
            let chain = self
                .config
                .chains_for(std::slice::from_ref(spec), rt)?
                .remove(&id)
                .unwrap_or_else(|| Chain::new(vec![]))
                .without_failure_log();
            self.chains.insert(id.clone(), chain);
        }
        self.chains
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("watch {id}: no chain"))
    }

    /// Runs `input` through every watch of the config.
    ///
    /// # Errors
    /// A plugin that cannot be loaded.
    pub(crate) fn evaluate(&mut self, input: &Input) -> Result<Explanation> {
        let change = input.change.unwrap_or(if input.old.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        });
        let (gvk, object_name) = identity(&input.object);
        let config = self.config;
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
            report.secret_redacted = matching::keep(spec, &mut object, &self.key);
            if let Some(o) = old.as_mut() {
                matching::keep(spec, o, &self.key);
            }
            // As the source hands them on: the stored states, parsed when read.
            let stored = |v: &Value| Doc::stored(Arc::new(CachedObject::from_value(v)));
            let mut ev = ChangeEvent::of_docs(
                change,
                gvk.clone(),
                stored(&object),
                old.as_ref().map(stored),
            )
            .with_watch(spec.id());
            if let Some(at) = input.observed_at {
                ev.observed_at = at;
            }
            ev.resync = input.resync;
            let uid = ev.uid().to_string();
            let Some(_hash) = self.stages.admit(&mut ev) else {
                report.fate = "duplicate";
                report.reason = format!(
                    "already notified: dedup holds this state of uid {uid:?}{}",
                    if self.from_state_dir {
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
            let data = EventData::of_docs(ev.change, ev.object.clone(), ev.old.clone());
            let chain = self.chain(spec)?;
            let (event, fate) = if chain.plugins().is_empty() {
                (data, Fate::Deliver { routes: vec![] })
            } else {
                let mut trace = Vec::new();
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
            self.route(spec, outcome, &mut report);
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

    /// Routing and the sinks' requests, as `pipeline::Delivery` addresses it.
    fn route(&self, spec: &crate::source::WatchSpec, outcome: Outcome, report: &mut WatchReport) {
        let config = self.config;
        let routes = &self.routes;
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
        match pipeline::address(config.cluster.as_str().into(), outcome, routes) {
            Addressed::Dropped { plugin, reason } => {
                report.fate = "dropped";
                report.reason = format!("dropped by plugin {plugin}: {reason}");
            }
            Addressed::Notify {
                mut targets,
                notification,
                misrouted,
            } => {
                report.routing = Some(if dead {
                    "the failing plugin's onError route (a dead letter)"
                } else {
                    routes.source_of(&spec.id(), &notification.routes)
                });
                report.left_out = routes.left_out(&spec.id(), ns.as_deref(), &notification.routes);
                let mut bodies = vec![None; targets.len()];
                let misrouted = misrouted.map(|(sink, why)| {
                    let mut n = notification.as_ref().clone();
                    n.dead_letter = Some(why);
                    targets.push(sink.clone());
                    bodies.push(Some(n));
                    sink
                });
                report.fate = match (targets.is_empty(), dead || misrouted.is_some()) {
                    (true, _) => "unrouted",
                    (false, true) if bodies.len() == 1 || dead => "dead-letter",
                    _ => "delivered",
                };
                if targets.is_empty() {
                    report.reason = "no sink takes it".into();
                } else if !dead {
                    report.reason = format!("to {}", targets.join(", "));
                }
                if let Some(dl) = &misrouted {
                    report.reason.push_str(&format!(
                        " ({dl} is the deadLetter for route verdicts naming no sink)"
                    ));
                }
                for (sink, body) in targets.into_iter().zip(bodies) {
                    let n = body.as_ref().unwrap_or(notification.as_ref());
                    if !self.previews {
                        report.sinks.push(SinkReport {
                            sink,
                            request: None,
                            error: None,
                        });
                        continue;
                    }
                    let preview = self
                        .sink_configs
                        .iter()
                        .find(|c| c.name() == sink)
                        .map(|c| crate::sink::preview::preview(&config.cluster, c, n));
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
    }
}

/// The object's type, and `apiVersion kind namespace/name` for reports.
fn identity(object: &Value) -> (Gvk, String) {
    let str_at = |p: &str| {
        object
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
    let name = format!(
        "{api_version} {} {}{}",
        gvk.kind,
        if namespace.is_empty() {
            String::new()
        } else {
            format!("{namespace}/")
        },
        str_at("/metadata/name")
    );
    (gvk, name)
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
