//! Timing helpers shared by the benches (not a bench itself).

#![allow(dead_code)] // each bench uses a subset

pub mod perf;
pub mod proc;

use std::time::{Duration, Instant};

/// The shipped plugins' configs the benches run them with.
pub fn shipped_configs() -> [(&'static str, serde_json::Value); 5] {
    use serde_json::json;
    [
        (
            "filter",
            json!({"ignoreNamespaces": ["kube-*"], "labelSelector": "app=web", "changes": ["added", "modified"]}),
        ),
        ("noise", json!({})),
        (
            "prune",
            json!({"remove": ["/metadata/managedFields", "/spec/containers/*/env"], "secrets": true}),
        ),
        ("diff", json!({})),
        (
            "route",
            json!({"rules": [{"match": {"labels": "tier=frontend"}, "sinks": ["web-hook"]}], "defaultSinks": ["ops"]}),
        ),
    ]
}

/// Rounds per figure; the median round is reported.
pub const ROUNDS: usize = 7;

/// The median of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time per event over [`ROUNDS`] rounds of about `per_round` events,
/// after a warm-up of a quarter round. Each call of `f` handles `per_call`
/// events.
pub fn per_event(per_round: usize, per_call: usize, mut f: impl FnMut()) -> Duration {
    per_event_together(per_round, &mut [(per_call, &mut f)])[0]
}

/// [`per_event`] for several cases at once, their rounds interleaved (round
/// 1 of every case, then round 2, ...), so that a machine that slows down
/// for a while slows every case alike and their ratios hold. Each case is
/// `(per_call, f)`; the medians come back in the cases' order.
pub fn per_event_together(
    per_round: usize,
    cases: &mut [(usize, &mut dyn FnMut())],
) -> Vec<Duration> {
    let calls: Vec<usize> = cases
        .iter()
        .map(|(per_call, _)| (per_round / per_call).max(1))
        .collect();
    for ((_, f), n) in cases.iter_mut().zip(&calls) {
        for _ in 0..(n / 4).max(1) {
            f();
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (per_call, f)) in cases.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..calls[i] {
                f();
            }
            times[i].push(t.elapsed() / (calls[i] * *per_call) as u32);
        }
    }
    times.into_iter().map(median).collect()
}

/// `d` in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}
