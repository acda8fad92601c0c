//! label-filter in Rust, JavaScript and Python (issue 15): the same plugin,
//! the same config, the same event, measured in the same run.
//!
//! - size of the `.wasm`;
//! - compile: `Runtime::load` on a fresh runtime, no cache;
//! - load from the on-disk cache of compiled components (`cacheDir`);
//! - instantiate + init: `PluginInstance::new` with the config;
//! - one call: `handle` on one MODIFIED event of a ~6.6 KB pod that the
//!   filter passes (it reads two labels), and per event in a batch of 64.
//!
//! Ratios are against the Rust plugin in the same run.
//!
//! Run: `scripts/build-plugins && scripts/build-plugin-examples &&
//! cargo bench -p herald --bench languages`

mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{median, micros, per_event};
use herald::change::ChangeType;
use herald::plugin::{EventData, OnError, PluginInstance, PluginSettings, Runtime, RuntimeConfig};
use serde_json::json;

const BATCH: usize = 64;

struct Row {
    name: &'static str,
    size: usize,
    compile: Duration,
    cached: Duration,
    instantiate: Duration,
    call: Duration,
    batched: Duration,
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("languages bench: run with `cargo bench -p herald --bench languages`");
        return;
    }
    let old = herald_sim::fixtures::pod("shop", "web-1", &[("app", "web"), ("tier", "frontend")]);
    let mut new = old.clone();
    new["metadata"]["labels"]["version"] = json!("2");
    new["metadata"]["resourceVersion"] = json!("99");
    let config = json!({"labels": {"app": "web", "tier": "frontend"}}).to_string();
    let cache = tempfile::tempdir().expect("tempdir");
    let event = || EventData::new(ChangeType::Modified, new.clone(), Some(old.clone()));
    // Building the event (two clones), which every call does; subtracted.
    let event_t = per_event(2_000, 1, || {
        black_box(event());
    });

    let plugins: [(&str, PathBuf, usize); 3] = [
        (
            "rust (plugins/label-filter)",
            target().join("wasm32-wasip2/plugin/label_filter.wasm"),
            3_000,
        ),
        (
            "javascript (label-filter-js)",
            target().join("plugin-examples/label-filter-js.wasm"),
            1_000,
        ),
        (
            "python (label-filter-py)",
            target().join("plugin-examples/label-filter-py.wasm"),
            1_000,
        ),
    ];
    let mut rows = Vec::new();
    for (name, path, calls) in plugins {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/build-plugins and scripts/build-plugin-examples first)",
                path.display()
            )
        });
        let load = |rt: &Runtime| {
            let t = Instant::now();
            black_box(rt.load("label-filter", &path, &[]).expect("load"));
            t.elapsed()
        };
        // Compiling a language runtime takes seconds: one round, whose
        // result the instances below use.
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let t = Instant::now();
        let plugin = rt.load("label-filter", &path, &[]).expect("load");
        let compile = t.elapsed();
        let cached_cfg = RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        load(&Runtime::new(cached_cfg.clone()).expect("runtime"));
        let cached = median(
            (0..5)
                .map(|_| load(&Runtime::new(cached_cfg.clone()).expect("runtime")))
                .collect(),
        );
        let settings = PluginSettings {
            config: config.clone(),
            on_error: OnError::Drop,
            ..PluginSettings::default()
        };
        let instantiate = median(
            (0..50)
                .map(|_| {
                    let t = Instant::now();
                    let i =
                        PluginInstance::new(plugin.clone(), settings.clone()).expect("instance");
                    let d = t.elapsed();
                    drop(i);
                    d
                })
                .collect(),
        );
        let mut inst = PluginInstance::new(plugin.clone(), settings.clone()).expect("instance");
        // Every language must pass the event before it is timed, and drop
        // one that lacks a label with the same reason.
        let out = inst.handle(vec![event()]);
        assert_eq!(
            out.verdicts.as_ref().expect("verdict"),
            &vec![herald::plugin::Verdict::Pass],
            "{name}"
        );
        let mut other = new.clone();
        other["metadata"]["labels"]["tier"] = json!("backend");
        let out = inst.handle(vec![EventData::new(ChangeType::Added, other, None)]);
        assert_eq!(
            out.verdicts.as_ref().expect("verdict"),
            &vec![herald::plugin::Verdict::Drop(
                "label tier=backend, want frontend".into()
            )],
            "{name}"
        );
        let call = per_event(calls, 1, || {
            black_box(inst.handle(vec![event()]));
        });
        let batched = per_event(calls * 4, BATCH, || {
            black_box(inst.handle((0..BATCH).map(|_| event()).collect()));
        });
        rows.push(Row {
            name,
            size: bytes.len(),
            compile,
            cached,
            instantiate,
            call: call.saturating_sub(event_t),
            batched: batched.saturating_sub(event_t),
        });
    }

    println!(
        "## label-filter in three languages: MODIFIED event of a {} byte pod; building the event ({:.2} µs) subtracted",
        serde_json::to_vec(&new).expect("json").len(),
        micros(event_t)
    );
    println!();
    println!(
        "| plugin | .wasm KB | compile ms | load from cache ms | instantiate + init µs | one call µs | per event, batch of {BATCH}, µs | call vs Rust |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let rust_call = micros(rows[0].call).max(0.001);
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.0} | {:.2} | {:.2} | {:.1}x |",
            r.name,
            r.size as f64 / 1024.0,
            r.compile.as_secs_f64() * 1e3,
            r.cached.as_secs_f64() * 1e3,
            micros(r.instantiate),
            micros(r.call),
            micros(r.batched),
            micros(r.call) / rust_call,
        );
    }
    for r in &rows[1..] {
        println!(
            "SUMMARY|label-filter in {}: one call, µs (.wasm {:.1} MB, compile {:.1} s, instantiate {:.0} µs)|{:.2}|rust {:.2}|{:.1}x|none|–",
            r.name,
            r.size as f64 / 1048576.0,
            r.compile.as_secs_f64(),
            micros(r.instantiate),
            micros(r.call),
            rust_call,
            micros(r.call) / rust_call,
        );
    }
}
