//! What `/proc` says about a process: CPU time (whole process and per thread)
//! and memory. Linux only, as the benches are.

#![allow(dead_code)] // each bench uses a subset

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux x86_64).
const USER_HZ: u64 = 100;

/// Fields of a `stat` line after the `(comm)` field, which may hold spaces.
fn stat_fields(text: &str) -> Option<(String, Vec<u64>)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest = text[close + 2..]
        .split_whitespace()
        .map(|f| f.parse::<i64>().unwrap_or(0).max(0) as u64)
        .collect();
    Some((comm, rest))
}

/// User + system CPU time of process `pid`, all its threads, living and
/// exited (10 ms resolution).
pub fn cpu(pid: u32) -> Duration {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, f)) = stat_fields(&text) else {
        return Duration::ZERO;
    };
    // After `(comm)`: state=0, ..., utime=11, stime=12.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 1000 / USER_HZ)
}

/// CPU time of every living thread of `pid` (nanosecond resolution, from
/// `schedstat`), summed by thread name.
pub fn threads(pid: u32) -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let ns: u64 = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        *out.entry(comm).or_insert(Duration::ZERO) += Duration::from_nanos(ns);
    }
    out
}

/// How many times the process's threads were switched in, summed
/// (`/proc/<pid>/task/*/schedstat`'s third field: each time a thread that
/// slept or was preempted ran again).
pub fn switches(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum()
}

/// The first `n` of `threads` (name, CPU), as `name ms, name ms`.
#[allow(dead_code)]
pub fn by_thread(threads: &[(String, Duration)], n: usize) -> String {
    threads
        .iter()
        .take(n)
        .map(|(name, d)| format!("{name} {:.0}", d.as_secs_f64() * 1e3))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `after - before` per thread name.
pub fn threads_delta(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
) -> BTreeMap<String, Duration> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or_default()),
            )
        })
        .collect()
}

/// One `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in bytes.
pub fn status_kb(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `VmHWM` and `VmRSS` of this process, in bytes.
pub fn memory() -> (u64, u64) {
    let me = std::process::id();
    (status_kb(me, "VmHWM:"), status_kb(me, "VmRSS:"))
}

/// `bytes` in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// User and system CPU time of process `pid` (`utime`, `stime`), apart.
pub fn cpu_split(pid: u32) -> (Duration, Duration) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, f)) = stat_fields(&text) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let t = |i: usize| Duration::from_millis(f.get(i).copied().unwrap_or(0) * 1000 / USER_HZ);
    (t(11), t(12))
}

/// The whole machine's CPU time from `/proc/stat`: busy (everything but idle
/// and iowait; steal counts as busy, since this VM could not use it) and
/// all, in ticks summed over its cores, and how many cores it has. Two
/// readings around a run say how many cores were in use during it, by any
/// process (herald, the bench's simulator and receiver, anything else).
#[derive(Clone, Copy, Default)]
pub struct Machine {
    busy: u64,
    all: u64,
    cores: usize,
}

/// The machine's CPU time now.
pub fn machine() -> Machine {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut m = Machine::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal (guest
                // time is in user).
                let v: Vec<u64> = f.take(8).map(|v| v.parse().unwrap_or(0)).collect();
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                m.all = v.iter().sum();
                m.busy = m.all - idle;
            }
            Some(c) if c.starts_with("cpu") => m.cores += 1,
            _ => {}
        }
    }
    m
}

impl Machine {
    /// Cores in use on average since `before`.
    pub fn cores_since(&self, before: &Machine) -> f64 {
        let all = self.all.saturating_sub(before.all) as f64;
        let busy = self.busy.saturating_sub(before.busy) as f64;
        if all == 0.0 {
            0.0
        } else {
            self.cores as f64 * busy / all
        }
    }

    /// How many cores the machine has.
    pub fn cores(&self) -> usize {
        self.cores
    }
}
