//! Emit dedup (issue 4), each figure against a baseline measured in the same run:
//!
//! 1. Cost per event of the dedup stage on the ~6.6 KB fixture pod, as a ratio to
//!    `serde_json::from_slice` of the same pod's bytes (the parse every event
//!    already pays): the hash alone, `observe` on an unchanged state (the resync
//!    and relist path), on a changed state (emit), and on a new uid each time
//!    (insert). For comparison: serialise-then-hash with XXH3 and with SHA-256.
//!    And hashing from the pod's bytes: `Dedup::hash_json` (one streaming pass,
//!    no `Value`) against `from_slice` + `Dedup::hash`, the path it replaces;
//!    and `hash_json` of a pod shaped like a real one (`fixtures::wide_pod`:
//!    four containers, four managers' `managedFields`, which dedup leaves out);
//!    both also in a real API server's key order (`herald_sim::order`), which
//!    the hash sorts, where serde's sorted keys need no sorting.
//! 2. Memory of the cache holding 100k uids: in a child process (this binary
//!    re-run with `--child`), VmHWM after filling minus VmRSS before; baseline: a
//!    `HashMap<String, u128>` of the same uids in another child.
//!
//! Run: `cargo bench -p herald --bench dedup`

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::process::Command;

use common::proc::memory;
use common::{micros, per_event};
use herald::change::ChangeType;
use herald::dedup::{Dedup, DedupSettings, ObjectHash};
use herald_sim::fixtures;
use serde_json::{Value, json};
use sha2::Digest;

/// Uids in the memory figure.
const OBJECTS: usize = 100_000;
/// Events per timing round.
const PER_ROUND: usize = 20_000;

fn pod(i: usize, rv: u64) -> Value {
    let mut p = fixtures::pod("ns", &format!("pod-{i:05}"), &[("app", "web")]);
    p["metadata"]["uid"] = json!(uid(i));
    p["metadata"]["resourceVersion"] = json!(rv.to_string());
    p["metadata"]["creationTimestamp"] = json!("2024-05-01T10:00:00Z");
    p["metadata"]["generation"] = json!(1);
    p
}

/// A uid shaped like Kubernetes' (36 characters).
fn uid(i: usize) -> String {
    format!("5f0c6e4e-2a4b-4f43-9d4e-{i:012}")
}

/// Child: fills one structure with `n` uids, prints the bytes it took.
fn child(kind: &str, n: usize) {
    let uids: Vec<String> = (0..n).map(uid).collect();
    let hashes: Vec<ObjectHash> = (0..n)
        .map(|i| ObjectHash::from_u128(i as u128 * 7919))
        .collect();
    let (_, before) = memory();
    match kind {
        "dedup" => {
            let d = Dedup::new(&DedupSettings::default()).expect("settings");
            for (u, h) in uids.iter().zip(&hashes) {
                black_box(d.observe_hash(u, ChangeType::Added, *h));
            }
            assert_eq!(d.len(), n as u64);
            let (hwm, _) = memory();
            println!("{}", hwm - before);
            black_box(&d);
        }
        "hashmap" => {
            let mut m: HashMap<String, u128> = HashMap::new();
            for (u, h) in uids.iter().zip(&hashes) {
                m.insert(u.clone(), h.to_u128());
            }
            let (hwm, _) = memory();
            println!("{}", hwm - before);
            black_box(&m);
        }
        other => panic!("unknown child {other}"),
    }
}

fn run_child(kind: &str) -> u64 {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--child", kind, &OBJECTS.to_string()])
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("child report")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], args[i + 2].parse().expect("count"));
        return;
    }
    // Under `cargo test --benches` (no `--bench`), only check that it starts.
    if !args.iter().any(|a| a == "--bench") {
        println!("dedup bench: run with `cargo bench -p herald --bench dedup`");
        return;
    }

    let a = pod(0, 1);
    let bytes = serde_json::to_vec(&a).expect("json");
    // The changed state: a label and the status moved, and the resourceVersion.
    let mut b = pod(0, 2);
    b["metadata"]["labels"]["app"] = json!("web-2");
    b["status"]["phase"] = json!("Succeeded");
    let dedup = Dedup::new(&DedupSettings::default()).expect("settings");
    assert_ne!(dedup.hash(&a), dedup.hash(&b));
    assert_eq!(
        dedup.hash(&a),
        dedup.hash(&pod(0, 99)),
        "resourceVersion left out"
    );
    assert_eq!(dedup.hash_json(&bytes).expect("json"), dedup.hash(&a));

    println!(
        "# dedup bench: {} byte pod, {PER_ROUND} events per round",
        bytes.len()
    );
    let parse = per_event(PER_ROUND, 1, || {
        black_box(serde_json::from_slice::<Value>(black_box(&bytes)).expect("json"));
    });
    let hash = per_event(PER_ROUND, 1, || {
        black_box(dedup.hash(black_box(&a)));
    });
    let parse_hash = per_event(PER_ROUND, 1, || {
        let v = serde_json::from_slice::<Value>(black_box(&bytes)).expect("json");
        black_box(dedup.hash(&v));
    });
    let hash_json = per_event(PER_ROUND, 1, || {
        black_box(dedup.hash_json(black_box(&bytes)).expect("json"));
    });
    let wide = fixtures::wide_pod("ns", "web-1", &[]);
    let wide_bytes = serde_json::to_vec(&wide).expect("json");
    assert_eq!(
        dedup.hash_json(&wide_bytes).expect("json"),
        dedup.hash(&wide)
    );
    let wide_json = per_event(PER_ROUND, 1, || {
        black_box(dedup.hash_json(black_box(&wide_bytes)).expect("json"));
    });
    // The same two pods as a real API server writes them: `metadata`'s
    // members in ObjectMeta's order, which the hash must sort.
    let (served, wide_served) = (
        herald_sim::order::server_json(&a),
        herald_sim::order::server_json(&wide),
    );
    assert_ne!(served, bytes);
    assert_eq!(dedup.hash_json(&served).expect("json"), dedup.hash(&a));
    assert_eq!(
        dedup.hash_json(&wide_served).expect("json"),
        dedup.hash(&wide)
    );
    let served_json = per_event(PER_ROUND, 1, || {
        black_box(dedup.hash_json(black_box(&served)).expect("json"));
    });
    let wide_served_json = per_event(PER_ROUND, 1, || {
        black_box(dedup.hash_json(black_box(&wide_served)).expect("json"));
    });
    let _ = dedup.observe("u", ChangeType::Added, &a);
    let dup = per_event(PER_ROUND, 1, || {
        assert!(
            !dedup
                .observe("u", ChangeType::Modified, black_box(&a))
                .is_emit()
        );
    });
    let mut flip = false;
    let emit = per_event(PER_ROUND, 1, || {
        flip = !flip;
        let obj = if flip { &b } else { &a };
        assert!(
            dedup
                .observe("u", ChangeType::Modified, black_box(obj))
                .is_emit()
        );
    });
    let fresh = Dedup::new(&DedupSettings::default()).expect("settings");
    let uids: Vec<String> = (0..PER_ROUND * 3).map(|i| uid(i + 1)).collect();
    let mut next = 0;
    let insert = per_event(PER_ROUND / 4, 1, || {
        let u = &uids[next % uids.len()];
        next += 1;
        black_box(fresh.observe(u, ChangeType::Added, black_box(&a)));
    });
    let xxh3_ser = per_event(PER_ROUND, 1, || {
        let v = serde_json::to_vec(black_box(&a)).expect("json");
        black_box(xxhash_rust::xxh3::xxh3_128(&v));
    });
    let sha_ser = per_event(PER_ROUND, 1, || {
        let v = serde_json::to_vec(black_box(&a)).expect("json");
        black_box(sha2::Sha256::digest(&v));
    });

    println!();
    println!("| case (per event) | µs | vs parse |");
    println!("| --- | ---: | ---: |");
    let row = |name: &str, d: std::time::Duration| {
        println!(
            "| {name} | {:.2} | {:.2}x |",
            micros(d),
            micros(d) / micros(parse)
        );
    };
    row("baseline: `serde_json::from_slice` of the pod", parse);
    row("`Dedup::hash` (walk + XXH3-128)", hash);
    row("from bytes: `from_slice` + `Dedup::hash`", parse_hash);
    row("from bytes: `Dedup::hash_json` (no `Value`)", hash_json);
    println!(
        "| the same of a {} byte pod with 4 containers and 4 managers' `managedFields` | {:.2} | |",
        wide_bytes.len(),
        micros(wide_json)
    );
    row(
        "`Dedup::hash_json` of the pod in a real server's key order",
        served_json,
    );
    println!(
        "| the same of the wide pod in a real server's key order | {:.2} | |",
        micros(wide_served_json)
    );
    row("`observe`, unchanged state (resync / relist): dropped", dup);
    row("`observe`, changed state: emitted", emit);
    row("`observe`, new uid (insert)", insert);
    row("for comparison: `to_vec` + XXH3-128", xxh3_ser);
    row("for comparison: `to_vec` + SHA-256", sha_ser);

    let cache = run_child("dedup");
    let map = run_child("hashmap");
    let pod_json = bytes.len() as u64 * OBJECTS as u64;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!();
    println!(
        "| {OBJECTS} uids | peak RSS MiB | bytes per uid | vs HashMap | vs JSON of the pods |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| baseline: `HashMap<String, u128>` | {:.1} | {} | 1.00x | {:.3}x |",
        mib(map),
        map / OBJECTS as u64,
        map as f64 / pod_json as f64
    );
    println!(
        "| `Dedup` (moka, default settings) | {:.1} | {} | {:.2}x | {:.3}x |",
        mib(cache),
        cache / OBJECTS as u64,
        cache as f64 / map as f64,
        cache as f64 / pod_json as f64
    );
}
