//! `herald record` and `herald replay`: the arguments, and the replay's
//! report as a table or one JSON document. The work is
//! [`crate::app::record`] and [`crate::app::replay`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::app::replay::{Report, Tally};

/// `herald record` arguments.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The config whose watches to record (YAML or JSON).
    #[arg(long, env = "HERALD_CONFIG")]
    pub config: PathBuf,
    /// The recording: one JSON line per change (created or truncated).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this long (`30s`, `10m`); default: at SIGINT or SIGTERM.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Kubeconfig; overrides the config file's.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// `herald replay` arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A recording made by `herald record`.
    pub file: PathBuf,
    /// The config to replay it through.
    #[arg(long)]
    pub config: PathBuf,
    /// A second config: the report compares the two.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// `text` (default) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// Runs `herald record` until `--for` passes or SIGINT/SIGTERM; says how
/// many changes it wrote on stderr.
///
/// # Errors
/// The config does not load, herald does not start, the file cannot be
/// written.
pub async fn record(args: &RecordArgs) -> Result<()> {
    let stop = crate::run::shutdown_signal();
    let config = crate::app::load_config(&args.config)?;
    let kubeconfig = args.kubeconfig.clone().or(config.kubeconfig.clone());
    let client = crate::source::client(kubeconfig.as_deref()).await?;
    let n = crate::app::record::record(config, client, &args.out, args.duration, stop).await?;
    eprintln!("recorded {n} changes to {}", args.out.display());
    Ok(())
}

/// Runs `herald replay`, printing the report on stdout.
///
/// # Errors
/// A config or recording that cannot be read (a bad line is named by its
/// number), a plugin that cannot be loaded.
pub fn replay(args: &ReplayArgs) -> Result<()> {
    let a = crate::app::load_config(&args.config)?;
    let b = args
        .against
        .as_ref()
        .map(|p| crate::app::load_config(p))
        .transpose()?;
    let report = crate::app::replay::replay(
        &args.file,
        (&args.config, &a),
        args.against.as_deref().zip(b.as_ref()),
    )?;
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(())
}

/// The report as tables: fates, plugin verdicts, sinks, then the objects
/// whose fate differs.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "replayed {} changes from {}", r.changes, r.file);
    let tallies: Vec<&Tally> = std::iter::once(&r.a).chain(r.b.as_ref()).collect();
    let names: Vec<String> = tallies.iter().map(|t| short(&t.config)).collect();
    let fates = rows(&tallies, |t| {
        t.fates.iter().map(|(k, v)| (k.clone(), *v)).collect()
    });
    table(&mut out, "fate", &names, &fates);
    let plugins = rows(&tallies, |t| {
        t.plugins
            .iter()
            .flat_map(|(p, vs)| vs.iter().map(move |(v, n)| (format!("{p}: {v}"), *n)))
            .collect()
    });
    table(&mut out, "plugin: verdict", &names, &plugins);
    let sinks = rows(&tallies, |t| {
        t.sinks.iter().map(|(k, v)| (k.clone(), *v)).collect()
    });
    table(&mut out, "sink", &names, &sinks);
    if let Some(diffs) = &r.differences {
        let _ = writeln!(
            out,
            "\n{} object{} whose fate differs between {} and {}",
            diffs.len(),
            if diffs.len() == 1 { "" } else { "s" },
            names[0],
            names.get(1).map(String::as_str).unwrap_or_default()
        );
        for d in diffs {
            let _ = writeln!(
                out,
                "  {} ({} change{}; first: line {}, {})",
                d.object,
                d.changes,
                if d.changes == 1 { "" } else { "s" },
                d.line,
                d.change
            );
            let _ = writeln!(out, "    {}: {}", names[0], d.a);
            let _ = writeln!(
                out,
                "    {}: {}",
                names.get(1).map(String::as_str).unwrap_or_default(),
                d.b
            );
        }
    }
    out
}

/// The file name of a config, for column heads.
fn short(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// Every row name any tally has, with each tally's count (0 when absent).
fn rows(tallies: &[&Tally], f: impl Fn(&Tally) -> Vec<(String, u64)>) -> Vec<(String, Vec<u64>)> {
    let per: Vec<std::collections::BTreeMap<String, u64>> =
        tallies.iter().map(|t| f(t).into_iter().collect()).collect();
    let mut keys: Vec<String> = per.iter().flat_map(|m| m.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let counts = per
                .iter()
                .map(|m| m.get(&k).copied().unwrap_or(0))
                .collect();
            (k, counts)
        })
        .collect()
}

fn table(out: &mut String, head: &str, names: &[String], rows: &[(String, Vec<u64>)]) {
    let first = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .chain([head.len()])
        .max()
        .unwrap_or(0);
    let _ = write!(out, "\n{head:<first$}");
    for n in names {
        let w = n.chars().count().max(8);
        let _ = write!(out, "  {n:>w$}");
    }
    let _ = writeln!(out);
    if rows.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    for (k, counts) in rows {
        let _ = write!(out, "{k:<first$}");
        for (n, c) in names.iter().zip(counts) {
            let w = n.chars().count().max(8);
            let _ = write!(out, "  {c:>w$}");
        }
        let _ = writeln!(out);
    }
}
