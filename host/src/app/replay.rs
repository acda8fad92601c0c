//! `herald replay`: a recording ([`super::record`]) through one config, or
//! two side by side, offline. Each change goes through what `herald
//! explain` evaluates ([`Evaluator`]): watch match, dedup (fresh for each
//! config, remembering the recording's earlier changes as a run does), the
//! watch's chain with its policies, routing and the sinks' namespaces. No
//! cluster, no sink is contacted.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Config;
use super::explain::{Evaluator, Explanation, Input};
use super::record::Recorded;

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The recording.
    pub file: String,
    /// Changes replayed (lines of the file).
    pub changes: u64,
    /// Through the first config.
    pub a: Tally,
    /// Through the second (`--against`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<Tally>,
    /// With two configs: each object with a change whose fate differs, in
    /// the order of its first such change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Vec<Difference>>,
}

/// Counts over one config.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// The config file.
    pub config: String,
    /// Per fate, one per change and watch that sees it (`delivered`,
    /// `dropped`, `duplicate`, `unrouted`, `dead-letter`), plus
    /// `not-watched` for changes no watch sees.
    pub fates: BTreeMap<String, u64>,
    /// Per plugin, its verdicts (`pass`, `drop`, `route`, `error`).
    pub plugins: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per sink, the notifications it would receive.
    pub sinks: BTreeMap<String, u64>,
}

/// An object whose fate differs between the two configs.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// `apiVersion kind namespace/name`.
    pub object: String,
    /// `metadata.uid`.
    pub uid: String,
    /// How many of its changes differ.
    pub changes: u64,
    /// The first one: its line in the file.
    pub line: usize,
    /// Its change type.
    pub change: crate::change::ChangeType,
    /// Where it ends with the first config.
    pub a: String,
    /// Where it ends with the second.
    pub b: String,
}

/// What a change's fate is compared by: per watch that sees it, where it
/// stops and the sinks it reaches.
type FateKey = Vec<(String, &'static str, Vec<String>)>;

impl Tally {
    fn add(&mut self, e: &Explanation) -> FateKey {
        let mut key = Vec::new();
        for w in e.watches.iter().filter(|w| w.matched) {
            *self.fates.entry(w.fate.to_string()).or_default() += 1;
            for p in &w.plugins {
                *self
                    .plugins
                    .entry(p.plugin.clone())
                    .or_default()
                    .entry(p.verdict.to_string())
                    .or_default() += 1;
            }
            let sinks: Vec<String> = w.sinks.iter().map(|s| s.sink.clone()).collect();
            for s in &sinks {
                *self.sinks.entry(s.clone()).or_default() += 1;
            }
            key.push((w.watch.clone(), w.fate, sinks));
        }
        if key.is_empty() {
            *self.fates.entry("not-watched".into()).or_default() += 1;
        }
        key
    }
}

/// Replays `file` through `a` (and `b`).
///
/// # Errors
/// A file that cannot be read, a line that is not a recorded change (named
/// by its number), a plugin that cannot be loaded.
pub fn replay(file: &Path, a: (&Path, &Config), b: Option<(&Path, &Config)>) -> Result<Report> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?,
    );
    // One key for both: a Secret a watch redacts gets the same digests
    // under either config.
    let key = crate::source::SecretKey::random();
    let mut eval_a = Evaluator::new(a.1, None, Some(key.clone()))?;
    eval_a.previews = false;
    let mut eval_b = match b {
        Some((_, config)) => {
            let mut e = Evaluator::new(config, None, Some(key))?;
            e.previews = false;
            Some(e)
        }
        None => None,
    };
    let mut report = Report {
        file: file.display().to_string(),
        changes: 0,
        a: Tally {
            config: a.0.display().to_string(),
            ..Tally::default()
        },
        b: b.map(|(path, _)| Tally {
            config: path.display().to_string(),
            ..Tally::default()
        }),
        differences: b.map(|_| Vec::new()),
    };
    let mut by_object: HashMap<String, usize> = HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{}:{n}: cannot read", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let input = parse(&line).with_context(|| format!("{}:{n}", file.display()))?;
        report.changes += 1;
        let ea = eval_a
            .evaluate(&input)
            .with_context(|| format!("{}:{n}: with {}", file.display(), a.0.display()))?;
        let key_a = report.a.add(&ea);
        let (Some(eval_b), Some(tally_b), Some(diffs)) = (
            eval_b.as_mut(),
            report.b.as_mut(),
            report.differences.as_mut(),
        ) else {
            continue;
        };
        let eb = eval_b.evaluate(&input).with_context(|| {
            let path = b.map(|(p, _)| p.display().to_string()).unwrap_or_default();
            format!("{}:{n}: with {path}", file.display())
        })?;
        if tally_b.add(&eb) == key_a {
            continue;
        }
        let uid = input
            .object
            .pointer("/metadata/uid")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = if uid.is_empty() {
            ea.object.clone()
        } else {
            uid.clone()
        };
        match by_object.get(&id) {
            Some(&at) => diffs[at].changes += 1,
            None => {
                by_object.insert(id, diffs.len());
                diffs.push(Difference {
                    object: ea.object.clone(),
                    uid,
                    changes: 1,
                    line: n,
                    change: ea.change,
                    a: ea.fate.clone(),
                    b: eb.fate.clone(),
                });
            }
        }
    }
    Ok(report)
}

/// One line as an [`Input`].
fn parse(line: &str) -> Result<Input> {
    let r: Recorded =
        serde_json::from_str(line).map_err(|e| anyhow::anyhow!("not a recorded change: {e}"))?;
    if !r.object.is_object() {
        anyhow::bail!("not a recorded change: `object` is not a JSON object");
    }
    let at = humantime::parse_rfc3339_weak(&r.time)
        .map_err(|e| anyhow::anyhow!("time {:?}: {e}", r.time))?;
    Ok(Input {
        object: r.object,
        old: r.old,
        change: Some(r.change),
        state_dir: None,
        observed_at: Some(at),
        resync: r.resync,
    })
}
