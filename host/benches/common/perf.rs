//! `perf record` of a bench's herald process and where its CPU goes, by component:
//! each sampled symbol is put in a bucket by the crate or module it comes from.
//! `HERALD_BENCH_PERF=DIR` turns recording on.

#![allow(dead_code)] // each bench uses a subset

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Components, in the order a change passes them; the first whose pattern a
/// symbol (or its shared object) contains takes it.
const BUCKETS: &[(&str, &[&str])] = &[
    (
        "TLS (rustls, ring)",
        &[
            "rustls",
            // A crate path, not the end of `string::String`.
            "] ring::",
            "<ring::",
            " ring::",
            "ring_core",
            "aes_",
            "aes128",
            "aes256",
            "gcm_",
            "ghash",
            "chacha",
            "poly1305",
            "x25519",
            "sha256",
            "sha512",
            "bn_",
        ],
    ),
    (
        "HTTP/1 framing, watch line split (hyper, tokio-util codec)",
        &[
            "hyper::",
            "hyper_util",
            "httparse",
            "h2::",
            "tokio_util::codec",
            "LinesCodec",
            "http_body",
        ],
    ),
    (
        // herald's JSON scans (the watch decode, the dedup walk, reads and
        // edits on bytes) read blocks of bytes at a time; the watch's line
        // split searches with memchr. Neither's symbols say which caller.
        "byte scans (herald's block scans, the line split's memchr)",
        &["herald::change::blocks", "memchr"],
    ),
    (
        "JSON trees (Value parse, clone, drop, compare)",
        &[
            "serde_json::value",
            "Value>",
            "ValueVisitor",
            "btree",
            "BTree",
        ],
    ),
    (
        "watch decode (JSON → stored bytes, metadata)",
        &[
            "serde_json::de",
            "serde_json::read",
            "source::compact",
            "source::object",
            "WatchedObject",
            "kube_core::watch",
            "serde::de",
            "serde::private",
            "serde_core::de",
            "kube_runtime",
        ],
    ),
    (
        "cache, differ, change events",
        &[
            "source::diff",
            "herald::cache",
            "herald::change",
            "herald::source",
        ],
    ),
    (
        "pipeline (dedup, order, delivery, state)",
        &[
            "herald::pipeline",
            "herald::dedup",
            "xxh3",
            "xxhash",
            "moka",
            "herald::state",
            "herald::ha",
            "crossbeam",
        ],
    ),
    (
        "sink (envelope, old patch, HTTP client), metrics",
        &[
            "herald::sink",
            "reqwest",
            "json_patch",
            "serde_json::ser",
            "Serializer",
            "herald::metrics",
            "prometheus",
        ],
    ),
    (
        "allocator and copies",
        &[
            "malloc", "free", "realloc", "_int_", "memcpy", "memmove", "memset", "calloc",
            "alloc::",
        ],
    ),
    (
        "runtime, threads, wakeups (tokio, locks, syscalls' user side)",
        &[
            "tokio::",
            "parking_lot",
            "std::sys",
            "std::thread",
            "futex",
            "pthread",
            "epoll",
            "mio::",
            "syscall",
            "__lll",
            "std::sync",
            "clock_gettime",
            "__vdso",
            "[vdso]",
        ],
    ),
];

const OTHER: &str = "other (user)";
const KERNEL: &str = "kernel (system time: syscalls, socket I/O, wakeups)";

/// Share of samples per bucket, and the hottest symbols.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// (bucket, fraction of samples).
    pub buckets: Vec<(String, f64)>,
    /// (symbol, fraction), hottest first.
    pub top: Vec<(String, f64)>,
    /// Kernel samples were taken (else the profile is user time only).
    pub has_kernel: bool,
    pub samples_file: PathBuf,
}

/// A `perf record` attached to a process.
pub struct Recording {
    child: Child,
    out: PathBuf,
}

impl Recording {
    /// Starts recording `pid` when `HERALD_BENCH_PERF` names a directory.
    pub fn start(name: &str, pid: u32) -> Option<Recording> {
        let dir = PathBuf::from(std::env::var_os("HERALD_BENCH_PERF")?);
        let _ = std::fs::create_dir_all(&dir);
        let slug: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let out = dir.join(format!("{slug}.data"));
        let child = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&out)
            .arg("-p")
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // perf needs a moment to attach.
        std::thread::sleep(Duration::from_millis(300));
        Some(Recording { child, out })
    }

    /// Stops recording and classifies the samples.
    pub fn finish(mut self) -> Profile {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "--no-children",
                "--sort",
                "dso,sym",
                "-i",
            ])
            .arg(&self.out)
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut p = classify(&text);
        p.samples_file = self.out;
        p
    }
}

/// Buckets the lines of `perf report --stdio --sort dso,sym`
/// (`  12.34%  herald  [.] symbol`).
pub fn classify(report: &str) -> Profile {
    let mut buckets: Vec<(String, f64)> = BUCKETS
        .iter()
        .map(|(b, _)| (b.to_string(), 0.0))
        .chain([(OTHER.to_string(), 0.0), (KERNEL.to_string(), 0.0)])
        .collect();
    let mut top = Vec::new();
    let mut has_kernel = false;
    for line in report.lines() {
        let l = line.trim_start();
        let Some((pct, rest)) = l.split_once('%') else {
            continue;
        };
        let Ok(pct) = pct.trim().parse::<f64>() else {
            continue;
        };
        let share = pct / 100.0;
        let kernel = rest.contains("[k]");
        let sym = rest
            .split_once("] ")
            .map_or(rest, |(_, s)| s)
            .trim()
            .to_string();
        let bucket = if kernel {
            has_kernel = true;
            KERNEL
        } else {
            BUCKETS
                .iter()
                .find(|(_, pats)| pats.iter().any(|p| rest.contains(p)))
                .map_or(OTHER, |(b, _)| b)
        };
        if let Some(b) = buckets.iter_mut().find(|(n, _)| n == bucket) {
            b.1 += share;
        }
        top.push((sym, share));
    }
    top.truncate(25);
    Profile {
        buckets,
        top,
        has_kernel,
        samples_file: PathBuf::new(),
    }
}

/// µs of `cpu` per event that `bucket` takes in `p` (user-only profiles take
/// the user share; the kernel row is then the system time).
fn per_event(p: &Profile, bucket: &str, events: u64, user: Duration, sys: Duration) -> f64 {
    let e = events.max(1) as f64;
    if !p.has_kernel && bucket == KERNEL {
        return sys.as_secs_f64() * 1e6 / e;
    }
    let base = if p.has_kernel { user + sys } else { user };
    let share = p
        .buckets
        .iter()
        .find(|(n, _)| n == bucket)
        .map_or(0.0, |b| b.1);
    share * base.as_secs_f64() * 1e6 / e
}

/// One case of [`report`]: name, profile, events, user and system CPU.
pub type Row<'a> = (&'a str, &'a Profile, u64, Duration, Duration);

/// Prints where herald's CPU goes in each case, in µs per event, and each case's
/// hottest symbols.
pub fn report(cases: &[Row<'_>]) {
    println!();
    println!("Where herald's CPU goes (µs per event; perf cpu-clock samples by component):");
    println!();
    let head: Vec<&str> = cases.iter().map(|c| c.0).collect();
    println!("| component | {} |", head.join(" | "));
    println!("| --- |{}", " ---: |".repeat(cases.len()));
    let names: Vec<&str> = BUCKETS
        .iter()
        .map(|(b, _)| *b)
        .chain([OTHER, KERNEL])
        .collect();
    for b in names {
        let cells: Vec<String> = cases
            .iter()
            .map(|(_, p, e, u, s)| format!("{:.0}", per_event(p, b, *e, *u, *s)))
            .collect();
        println!("| {b} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = cases
        .iter()
        .map(|(_, _, e, u, s)| format!("**{:.0}**", (*u + *s).as_secs_f64() * 1e6 / *e as f64))
        .collect();
    println!("| total | {} |", totals.join(" | "));
    for (name, p, ..) in cases {
        println!();
        println!("Hottest symbols, {name} ({}):", p.samples_file.display());
        for (s, f) in p.top.iter().take(12) {
            println!("- {:.1} % {s}", f * 100.0);
        }
    }
}
