//! `herald explain`: why an object was (or would not be) notified, step by
//! step, as text or one JSON document. The work is [`crate::app::explain`].

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::app::explain::{Explanation, Input, explain};
use crate::change::ChangeType;

/// `herald explain` arguments.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The config `herald run` would use.
    #[arg(long)]
    pub config: PathBuf,
    /// The object, as JSON (for a deletion: its last state).
    pub object: PathBuf,
    /// Its previous state, as JSON.
    #[arg(long)]
    pub old: Option<PathBuf>,
    /// The change; default: modified with --old, else added.
    #[arg(long, value_parser = ["added", "modified", "deleted"])]
    pub change: Option<String>,
    /// A state dir (a copy of herald's, or one herald is not running with)
    /// to dedup against.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// `text` (default) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

fn read_json(path: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

/// Runs `herald explain`, printing the report on stdout.
///
/// # Errors
/// A config, object or state dir that cannot be read, a plugin that cannot
/// be loaded.
pub fn print(args: &ExplainArgs) -> Result<()> {
    let config = crate::app::load_config(&args.config)?;
    let input = Input {
        object: read_json(&args.object)?,
        old: args.old.as_ref().map(read_json).transpose()?,
        change: match args.change.as_deref() {
            Some("added") => Some(ChangeType::Added),
            Some("modified") => Some(ChangeType::Modified),
            Some("deleted") => Some(ChangeType::Deleted),
            _ => None,
        },
        state_dir: args.state_dir.clone(),
        observed_at: None,
        resync: false,
    };
    let e = explain(&config, input)?;
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", text(&e));
    }
    Ok(())
}

/// The report as numbered steps per watch.
pub fn text(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", e.object, e.change.as_str());
    for w in &e.watches {
        let _ = writeln!(out, "\nwatch {}:", w.watch);
        if !w.matched {
            let _ = writeln!(out, "  1. watch: no match: {}", w.reason);
            continue;
        }
        let _ = writeln!(out, "  1. watch: matches");
        if w.secret_redacted {
            let _ = writeln!(
                out,
                "     Secret values replaced by digests (secretData: redact)"
            );
        }
        let _ = writeln!(
            out,
            "  2. dedup: {}",
            w.dedup.as_deref().unwrap_or_default()
        );
        if w.fate == "duplicate" {
            let _ = writeln!(out, "  => not notified: {}", w.reason);
            continue;
        }
        if w.plugins.is_empty() {
            let _ = writeln!(out, "  3. plugins: none");
        }
        for (i, p) in w.plugins.iter().enumerate() {
            let _ = writeln!(
                out,
                "  3.{}. plugin {}: {}{} ({} µs)",
                i + 1,
                p.plugin,
                p.verdict,
                if p.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.reason)
                },
                p.micros
            );
            if !p.removed.is_empty() {
                let _ = writeln!(out, "       removed {}", p.removed.join(", "));
            }
            if !p.set.is_empty() {
                let _ = writeln!(out, "       set {}", p.set.join(", "));
            }
        }
        if w.fate == "dropped" {
            let _ = writeln!(out, "  => not notified: {}", w.reason);
            continue;
        }
        let _ = writeln!(out, "  4. routing: {}", w.routing.unwrap_or("(none)"));
        for (sink, why) in &w.left_out {
            let _ = writeln!(out, "     not {sink}: {why}");
        }
        for s in &w.sinks {
            let _ = writeln!(out, "  5. sink {}:", s.sink);
            match (&s.request, &s.error) {
                (Some(r), _) => {
                    match (&r.method, &r.url) {
                        (Some(m), Some(u)) => {
                            let _ = writeln!(out, "     {m} {u}");
                        }
                        _ => {
                            let _ = writeln!(out, "     a line on standard output");
                        }
                    }
                    for (k, v) in &r.headers {
                        let _ = writeln!(out, "     {k}: {v}");
                    }
                    let body = serde_json::from_str::<Value>(&r.body)
                        .ok()
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or_else(|| r.body.clone());
                    for line in body.lines() {
                        let _ = writeln!(out, "     | {line}");
                    }
                }
                (None, Some(err)) => {
                    let _ = writeln!(out, "     cannot build its request: {err}");
                }
                (None, None) => {}
            }
        }
        let _ = writeln!(
            out,
            "  => {}: {}",
            match w.fate {
                "delivered" => "notified",
                "dead-letter" => "dead-lettered",
                _ => "not notified",
            },
            w.reason
        );
    }
    let _ = writeln!(out, "\nfate: {}", e.fate);
    out
}
