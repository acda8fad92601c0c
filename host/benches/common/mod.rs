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
    let calls = (per_round / per_call).max(1);
    for _ in 0..(calls / 4).max(1) {
        f();
    }
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..calls {
                    f();
                }
                t.elapsed() / (calls * per_call) as u32
            })
            .collect(),
    )
}

/// `d` in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}
