//! Sources, cache and query API (issue 3), each figure against a baseline measured in
//! the same run:
//!
//! 1. Query latency over loopback HTTP with 10k pods cached (10 namespaces × 1k):
//!    herald's query API against the simulator's own LIST of the same objects.
//! 2. Start-up with 50k pods: `Sources::new` + `add(pods)` to `ready()`, against the
//!    simulator serving the same paginated list to a client that only reads the bytes
//!    (the floor).
//! 3. Memory: peak RSS of herald's store holding 10k / 50k / 100k pods against kube-rs'
//!    default reflector on `Pod` holding the same objects, and as a multiple of the
//!    JSON size of what each keeps. Each figure comes from a child process (this
//!    binary re-run with `--child`) that connects to the parent's simulator, so neither
//!    the simulator nor another measurement is in it.
//!
//! Run: `cargo bench -p herald --bench source`

mod common;

use common::median;
use common::proc::{memory, mib, status_kb};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use herald::source::{self, SourceSettings, Sources, WatchSpec};
use herald_sim::{Sim, Simulator};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{reflector, watcher};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Pods per namespace; the query benchmark uses the first 10 namespaces.
const PER_NS: usize = 1_000;
const QUERY_NAMESPACES: usize = 10;
const START_NAMESPACES: usize = 50;
/// The memory figures go up to this many namespaces of pods (100k).
const MAX_NAMESPACES: usize = 100;
/// Requests per query case (interleaved with its baseline).
const QUERY_ROUNDS: usize = 60;
/// Start-up runs (each with its floor).
const START_RUNS: usize = 3;

// === helpers ===

/// The system allocator, counting the bytes and blocks it has handed out and not got
/// back, so a child can tell what the store itself holds from what RSS shows.
struct Counting;

static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
/// The most `LIVE_BYTES` has been.
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE_BLOCKS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to `System` with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
            PEAK_BYTES.fetch_max(live + layout.size() as u64, Ordering::Relaxed);
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let live = LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
            PEAK_BYTES.fetch_max(live + new_size as u64, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live heap bytes and blocks.
fn heap() -> (u64, u64) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

fn ns(i: usize) -> String {
    format!("ns-{i:02}")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A kept-alive HTTP/1 connection.
struct Conn {
    addr: SocketAddr,
    send: SendRequest<Empty<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Self { addr, send }
    }

    /// GET `path`; the whole body, read to its last byte.
    async fn get(&mut self, path: &str) -> Bytes {
        let req = hyper::Request::builder()
            .uri(path)
            .header("host", self.addr.to_string())
            .header("accept", "application/json")
            .body(Empty::new())
            .expect("request");
        self.send.ready().await.expect("connection ready");
        let resp = self.send.send_request(req).await.expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(
            status.is_success(),
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        body
    }
}

fn item_count(body: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(body).expect("list json")["items"]
        .as_array()
        .expect("items")
        .len()
}

/// Sources with one pods watch, ready.
async fn herald_ready(kubeconfig: &Path) -> (Sources, mpsc::Receiver<herald::change::ChangeEvent>) {
    let client = source::client(Some(kubeconfig)).await.expect("client");
    let (tx, rx) = mpsc::channel(1024);
    let sources = Sources::new(client, SourceSettings::default(), tx);
    sources
        .add(WatchSpec::new("", "v1", "Pod"))
        .await
        .expect("add pods");
    while !sources.ready() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (sources, rx)
}

async fn seed(sim: &Sim, namespaces: std::ops::Range<usize>) -> Duration {
    let t = Instant::now();
    for i in namespaces {
        sim.create("namespaces", json!({"metadata": {"name": ns(i)}}))
            .await
            .expect("namespace");
        sim.seed_pods(&ns(i), PER_NS).await.expect("seed");
    }
    t.elapsed()
}

// === 1. query latency ===

struct Latency {
    case: String,
    items: usize,
    herald: (Duration, Duration),
    sim: (Duration, Duration),
}

async fn query_latency(sim: &Sim, kubeconfig: &Path) -> Vec<Latency> {
    let (sources, _rx) = herald_ready(kubeconfig).await;
    let cached = sources.cache().find("", "v1", "pods")[0].len();
    assert_eq!(cached, QUERY_NAMESPACES * PER_NS);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(herald::api::serve(
        listener,
        herald::api::query_router(sources.cache(), usize::MAX),
        async {
            let _ = stopped.await;
        },
    ));
    let mut herald_conn = Conn::open(addr).await;
    let mut sim_conn = Conn::open(sim.addr()).await;

    let q = "/api/v1/resources/core/v1/pods";
    let shard = urlencode("shard=3");
    let cases = [
        (
            "one namespace (1k of 10k)".to_string(),
            format!("{q}?namespace={}", ns(3)),
            format!("/api/v1/namespaces/{}/pods", ns(3)),
        ),
        (
            "labelSelector shard=3, all namespaces (1k of 10k)".to_string(),
            format!("{q}?labelSelector={shard}"),
            format!("/api/v1/pods?labelSelector={shard}"),
        ),
        (
            "one namespace + labelSelector shard=3 (100 of 10k)".to_string(),
            format!("{q}?namespace={}&labelSelector={shard}", ns(3)),
            format!("/api/v1/namespaces/{}/pods?labelSelector={shard}", ns(3)),
        ),
    ];
    let mut out = Vec::new();
    for (case, herald_path, sim_path) in cases {
        // Same answer on both sides, and warm-up.
        let items = item_count(&herald_conn.get(&herald_path).await);
        assert_eq!(items, item_count(&sim_conn.get(&sim_path).await), "{case}");
        for _ in 0..5 {
            herald_conn.get(&herald_path).await;
            sim_conn.get(&sim_path).await;
        }
        let (mut h, mut s) = (Vec::new(), Vec::new());
        for _ in 0..QUERY_ROUNDS {
            let t = Instant::now();
            std::hint::black_box(herald_conn.get(&herald_path).await);
            h.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(sim_conn.get(&sim_path).await);
            s.push(t.elapsed());
        }
        h.sort();
        s.sort();
        out.push(Latency {
            case,
            items,
            herald: (percentile(&h, 0.5), percentile(&h, 0.99)),
            sim: (percentile(&s, 0.5), percentile(&s, 0.99)),
        });
    }
    let _ = stop.send(());
    let _ = server.await;
    out
}

// === 2. start-up ===

/// The simulator serving every pod as pages of 500 (kube's page size) to a client
/// that reads the bytes and the continue token only. Returns the time and the items.
async fn floor_list(sim: &Sim) -> (Duration, usize) {
    let t = Instant::now();
    let mut conn = Conn::open(sim.addr()).await;
    let mut path = "/api/v1/pods?limit=500".to_string();
    let (mut pages, mut bytes) = (0, 0);
    loop {
        let body = conn.get(&path).await;
        pages += 1;
        bytes += body.len();
        // The list metadata comes before the items.
        let head = String::from_utf8_lossy(&body[..body.len().min(2048)]);
        match head.split_once("\"continue\":\"") {
            Some((_, rest)) => {
                let token = rest.split('"').next().expect("token");
                path = format!("/api/v1/pods?limit=500&continue={}", urlencode(token));
            }
            None => break,
        }
    }
    let elapsed = t.elapsed();
    assert_eq!(pages, START_NAMESPACES * PER_NS / 500, "pages");
    (elapsed, bytes)
}

/// kube-rs' default reflector on `Pod`, from start to a ready store.
async fn kube_reflector_ready(kubeconfig: &Path) -> Duration {
    let client = source::client(Some(kubeconfig)).await.expect("client");
    let t = Instant::now();
    let (reader, writer) = reflector::store::<Pod>();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(Api::<Pod>::all(client), watcher::Config::default()),
    );
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.expect("reflector ready");
    let elapsed = t.elapsed();
    assert_eq!(reader.len(), START_NAMESPACES * PER_NS);
    task.abort();
    elapsed
}

/// Start to ready: herald, the floor, kube's reflector (medians), and the list bytes.
async fn start_up(sim: &Sim, kubeconfig: &Path) -> (Duration, Duration, Duration, usize) {
    let (mut floors, mut heralds, mut kubes) = (Vec::new(), Vec::new(), Vec::new());
    let mut list_bytes = 0;
    for _ in 0..START_RUNS {
        let (d, b) = floor_list(sim).await;
        floors.push(d);
        list_bytes = b;
        let t = Instant::now();
        let (sources, rx) = herald_ready(kubeconfig).await;
        heralds.push(t.elapsed());
        assert_eq!(
            sources.cache().find("", "v1", "pods")[0].len(),
            START_NAMESPACES * PER_NS
        );
        drop((sources, rx));
        // Let the dropped store go before the next run.
        tokio::time::sleep(Duration::from_millis(500)).await;
        kubes.push(kube_reflector_ready(kubeconfig).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (median(heralds), median(floors), median(kubes), list_bytes)
}

// === 3. memory, in child processes ===

/// What a child reports.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Mem {
    objects: usize,
    /// Sum of the serialised sizes of the objects the store keeps.
    json_bytes: u64,
    /// RSS before the watch started.
    base: u64,
    /// VmHWM after sync, minus `base`.
    peak: u64,
    /// VmRSS after sync, minus `base`.
    after: u64,
    /// `RssFile` after sync minus before the watch: code and files paged in (the
    /// binary's kube, hyper, serde code run for the first time), not data.
    file: u64,
    /// Live heap bytes after sync, minus those before the watch.
    heap: u64,
    /// Live heap blocks after sync, minus those before the watch.
    blocks: u64,
    /// The most live heap bytes at any time until sync, minus those before the watch:
    /// the store plus the transient of the list pages.
    peak_heap: u64,
}

fn child(kind: &str, expect: usize, kubeconfig: &Path) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mem = rt.block_on(async {
        let client = source::client(Some(kubeconfig)).await.expect("client");
        let (_, base) = memory();
        let file0 = status_kb(std::process::id(), "RssFile:");
        let (heap0, blocks0) = heap();
        match kind {
            // `herald` or `herald-N`: list pages of N objects.
            k if k.starts_with("herald") => {
                let mut settings = SourceSettings::default();
                if let Some(n) = k.strip_prefix("herald-") {
                    settings.page_size = n.parse().expect("page size");
                }
                let (tx, _rx) = mpsc::channel(1024);
                let sources = Sources::new(client, settings, tx);
                sources
                    .add(WatchSpec::new("", "v1", "Pod"))
                    .await
                    .expect("add pods");
                while !sources.ready() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let (hwm, rss) = memory();
                let (heap1, blocks1) = heap();
                let objs = sources.cache().find("", "v1", "pods")[0].filter(|_| true);
                let json_bytes = objs.iter().map(|o| o.json().len() as u64).sum();
                Mem {
                    objects: objs.len(),
                    json_bytes,
                    base,
                    peak: hwm - base,
                    after: rss.saturating_sub(base),
                    file: status_kb(std::process::id(), "RssFile:").saturating_sub(file0),
                    heap: heap1.saturating_sub(heap0),
                    blocks: blocks1.saturating_sub(blocks0),
                    peak_heap: PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(heap0),
                }
            }
            "kube" => {
                let (reader, writer) = reflector::store::<Pod>();
                let stream = reflector::reflector(
                    writer,
                    watcher::watcher(Api::<Pod>::all(client), watcher::Config::default()),
                );
                let task = tokio::spawn(stream.for_each(|_| async {}));
                reader.wait_until_ready().await.expect("reflector ready");
                let (hwm, rss) = memory();
                let (heap1, blocks1) = heap();
                let objs = reader.state();
                let json_bytes = objs
                    .iter()
                    .map(|o| serde_json::to_vec(&**o).expect("json").len() as u64)
                    .sum();
                task.abort();
                Mem {
                    objects: objs.len(),
                    json_bytes,
                    base,
                    peak: hwm - base,
                    after: rss.saturating_sub(base),
                    file: status_kb(std::process::id(), "RssFile:").saturating_sub(file0),
                    heap: heap1.saturating_sub(heap0),
                    blocks: blocks1.saturating_sub(blocks0),
                    peak_heap: PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(heap0),
                }
            }
            other => panic!("unknown child {other}"),
        }
    });
    assert_eq!(mem.objects, expect, "{kind}: objects in the store");
    println!("{}", serde_json::to_string(&mem).expect("json"));
}

fn run_child(kind: &str, expect: usize, kubeconfig: &Path) -> Mem {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .arg("--child")
        .arg(kind)
        .arg(expect.to_string())
        .arg(kubeconfig)
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child {kind} {expect}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("child output");
    serde_json::from_str(line).expect("child report")
}

// === main ===

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let kind = &args[i + 1];
        let n: usize = args[i + 2].parse().expect("count");
        child(kind, n, Path::new(&args[i + 3]));
        return;
    }
    // Under `cargo test --benches` (no `--bench`), only check that it starts.
    if !args.iter().any(|a| a == "--bench") {
        println!("source bench: run with `cargo bench -p herald --bench source`");
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(parent());
}

async fn parent() {
    let total = Instant::now();
    let sim = Simulator::builder().start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");

    let seeded = seed(&sim, 0..QUERY_NAMESPACES).await;
    eprintln!("seeded 10k pods in {:.1} s", seeded.as_secs_f64());
    let latency = query_latency(&sim, &kubeconfig).await;
    eprintln!("query latency done");

    let mut mem = Vec::new();
    let mut start = None;
    let mut have = QUERY_NAMESPACES;
    for n in [
        QUERY_NAMESPACES * PER_NS,
        START_NAMESPACES * PER_NS,
        MAX_NAMESPACES * PER_NS,
    ] {
        if n > have * PER_NS {
            let seeded = seed(&sim, have..n / PER_NS).await;
            have = n / PER_NS;
            eprintln!("seeded to {n} pods in {:.1} s", seeded.as_secs_f64());
        }
        let k = kubeconfig.clone();
        let (h, small, r) = tokio::task::spawn_blocking(move || {
            (
                run_child("herald", n, &k),
                run_child("herald-100", n, &k),
                run_child("kube", n, &k),
            )
        })
        .await
        .expect("children");
        eprintln!("memory at {n} done");
        mem.push((n, h, small, r));
        if n == START_NAMESPACES * PER_NS {
            start = Some(start_up(&sim, &kubeconfig).await);
            eprintln!("start-up done");
        }
    }
    let (herald_start, floor, kube_start, list_bytes) = start.expect("start-up measured");

    println!();
    println!(
        "## 1. Query latency, 10k pods cached (10 namespaces x 1k), loopback HTTP, {QUERY_ROUNDS} requests each"
    );
    println!();
    println!(
        "| query | items | herald p50 ms | herald p99 ms | simulator LIST p50 ms | simulator LIST p99 ms | p50 vs sim | p99 vs sim |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for l in &latency {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x |",
            l.case,
            l.items,
            ms(l.herald.0),
            ms(l.herald.1),
            ms(l.sim.0),
            ms(l.sim.1),
            l.herald.0.as_secs_f64() / l.sim.0.as_secs_f64(),
            l.herald.1.as_secs_f64() / l.sim.1.as_secs_f64(),
        );
    }
    println!();
    println!(
        "## 2. Start-up, 50k pods ({:.0} MiB of list JSON), median of {START_RUNS}",
        mib(list_bytes as u64)
    );
    println!();
    println!("| case | s | vs floor |");
    println!("| --- | ---: | ---: |");
    println!(
        "| floor: simulator serves the paginated list (limit=500), client reads bytes | {:.2} | 1.00x |",
        floor.as_secs_f64()
    );
    println!(
        "| herald: Sources::new + add(pods) to ready() | {:.2} | {:.2}x |",
        herald_start.as_secs_f64(),
        herald_start.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "| kube reflector on Pod, default config, to ready (for comparison) | {:.2} | {:.2}x |",
        kube_start.as_secs_f64(),
        kube_start.as_secs_f64() / floor.as_secs_f64()
    );
    println!();
    println!("## 3. Memory (child process per figure; RSS minus RSS before the watch)");
    println!();
    println!(
        "| pods | store | JSON kept MiB | peak RSS MiB | peak / JSON | RSS after sync MiB | after / JSON | of which file-backed MiB | peak vs kube reflector | live heap MiB | heap / JSON | peak live heap MiB | heap blocks per object |"
    );
    println!(
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (n, h, small, r) in &mem {
        for (name, m) in [
            ("herald (compact JSON + index), pages of 500", h),
            ("herald, pages of 100", small),
            ("kube reflector (Pod)", r),
        ] {
            println!(
                "| {n} | {name} | {:.1} | {:.1} | {:.2}x | {:.1} | {:.2}x | {:.1} | {:.2}x | {:.1} | {:.2}x | {:.1} | {:.0} |",
                mib(m.json_bytes),
                mib(m.peak),
                m.peak as f64 / m.json_bytes as f64,
                mib(m.after),
                m.after as f64 / m.json_bytes as f64,
                mib(m.file),
                m.peak as f64 / r.peak as f64,
                mib(m.heap),
                m.heap as f64 / m.json_bytes as f64,
                mib(m.peak_heap),
                m.blocks as f64 / *n as f64,
            );
        }
    }
    println!();
    for (n, h, _, r) in &mem {
        let ratio = h.peak as f64 / h.json_bytes as f64;
        println!(
            "SUMMARY|peak RSS holding {}k pods, MiB (JSON kept {:.0} MiB)|{:.0}|kube reflector {:.0}|{:.2}x kube, {:.2}x JSON|≤ 1.2x JSON|{}",
            n / 1000,
            mib(h.json_bytes),
            mib(h.peak),
            mib(r.peak),
            h.peak as f64 / r.peak as f64,
            ratio,
            if ratio <= 1.2 { "yes" } else { "**no**" }
        );
    }
    println!(
        "SUMMARY|start → ready, 50k pods (Sources), s|{:.2}|kube reflector {:.2}, floor {:.2}|{:.2}x kube|≤ 10 s|{}",
        herald_start.as_secs_f64(),
        kube_start.as_secs_f64(),
        floor.as_secs_f64(),
        herald_start.as_secs_f64() / kube_start.as_secs_f64(),
        if herald_start.as_secs_f64() <= 10.0 {
            "yes"
        } else {
            "**no**"
        }
    );
    println!();
    println!(
        "total {:.0} s (seeding included)",
        total.elapsed().as_secs_f64()
    );
}
