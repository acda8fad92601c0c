//! Plugin costs (issue 8, point 5), for each shipped plugin:
//!
//! - compile: `Runtime::load` of the `.wasm` on a fresh runtime, no cache;
//! - load from the on-disk cache of compiled components (`cacheDir`);
//! - instantiate: `PluginInstance::new`, i.e. instantiate from the
//!   `InstancePre` and run `init` with the config;
//! - one call: `handle` on one MODIFIED event of a ~6.6 KB pod (old and new
//!   already parsed), against the same plugin crate run natively on the SDK's
//!   in-memory event in the same run.
//!
//! Hot-swap time is measured end to end with the real binary in
//! `benches/pipeline.rs`.
//!
//! Run: `scripts/build-plugins && cargo bench -p herald --bench plugins`

mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{median, micros, per_event};
use herald::change::ChangeType;
use herald::plugin::{EventData, OnError, PluginInstance, PluginSettings, Runtime, RuntimeConfig};
use herald_plugin_sdk::{Plugin, TestEvent, Verdict, testing};
use serde_json::{Value, json};

const COMPILES: usize = 5;
const INSTANTIATES: usize = 300;
const CALLS: usize = 3_000;

fn wasm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/plugin")
}

/// A native plugin as a boxed call on an in-memory event.
fn native(name: &str, config: &Value) -> Box<dyn FnMut(&mut TestEvent) -> Verdict> {
    fn boxed<P: Plugin + 'static>(config: &Value) -> Box<dyn FnMut(&mut TestEvent) -> Verdict> {
        let mut p: P = testing::init(&config.to_string()).unwrap_or_else(|e| panic!("{e}"));
        Box::new(move |e| testing::run(&mut p, e))
    }
    match name {
        "filter" => boxed::<filter::Filter>(config),
        "noise" => boxed::<noise::Noise>(config),
        "prune" => boxed::<prune::Prune>(config),
        "diff" => boxed::<diff::Diff>(config),
        "route" => boxed::<route::Route>(config),
        other => panic!("no native {other}"),
    }
}

struct Row {
    name: &'static str,
    size: usize,
    compile: Duration,
    cached: Duration,
    instantiate: Duration,
    call: Duration,
    native: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("plugins bench: run with `cargo bench -p herald --bench plugins`");
        return;
    }
    let old = herald_sim::fixtures::pod("shop", "web-1", &[("app", "web"), ("tier", "frontend")]);
    let mut new = old.clone();
    new["metadata"]["labels"]["version"] = json!("2");
    new["metadata"]["resourceVersion"] = json!("99");
    new["status"]["phase"] = json!("Running");
    let cache = tempfile::tempdir().expect("tempdir");

    // Cloning old + new, which both sides do per call; subtracted below.
    let clone_t = per_event(CALLS, 1, || {
        black_box((black_box(&old).clone(), black_box(&new).clone()));
    });

    let mut rows = Vec::new();
    for (name, config) in common::shipped_configs() {
        let path = wasm_dir().join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (run scripts/build-plugins first)", path.display())
        });
        let compile = median(
            (0..COMPILES)
                .map(|_| {
                    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
                    let t = Instant::now();
                    black_box(rt.load(name, &path, &[]).expect("load"));
                    t.elapsed()
                })
                .collect(),
        );
        let cached_cfg = RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        Runtime::new(cached_cfg.clone())
            .expect("runtime")
            .load(name, &path, &[])
            .expect("fill the cache");
        let cached = median(
            (0..COMPILES)
                .map(|_| {
                    let rt = Runtime::new(cached_cfg.clone()).expect("runtime");
                    let t = Instant::now();
                    black_box(rt.load(name, &path, &[]).expect("load"));
                    t.elapsed()
                })
                .collect(),
        );
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let plugin = rt.load(name, &path, &[]).expect("load");
        let settings = PluginSettings {
            config: config.to_string(),
            on_error: OnError::Drop,
            ..PluginSettings::default()
        };
        let instantiate = median(
            (0..INSTANTIATES)
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
        let mut nat = native(name, &config);
        // Both sides must agree before they are timed.
        let out = inst.handle(vec![EventData::new(
            ChangeType::Modified,
            new.clone(),
            Some(old.clone()),
        )]);
        let mut ev = TestEvent::modified(old.clone(), new.clone());
        let v = nat(&mut ev);
        assert_eq!(
            out.events[0].object, ev.object,
            "{name}: wasm and native disagree"
        );
        assert_eq!(
            out.verdicts.as_ref().expect("verdict")[0],
            match v {
                Verdict::Pass => herald::plugin::Verdict::Pass,
                Verdict::Drop(r) => herald::plugin::Verdict::Drop(r),
                Verdict::Route(s) => herald::plugin::Verdict::Route(s),
            },
            "{name}: verdicts disagree"
        );
        let call = per_event(CALLS, 1, || {
            let ev = EventData::new(ChangeType::Modified, new.clone(), Some(old.clone()));
            black_box(inst.handle(vec![ev]));
        });
        let native_t = per_event(CALLS, 1, || {
            let mut ev = TestEvent::modified(old.clone(), new.clone());
            black_box(nat(&mut ev));
            black_box(ev);
        });
        rows.push(Row {
            name,
            size: bytes.len(),
            compile,
            cached,
            instantiate,
            call: call.saturating_sub(clone_t),
            native: native_t.saturating_sub(clone_t),
        });
    }

    println!(
        "## Plugin costs: MODIFIED event of a {} byte pod, parsed; clone of old + new ({:.2} µs) subtracted",
        serde_json::to_vec(&new).expect("json").len(),
        micros(clone_t)
    );
    println!();
    println!(
        "| plugin | .wasm KB | compile ms | load from cache ms | instantiate + init µs | call µs | native µs | call vs native | sandbox µs per call |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2}x | {:.2} |",
            r.name,
            r.size as f64 / 1024.0,
            r.compile.as_secs_f64() * 1e3,
            r.cached.as_secs_f64() * 1e3,
            micros(r.instantiate),
            micros(r.call),
            micros(r.native),
            micros(r.call) / micros(r.native).max(0.001),
            micros(r.call) - micros(r.native),
        );
    }
    json_costs(&new);
    for r in &rows {
        println!(
            "SUMMARY|plugin {}: one call, µs (instantiate {:.0} µs, compile {:.0} ms, cached load {:.1} ms)|{:.2}|native {:.2}|{:.2}x|none|–",
            r.name,
            micros(r.instantiate),
            r.compile.as_secs_f64() * 1e3,
            r.cached.as_secs_f64() * 1e3,
            micros(r.call),
            micros(r.native),
            micros(r.call) / micros(r.native).max(0.001),
        );
    }
}

/// The fields the pipeline itself needs from an object (routing, ids,
/// ordering), read without building a tree: strings borrowed from the input.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read to be parsed
struct Ident<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read to be parsed
struct Meta<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uid: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    resource_version: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    labels: std::collections::BTreeMap<std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>>,
}

/// What the pipeline does with JSON per event besides the plugins: the
/// source parses the stored bytes of the new and the old object into
/// `Value` trees; the batch sink builds the envelope (a clone of the object)
/// and serialises it; the trees are freed.
fn json_costs(obj: &Value) {
    let bytes = serde_json::to_vec(obj).expect("json");
    let n = |f: &mut dyn FnMut()| micros(per_event(CALLS, 1, f));
    let parse = n(&mut || {
        black_box(serde_json::from_slice::<Value>(black_box(&bytes)).expect("parse"));
    });
    let typed = n(&mut || {
        black_box(serde_json::from_slice::<Ident>(black_box(&bytes)).expect("parse"));
    });
    let skip = n(&mut || {
        black_box(
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&bytes)).expect("parse"),
        );
    });
    let clone = n(&mut || {
        black_box(black_box(obj).clone());
    });
    let ser = n(&mut || {
        black_box(serde_json::to_vec(black_box(obj)).expect("json"));
    });
    let notification = herald::sink::Notification {
        cluster: "bench".into(),
        change: ChangeType::Modified,
        gvk: herald::change::Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        },
        watch: "pod.v1.core".into(),
        namespace: Some("shop".into()),
        name: "web-1".into(),
        uid: "u".into(),
        resource_version: "99".into(),
        time: std::time::SystemTime::now(),
        routes: vec![],
        object: obj.clone().into(),
        old: None,
        dead_letter: None,
        receipt: None,
        durable: None,
        trace: 0,
    };
    let envelope = n(&mut || {
        let e = notification.envelope(
            "out",
            &serde_json::Map::new(),
            herald::sink::config::OldState::None,
        );
        black_box(serde_json::to_vec(&e).expect("json"));
    });
    println!();
    println!(
        "## JSON work per event outside the plugins ({} byte pod)",
        bytes.len()
    );
    println!();
    println!("| step | µs | vs parse to Value |");
    println!("| --- | ---: | ---: |");
    for (what, us) in [
        (
            "parse to `Value` (the source does it twice: new and old)",
            parse,
        ),
        (
            "typed borrowed parse of name, namespace, uid, resourceVersion, labels",
            typed,
        ),
        ("validate only (`IgnoredAny`): the floor of any parse", skip),
        ("clone a `Value` (the envelope clones the object)", clone),
        ("serialise a `Value`", ser),
        ("batch item: `envelope` + serialise", envelope),
    ] {
        println!("| {what} | {us:.2} | {:.2}x |", us / parse);
    }
    println!(
        "SUMMARY|JSON per event: parse 6.5 KB to Value, µs (typed borrowed parse {typed:.1}, envelope + serialise {envelope:.1})|{parse:.2}|typed borrowed {typed:.2}|{:.2}x|none|–",
        typed / parse
    );
}
