//! Cost per event of a 3-plugin chain (label filter → prune → label filter)
//! on a ~6.6 KB pod, as a ratio to the same filter/prune written natively in
//! Rust, measured in the same run. JSON parsing is included on both sides:
//! each event starts as bytes, as it arrives from the watch stream.
//!
//! Run: `scripts/build-plugins && cargo bench -p herald --bench chain`

use std::hint::black_box;
use std::time::Duration;

use herald::change::ChangeType;
use herald::plugin::{
    Chain, EventData, Fate, OnError, PluginInstance, PluginSettings, Runtime, RuntimeConfig,
};
use serde_json::{Value, json};

mod common;

use common::{micros, per_event, per_event_together};

const PER_ROUND: usize = 3_000;

/// Median time per event, one event per call.
fn measure(f: impl FnMut()) -> Duration {
    per_event(PER_ROUND, 1, f)
}

const PRUNE: [&str; 2] = ["/metadata/managedFields", "/status"];

/// The same chain natively: two label checks and a prune on a parsed Value.
fn native(bytes: &[u8]) -> (Value, bool) {
    let mut v: Value = serde_json::from_slice(bytes).expect("pod json");
    let label = |v: &Value, k: &str| {
        v.pointer(&format!("/metadata/labels/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if label(&v, "app").as_deref() != Some("web") {
        return (v, false);
    }
    for p in PRUNE {
        herald_plugin_sdk::pointer::remove(&mut v, p);
    }
    let pass = label(&v, "tier").as_deref() == Some("frontend");
    (v, pass)
}

fn wasm_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/plugin")
}

fn main() {
    let pod = herald_sim::fixtures::pod("shop", "web-1", &[("app", "web"), ("tier", "frontend")]);
    let bytes = serde_json::to_vec(&pod).expect("serialise");
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let load = |name: &str| {
        rt.load(name, &wasm_dir().join(format!("{name}.wasm")), &[])
            .unwrap_or_else(|e| panic!("{e} (run scripts/build-plugins first)"))
    };
    let inst = |name: &str, config: Value| {
        PluginInstance::new(
            load(name),
            PluginSettings {
                config: config.to_string(),
                on_error: OnError::Drop,
                ..PluginSettings::default()
            },
        )
        .expect("init")
    };
    let mut chain = Chain::new(vec![
        inst("label_filter", json!({"labels": {"app": "web"}})),
        inst("prune", json!({"remove": PRUNE})),
        inst("label_filter", json!({"labels": {"tier": "frontend"}})),
    ]);
    // The wasm chain must agree with the native one before it is timed.
    let parse = |b: &[u8]| -> Value { serde_json::from_slice(b).expect("pod json") };
    let out = chain.run(vec![EventData::new(ChangeType::Added, parse(&bytes), None)]);
    let (native_obj, native_pass) = native(&bytes);
    assert_eq!(out[0].event.object, native_obj);
    assert_eq!(matches!(out[0].fate, Fate::Deliver { .. }), native_pass);

    // The four cases' rounds interleaved: their ratios are not moved by
    // the machine slowing down during one of them.
    const BATCH: usize = 64;
    let mut parse_case = || {
        black_box(parse(black_box(&bytes)));
    };
    let mut native_case = || {
        black_box(native(black_box(&bytes)));
    };
    let mut wasm_case = || {
        let ev = EventData::new(ChangeType::Added, parse(black_box(&bytes)), None);
        black_box(chain.run(vec![ev]));
    };
    let [parse_only, native_t, wasm_1] = per_event_together(
        PER_ROUND,
        &mut [
            (1, &mut parse_case),
            (1, &mut native_case),
            (1, &mut wasm_case),
        ],
    )[..] else {
        unreachable!("three cases")
    };
    let batch_t = per_event(PER_ROUND, BATCH, || {
        let evs = (0..BATCH)
            .map(|_| EventData::new(ChangeType::Added, parse(&bytes), None))
            .collect();
        black_box(chain.run(evs));
    });
    let us = micros;
    let ratio = |d: Duration| us(d) / us(native_t);
    println!(
        "chain: label-filter -> prune -> label-filter on a {} byte pod",
        bytes.len()
    );
    println!("{:<44} {:>10} {:>12}", "case", "µs/event", "vs native");
    println!(
        "{:<44} {:>10.2} {:>12}",
        "JSON parse alone",
        us(parse_only),
        "-"
    );
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        "native Rust (parse + filter/prune/filter)",
        us(native_t),
        1.0
    );
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        "wasm chain, 1 event per call",
        us(wasm_1),
        ratio(wasm_1)
    );
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        format!("wasm chain, {BATCH} events per call"),
        us(batch_t),
        ratio(batch_t)
    );
    println!("target: wasm chain <= 1.30x native");
    pipeline_chain(&inst);
    wide_pod_chain(&inst);
    println!(
        "SUMMARY|3-plugin chain (label-filter, prune, label-filter), µs/event|{:.2}|native {:.2}|{:.2}x|≤ 1.30x|{}",
        us(wasm_1),
        us(native_t),
        ratio(wasm_1),
        if ratio(wasm_1) <= 1.30 {
            "yes"
        } else {
            "**no**"
        }
    );
}

/// `old` with a label added and a new resourceVersion, and a maker of the
/// MODIFIED event between them with both states as the cache's stored
/// bytes, keys in a real API server's order (as the pipeline gives the chain).
fn modified(old: &Value) -> (Value, impl Fn() -> EventData) {
    use herald::cache::CachedObject;
    use herald::change::Doc;
    use std::sync::Arc;
    let mut new = old.clone();
    new["metadata"]["resourceVersion"] = json!("99");
    new["metadata"]["labels"]["seq"] = json!("1");
    // As a real API server writes a pod: its keys in the struct's order.
    let stored_as = |v: &Value| {
        Arc::new(CachedObject::from_json(herald_sim::order::server_json(v)).expect("json"))
    };
    let (old_c, new_c) = (stored_as(old), stored_as(&new));
    let stored = move || {
        EventData::of_docs(
            ChangeType::Modified,
            Doc::stored(new_c.clone()),
            Some(Doc::stored(old_c.clone())),
        )
    };
    (new, stored)
}

/// The pipeline bench's chain: filter → prune → route, with its configs.
fn light_chain(inst: &dyn Fn(&str, Value) -> PluginInstance) -> Chain {
    Chain::new(vec![
        inst(
            "filter",
            json!({"ignoreNamespaces": ["kube-*"], "labelSelector": "app=seed",
                   "changes": ["added", "modified", "deleted"]}),
        ),
        inst(
            "prune",
            json!({"remove": ["/metadata/managedFields", "/spec/containers/*/env"], "secrets": true}),
        ),
        inst(
            "route",
            json!({"rules": [{"match": {"labels": "shard=3"}, "sinks": ["out"]}], "defaultSinks": ["out"]}),
        ),
    ])
}

/// The pipeline bench's chain ([`light_chain`]) on a
/// MODIFIED event, one per call, as the pipeline gives it (both states
/// the cache's stored bytes) and as parsed trees: the chain thread's own
/// cost per event, without the rest of the pipeline.
fn pipeline_chain(inst: &dyn Fn(&str, Value) -> PluginInstance) {
    let mut chain = light_chain(inst);
    let old = herald_sim::fixtures::pod("shop", "web-1", &[("app", "seed"), ("shard", "3")]);
    let (new, stored) = modified(&old);
    let trees = || EventData::new(ChangeType::Modified, new.clone(), Some(old.clone()));
    // Both forms must come out the same before they are timed.
    let (a, b) = (chain.run(vec![stored()]), chain.run(vec![trees()]));
    assert_eq!(a[0].fate, b[0].fate);
    assert_eq!(*a[0].event.object, *b[0].event.object);
    assert!(matches!(a[0].fate, Fate::Deliver { .. }));
    let bytes_t = measure(|| {
        black_box(chain.run(vec![stored()]));
    });
    let trees_t = measure(|| {
        black_box(chain.run(vec![trees()]));
    });
    println!();
    println!("pipeline chain: filter -> prune -> route, MODIFIED, one event per call");
    println!("{:<44} {:>10} {:>12}", "case", "µs/event", "vs trees");
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        "both states as stored bytes (the pipeline)",
        micros(bytes_t),
        micros(bytes_t) / micros(trees_t)
    );
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        "both states as parsed trees (cloned per event)",
        micros(trees_t),
        1.0
    );
    // A webhook's `old: patch` of the chain's outcome (prune's removals
    // made on the object, deferred on the previous state): on the bytes, as
    // a sink computes it, against parsing both and json_patch's diff.
    let fresh = chain.run(vec![stored()]);
    let out = &fresh[0].event;
    let (new_out, old_out) = (&out.object, out.old.as_ref().expect("old"));
    assert!(
        !new_out.is_parsed() && !old_out.is_parsed(),
        "the chain parses neither state"
    );
    let want = json_patch::diff(&old_out.clone().into_value(), &new_out.clone().into_value());
    assert_eq!(herald::change::diff(&old_out.clone(), new_out), want);
    assert!(!want.0.is_empty());
    let patch_bytes = measure(|| {
        let (o, n) = (old_out.clone(), new_out.clone());
        black_box(herald::change::diff(&o, &n));
    });
    let patch_trees = measure(|| {
        let (o, n) = (old_out.clone().into_value(), new_out.clone().into_value());
        black_box(json_patch::diff(&o, &n));
    });
    println!();
    println!("webhook old: patch of the chain's outcome (a label and the resourceVersion changed)");
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        "on the bytes (the sink)",
        micros(patch_bytes),
        micros(patch_bytes) / micros(patch_trees)
    );
    println!(
        "{:<44} {:>10.2} {:>11.2}x",
        "both states parsed, json_patch::diff",
        micros(patch_trees),
        1.0
    );
    // The same patch with no plugins: both states as the cache stores
    // them, nothing deferred.
    let (plain_new, plain_old) = {
        let e = stored();
        (e.object, e.old.expect("old"))
    };
    assert_eq!(
        herald::change::diff(&plain_old, &plain_new),
        json_patch::diff(&old, &new)
    );
    let patch_plain = measure(|| {
        black_box(herald::change::diff(&plain_old, &plain_new));
    });
    println!(
        "{:<44} {:>10.2}",
        "on the bytes, no plugins (as stored)",
        micros(patch_plain)
    );
}

/// The pipeline chain (as [`pipeline_chain`]) on a pod the size of a real
/// one: four containers, each with its `env`, and `managedFields` of four
/// managers, so `prune` makes five removals; both states as stored bytes.
fn wide_pod_chain(inst: &dyn Fn(&str, Value) -> PluginInstance) {
    let mut chain = light_chain(inst);
    let old = herald_sim::fixtures::wide_pod("shop", "web-1", &[("app", "seed"), ("shard", "3")]);
    let (new, stored) = modified(&old);
    let size = serde_json::to_vec(&new).expect("serialise").len();
    let out = chain.run(vec![stored()]);
    assert!(matches!(out[0].fate, Fate::Deliver { .. }));
    let pruned = out[0].event.object.clone().into_value();
    assert!(pruned["metadata"].get("managedFields").is_none());
    assert_eq!(
        pruned["spec"]["containers"].as_array().map(Vec::len),
        Some(4)
    );
    assert!(
        pruned["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .all(|c| c.get("env").is_none())
    );
    let t = measure(|| {
        black_box(chain.run(vec![stored()]));
    });
    println!();
    println!("pipeline chain on a {size} byte pod with 4 containers (5 removals)");
    println!(
        "{:<44} {:>10.2}",
        "both states as stored bytes (the pipeline)",
        micros(t)
    );
}
