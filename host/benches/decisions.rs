//! The decisions ring (issue 18): memory per 10k decisions, measured by a
//! counting allocator and set beside what the ring counts (`weight`, which
//! `decisions.maxBytes` bounds), and the time to keep one, against the
//! baseline of building the same decision and dropping it, in the same run.
//!
//! Run: `cargo bench -p herald --bench decisions`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Instant, SystemTime};

use herald::change::{ChangeType, Gvk};
use herald::decisions::{Decision, Decisions, Filter, SinkDelivery};
use herald::plugin::PluginStep;
use herald::sink::{DeliveryEvent, DeliveryLog};

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const N: usize = 10_000;

/// A decision as a two-plugin chain delivering to one webhook makes it.
fn decision(i: usize) -> Decision {
    let gvk = Gvk {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
    };
    let mut d = Decision::new(
        "deployment.v1.apps",
        ChangeType::Modified,
        &gvk,
        Some("payments"),
        &format!("checkout-{i:05}"),
        &format!("6c1f0a2e-8d4b-4f7a-9e3c-{i:012}"),
        &format!("{}", 4_000_000 + i),
        SystemTime::now(),
    );
    d.plugins = vec![
        PluginStep {
            plugin: "drop-status-only".into(),
            verdict: "pass",
            reason: String::new(),
            micros: 3,
            removed: vec![],
            set: vec![],
        },
        PluginStep {
            plugin: "prune-noise".into(),
            verdict: "pass",
            reason: String::new(),
            micros: 5,
            removed: vec!["/metadata/managedFields".into(), "/status".into()],
            set: vec![],
        },
    ];
    d.routing = Some("the watch's sinks");
    d.reason = "to payments-hook".into();
    d.sinks = vec![SinkDelivery {
        sink: "payments-hook".into(),
        state: "queued",
        attempts: 0,
        error: None,
        dead_letter: None,
    }];
    d
}

fn main() {
    // Memory: 10k decisions kept, then each delivered (as the lanes report).
    let ring = Decisions::new(1 << 30);
    let before = LIVE.load(Ordering::Relaxed);
    let ids: Vec<u64> = (0..N).map(|i| ring.record(decision(i))).collect();
    let ids_bytes = (ids.capacity() * 8) as isize;
    for id in &ids {
        ring.report(*id, "payments-hook", DeliveryEvent::Delivered);
    }
    let heap = LIVE.load(Ordering::Relaxed) - before - ids_bytes;
    let (kept, counted) = ring.kept();
    assert_eq!(kept, N);
    let one = decision(0).weight();

    // Time: building a decision and dropping it (the baseline), against
    // building it and keeping it in a full ring (each keep evicts one).
    let full = Decisions::new((counted as u64 / 2).max(1));
    for i in 0..N {
        full.record(decision(i));
    }
    let rounds = 200_000;
    let t = Instant::now();
    for i in 0..rounds {
        black_box(decision(i % N));
    }
    let build = t.elapsed().as_nanos() as f64 / rounds as f64;
    let t = Instant::now();
    for i in 0..rounds {
        black_box(full.record(decision(i % N)));
    }
    let keep = t.elapsed().as_nanos() as f64 / rounds as f64;
    let t = Instant::now();
    let q = Filter {
        namespace: Some("payments".into()),
        name: Some("checkout-00042".into()),
        ..Filter::default()
    };
    let queries = 200;
    for _ in 0..queries {
        black_box(full.query(&q));
    }
    let query = t.elapsed().as_micros() as f64 / queries as f64;

    println!("## Decisions ring: memory per 10k decisions, cost of keeping one");
    println!();
    println!("| what | value |");
    println!("| --- | ---: |");
    println!(
        "| heap for {N} decisions (counting allocator), delivered | {:.2} MiB ({} B each) |",
        heap as f64 / (1 << 20) as f64,
        heap / N as isize
    );
    println!(
        "| what the ring counts for them (`maxBytes` bounds this) | {:.2} MiB ({} B each) |",
        counted as f64 / (1 << 20) as f64,
        counted / N
    );
    println!("| counted / heap | {:.2} |", counted as f64 / heap as f64);
    println!("| one decision as built, counted | {one} B |");
    println!(
        "| decisions in the default 16 MiB | {} |",
        (16 << 20) / (counted / N).max(1)
    );
    println!("| build a decision and drop it (baseline) | {build:.0} ns |");
    println!(
        "| build it and keep it in a full ring (evicting one) | {keep:.0} ns ({:.2}x) |",
        keep / build
    );
    println!(
        "| a query by namespace and name over {} kept | {query:.0} µs |",
        full.kept().0
    );
}
