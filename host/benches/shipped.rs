//! Cost per event of the shipped chain filter → noise → prune → diff → route
//! on a ~6.6 KB pod (a MODIFIED event: a label and the status changed), as a
//! ratio to the same five plugins compiled natively and run on in-memory
//! events in the same run. Both sides start from the JSON bytes of the old
//! and the new object, so parsing is included on both sides.
//!
//! Run: `scripts/build-plugins && cargo bench -p herald --bench shipped`

use std::hint::black_box;
use std::time::Duration;

use herald::change::ChangeType;
use herald::plugin::{
    Chain, EventData, Fate, OnError, PluginInstance, PluginSettings, Runtime, RuntimeConfig,
};
use herald_plugin_sdk::{Plugin, TestEvent, Verdict, testing};
use serde_json::{Value, json};

mod common;

use common::{micros, per_event};

const PER_ROUND: usize = 2_000;

/// Median time per event, one event per call.
fn measure(f: impl FnMut()) -> Duration {
    per_event(PER_ROUND, 1, f)
}

/// The same five plugins, natively: the SDK's in-memory event, no sandbox.
struct Native {
    filter: filter::Filter,
    noise: noise::Noise,
    prune: prune::Prune,
    diff: diff::Diff,
    route: route::Route,
}

fn init<P: Plugin>(config: &Value) -> P {
    testing::init::<P>(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

impl Native {
    fn new() -> Self {
        let c = common::shipped_configs();
        Native {
            filter: init(&c[0].1),
            noise: init(&c[1].1),
            prune: init(&c[2].1),
            diff: init(&c[3].1),
            route: init(&c[4].1),
        }
    }

    fn run(&mut self, old: &[u8], new: &[u8]) -> (TestEvent, Vec<Verdict>) {
        let old: Value = serde_json::from_slice(old).expect("old");
        let new: Value = serde_json::from_slice(new).expect("new");
        let mut ev = TestEvent::modified(old, new);
        let mut verdicts = Vec::new();
        for step in 0..5 {
            let e = &mut ev;
            let v = match step {
                0 => testing::run(&mut self.filter, e),
                1 => testing::run(&mut self.noise, e),
                2 => testing::run(&mut self.prune, e),
                3 => testing::run(&mut self.diff, e),
                _ => testing::run(&mut self.route, e),
            };
            let stop = matches!(v, Verdict::Drop(_));
            verdicts.push(v);
            if stop {
                break;
            }
        }
        (ev, verdicts)
    }
}

fn main() {
    let old = herald_sim::fixtures::pod("shop", "web-1", &[("app", "web"), ("tier", "frontend")]);
    let mut new = old.clone();
    new["metadata"]["labels"]["version"] = json!("2");
    new["metadata"]["resourceVersion"] = json!("99");
    new["status"]["phase"] = json!("Running");
    let old_b = serde_json::to_vec(&old).expect("old");
    let new_b = serde_json::to_vec(&new).expect("new");

    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/plugin");
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let instances = common::shipped_configs()
        .into_iter()
        .map(|(name, config)| {
            let plugin = rt
                .load(name, &dir.join(format!("{name}.wasm")), &[])
                .unwrap_or_else(|e| panic!("{e} (run scripts/build-plugins first)"));
            PluginInstance::new(
                plugin,
                PluginSettings {
                    config: config.to_string(),
                    on_error: OnError::Drop,
                    ..PluginSettings::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut chain = Chain::new(instances);
    let mut native = Native::new();
    let parse = |b: &[u8]| -> Value { serde_json::from_slice(b).expect("json") };
    let wasm_event =
        |o: &[u8], n: &[u8]| EventData::new(ChangeType::Modified, parse(n), Some(parse(o)));

    // Both sides must agree before they are timed.
    let out = chain.run(vec![wasm_event(&old_b, &new_b)]).remove(0);
    let (nev, nverdicts) = native.run(&old_b, &new_b);
    assert_eq!(
        out.event.object, nev.object,
        "wasm and native chains disagree"
    );
    assert_eq!(
        out.fate,
        Fate::Deliver {
            routes: vec!["web-hook".into()]
        }
    );
    assert_eq!(nverdicts.last(), Some(&Verdict::route(["web-hook"])));
    assert!(
        out.event.object.get("heraldDiff").is_some(),
        "diff attached"
    );

    let parse_t = measure(|| {
        black_box(parse(black_box(&old_b)));
        black_box(parse(black_box(&new_b)));
    });
    let native_t = measure(|| {
        black_box(native.run(black_box(&old_b), black_box(&new_b)));
    });
    let wasm_t = measure(|| {
        black_box(chain.run(vec![wasm_event(black_box(&old_b), black_box(&new_b))]));
    });
    let us = micros;
    println!(
        "chain: filter -> noise -> prune -> diff -> route, MODIFIED event, {} byte pod",
        new_b.len()
    );
    println!("{:<46} {:>10} {:>11}", "case", "µs/event", "vs native");
    println!(
        "{:<46} {:>10.2} {:>11}",
        "JSON parse of old + new alone",
        us(parse_t),
        "-"
    );
    println!(
        "{:<46} {:>10.2} {:>10.2}x",
        "native Rust (same plugin code, in-memory)",
        us(native_t),
        1.0
    );
    println!(
        "{:<46} {:>10.2} {:>10.2}x",
        "wasm chain in the host",
        us(wasm_t),
        us(wasm_t) / us(native_t)
    );
    println!(
        "SUMMARY|shipped chain (filter, noise, prune, diff, route), µs/event|{:.2}|native {:.2}|{:.2}x|none|–",
        us(wasm_t),
        us(native_t),
        us(wasm_t) / us(native_t)
    );
}
