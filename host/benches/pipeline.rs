//! Pipeline performance (issue 8): herald end to end against the in-process
//! API-server simulator and a loopback HTTP receiver, each figure against a
//! baseline measured in the same run.
//!
//! 1. Throughput: the simulator's watch stream → dedup →
//!    filter → prune → route (and → diff) → batch sink → receiver, on ~6.6 KB pods, in
//!    events per CPU-second of the herald process ("per core"); the same
//!    pipeline with the three plugins compiled natively (the baseline), and
//!    with no plugins (the floor).
//! 2. Latency: simulator write → receiver receipt at 1,000 events/s through
//!    an unbatched webhook, p50/p99/p999.
//! 3. Memory and 4. start-up: RSS and start → ready of the herald process
//!    (library pipeline and the real `herald run` binary) from 1k to 100k pods.
//! 5. Plugins: hot-swap time of the real binary (file renamed into the
//!    plugin directory → first notification showing the new version).
//! 6. Scaling: the figures above at 1k, 10k, 100k pods, and 10k objects in
//!    1 watched type vs in 10.
//!
//! herald runs in a child process (this binary re-run with `--child`, or the
//! `herald` binary), so its CPU time and RSS come from `/proc` without the
//! simulator's or the receiver's.
//!
//! Run: `scripts/build-plugins && cargo bench -p herald --bench pipeline`
//!
//! One part alone, for before/after comparisons (each at 10k pods):
//! `HERALD_BENCH_THROUGHPUT=N` (batched throughput, no plugins then the wasm
//! chain, N rounds, CPU by thread and thread switches per event),
//! `HERALD_BENCH_LATENCY=1` (the latency cases, with herald's cores and
//! thread switches per event; `HERALD_BENCH_LATENCY_RATES=300,1000` at these
//! rates instead of 1,000 and 5,000), `HERALD_BENCH_WORKERS=1` (1 vs 2 chain
//! workers), `HERALD_BENCH_DECISIONS=1` (the decisions ring off and on),
//! `HERALD_BENCH_RESYNC=1` (the resync of 100k pods),
//! `HERALD_BENCH_ALLOCATOR=N` (herald's allocator against glibc's, N rounds,
//! each first every other round; needs `herald-sysalloc`, which
//! `scripts/bench` builds). `HERALD_BENCH_PERF=DIR`
//! records each run with `perf`.

mod common;

/// As the `herald` binary: the library children (this bench re-run with
/// `--child`) allocate as it does.
#[global_allocator]
static GLOBAL: herald::alloc::Split = herald::alloc::Split;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::proc;
use herald::change::ChangeType;
use herald::metrics::Metrics;
use herald::pipeline::{self, Outcome};
use herald::plugin::{Fate, Runtime, RuntimeConfig};
use herald::sink::Sinks;
use herald::source::{self, Sources};
use herald_plugin_sdk::{Change, TestEvent, Verdict, testing};
use herald_sim::{ResourceType, Sim, Simulator, fixtures};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Pods per namespace.
const PER_NS: usize = 1_000;
/// Pod counts the suite steps through; throughput runs at those in `THROUGHPUT_AT`.
const LEVELS: [usize; 4] = [1_000, 10_000, 50_000, 100_000];
const THROUGHPUT_AT: [usize; 3] = [1_000, 10_000, 100_000];
/// Watch events per throughput run.
const EVENTS: usize = 20_000;
/// Latency run: events at 1 per millisecond.
const LATENCY_EVENTS: usize = 10_000;
/// Hot swaps (alternating two versions).
const SWAPS: usize = 6;
/// Simulator history: more than one run's events, so a lagging watch never
/// sees 410 Gone.
const HISTORY: usize = 3 * EVENTS;
/// Whether the children of the next runs keep decisions (the
/// `HERALD_BENCH_DECISIONS` comparison flips it between runs).
static DECISIONS: AtomicBool = AtomicBool::new(false);
/// The CRD group of the 10-types case.
const GROUP: &str = "bench.herald.dev";

/// The three plugins of the chain and their configs.
fn plugin_configs() -> Value {
    json!({
        "filter": {"ignoreNamespaces": ["kube-*"], "labelSelector": "app=seed",
                   "changes": ["added", "modified", "deleted"]},
        "prune": {"remove": ["/metadata/managedFields", "/spec/containers/*/env"], "secrets": true},
        "diff": {},
        "route": {"rules": [{"match": {"labels": "shard=3"}, "sinks": ["out"]}], "defaultSinks": ["out"]},
    })
}
/// The headline chain: plugins that read and change fields through the
/// event handle.
const LIGHT: [&str; 3] = ["filter", "prune", "route"];
/// With `diff`, which reads both whole objects (`to-json`, `old-to-json`)
/// and parses them in the guest.
const DIFF: [&str; 3] = ["filter", "prune", "diff"];

fn wasm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/plugin")
}

fn ns(i: usize) -> String {
    format!("bench-{i:03}")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// === receiver ===

/// A loopback HTTP/1 receiver: answers 200 to everything, counts the
/// notifications (a batch's `herald-batch-size`, else 1), and records
/// receipt times and bodies while `record` is on.
#[derive(Default)]
struct Recv {
    items: AtomicU64,
    requests: AtomicU64,
    record: AtomicBool,
    log: Mutex<Vec<(Instant, Bytes)>>,
}

impl Recv {
    async fn start() -> (SocketAddr, Arc<Recv>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Recv::default());
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let st = st.clone();
                        async move {
                            let n: u64 = req
                                .headers()
                                .get("herald-batch-size")
                                .and_then(|v| v.to_str().ok()?.parse().ok())
                                .unwrap_or(1);
                            let body = match req.into_body().collect().await {
                                Ok(b) => b.to_bytes(),
                                Err(_) => Bytes::new(),
                            };
                            let at = Instant::now();
                            if st.record.load(Ordering::Relaxed) {
                                st.log.lock().expect("log").push((at, body));
                            }
                            st.requests.fetch_add(1, Ordering::Relaxed);
                            st.items.fetch_add(n, Ordering::Relaxed);
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (addr, state)
    }

    fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }

    /// Waits until `n` notifications have arrived; false on timeout.
    async fn wait_items(&self, n: u64, timeout: Duration) -> bool {
        let t = Instant::now();
        let mut said = Instant::now();
        while self.items() < n {
            if t.elapsed() > timeout {
                return false;
            }
            if said.elapsed() > Duration::from_secs(10) {
                said = Instant::now();
                eprintln!(
                    "waiting: {} of {n} notifications, {} requests",
                    self.items(),
                    self.requests.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }

    fn take_log(&self) -> Vec<(Instant, Bytes)> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }
}

// === the herald child: library pipeline wired as `herald run` wires it ===

/// Which plugins the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Plugins {
    /// filter → prune → diff as wasm components (`Config::chains`).
    Wasm,
    /// The same three plugin crates compiled natively, on the SDK's in-memory
    /// event, run on the pipeline thread where the wasm chain runs.
    Native,
    /// No plugins.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildSpec {
    kubeconfig: PathBuf,
    plugins: Plugins,
    /// The chain's plugin names (for wasm and native).
    chain: Vec<String>,
    /// The `sinks:` entry.
    sink: Value,
    /// The `watch:` entries (without `plugins`).
    watch: Vec<Value>,
    /// `pipeline.workers`; none: the default (the cores).
    #[serde(default)]
    workers: Option<usize>,
    /// The decisions ring on (16 MiB, as `herald run` has it by default).
    #[serde(default)]
    decisions: bool,
}

/// herald's config text for `spec`; the chain is on every watch when wasm.
fn config_yaml(
    kubeconfig: &Path,
    plugins: Plugins,
    chain: &[String],
    dir: &Path,
    sink: &Value,
    watch: &[Value],
    workers: Option<usize>,
) -> String {
    let watch: Vec<Value> = watch
        .iter()
        .map(|w| {
            let mut w = w.clone();
            if plugins == Plugins::Wasm {
                w["plugins"] = json!(chain);
            }
            w
        })
        .collect();
    let mut config = json!({
        "cluster": "bench",
        "kubeconfig": kubeconfig,
        "watch": watch,
        "plugins": {"dir": dir, "config": plugin_configs()},
        "sinks": [sink],
    });
    if let Some(n) = workers {
        config["pipeline"] = json!({ "workers": n });
    }
    // YAML is a superset of JSON.
    config.to_string()
}

/// One native plugin as a call on an in-memory event.
type NativePlugin = Box<dyn FnMut(&mut TestEvent) -> Verdict + Send>;

/// The native baseline: the shipped plugin crates, same configs.
struct NativeChain {
    plugins: Vec<(String, NativePlugin)>,
}

impl NativeChain {
    fn new(names: &[String]) -> Self {
        fn boxed<P: herald_plugin_sdk::Plugin + Send + 'static>(config: &Value) -> NativePlugin {
            let mut p: P = testing::init(&config.to_string()).unwrap_or_else(|e| panic!("{e}"));
            Box::new(move |e| testing::run(&mut p, e))
        }
        let c = plugin_configs();
        let plugins = names
            .iter()
            .map(|name| {
                let config = &c[name.as_str()];
                let p = match name.as_str() {
                    "filter" => boxed::<filter::Filter>(config),
                    "noise" => boxed::<noise::Noise>(config),
                    "prune" => boxed::<prune::Prune>(config),
                    "diff" => boxed::<diff::Diff>(config),
                    "route" => boxed::<route::Route>(config),
                    other => panic!("no native {other}"),
                };
                (name.clone(), p)
            })
            .collect();
        NativeChain { plugins }
    }

    /// Runs the chain on `o` in place, combining verdicts as `Chain` does.
    fn run(&mut self, o: &mut Outcome) {
        let change = match o.change {
            ChangeType::Added => Change::Added,
            ChangeType::Modified => Change::Modified,
            ChangeType::Deleted => Change::Deleted,
        };
        let mut ev = TestEvent::new(change, std::mem::take(&mut o.object).into_value());
        ev.old = o.old.take().map(herald::change::Doc::into_value);
        let mut routes: Vec<String> = Vec::new();
        let mut fate = None;
        for (name, step) in &mut self.plugins {
            match step(&mut ev) {
                Verdict::Pass => {}
                Verdict::Drop(reason) => {
                    fate = Some(Fate::Dropped {
                        plugin: name.clone(),
                        reason,
                    });
                    break;
                }
                Verdict::Route(sinks) => {
                    for s in sinks {
                        if !routes.contains(&s) {
                            routes.push(s);
                        }
                    }
                }
            }
        }
        o.object = ev.object.into();
        o.old = ev.old.map(Into::into);
        o.fate = fate.unwrap_or(Fate::Deliver { routes });
    }
}

/// The child: prints `ready <seconds>` once every watch has synced, then runs
/// until its standard input closes.
fn child(spec: ChildSpec) {
    if std::env::var_os("HERALD_BENCH_DEBUG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter("info")
            .init();
    }
    let rt = herald::app::async_runtime().expect("runtime");
    rt.block_on(async move {
        let t0 = Instant::now();
        let text = config_yaml(
            &spec.kubeconfig,
            spec.plugins,
            &spec.chain,
            &wasm_dir(),
            &spec.sink,
            &spec.watch,
            spec.workers,
        );
        let config = herald::app::parse_config(&text, Path::new("bench.yaml")).expect("config");
        let runtime = Runtime::new(RuntimeConfig::default()).expect("plugin runtime");
        let chains = pipeline::replicate(
            config.chains(&runtime).expect("chains"),
            config.pipeline.workers(),
        )
        .expect("chains");
        let client = source::client(config.kubeconfig.as_deref())
            .await
            .expect("client");
        let (tx, rx) = mpsc::channel(4096);
        let sources = Sources::new(client, config.source.clone(), tx);
        let decisions = spec
            .decisions
            .then(|| herald::decisions::Decisions::new(16 << 20));
        let sinks = Sinks::start(
            &config.cluster,
            &config.sinks,
            herald::sink::SinkDeps {
                log: decisions.clone().map(|d| {
                    std::sync::Arc::new(d) as std::sync::Arc<dyn herald::sink::DeliveryLog>
                }),
                ..Default::default()
            },
        )
        .expect("sinks");
        let mut delivery = herald::pipeline::Delivery::new(
            sinks.clone(),
            herald::pipeline::Routes::new(&config.sinks, config.watch_sinks()),
            None,
        );
        if let Some(d) = &decisions {
            delivery = delivery.with_decisions(d.clone());
        }
        let metrics = Metrics::new();
        // Dedup before the plugins, as `herald run` has it (no state dir).
        let stages = pipeline::Stages {
            dedup: Some(std::sync::Arc::new(
                herald::dedup::Dedup::new(&herald::dedup::DedupSettings::default()).expect("dedup"),
            )),
            metrics: Some(metrics.clone()),
            decisions: decisions.clone(),
            ..Default::default()
        };
        let (_keep_updates, updates) = std::sync::mpsc::channel();
        let mut native = (spec.plugins == Plugins::Native).then(|| NativeChain::new(&spec.chain));
        let dispatcher = delivery.clone();
        let _pipeline = pipeline::spawn_with(rx, chains, updates, stages, move |mut o| {
            if let Some(n) = &mut native {
                n.run(&mut o);
            }
            metrics.event(&o.watch, o.change.as_str());
            let watch = o.watch.clone();
            let fate = match &o.fate {
                Fate::Deliver { .. } => "delivered",
                Fate::Dropped { .. } => "dropped",
                Fate::DeadLetter { .. } => "dead_letter",
            };
            herald::pipeline::Deliver::deliver(&dispatcher, o, None);
            metrics.outcome(&watch, fate);
            ControlFlow::Continue(())
        })
        .expect("pipeline");
        for w in &config.watch {
            sources.add(w.clone()).await.expect("add watch");
        }
        while !sources.ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if std::env::var_os("HERALD_BENCH_DEBUG").is_some() {
            let s = sinks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    eprintln!("child sinks: {:?}", s.status());
                }
            });
        }
        println!("ready {}", t0.elapsed().as_secs_f64());
        std::io::stdout().flush().expect("stdout");
        let _ = tokio::task::spawn_blocking(|| {
            let mut s = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut s);
        })
        .await;
        std::process::exit(0);
    });
}

/// A running herald: this bench as `--child`, or the `herald` binary.
struct Herald {
    proc: Child,
    /// Spawn → ready.
    ready_after: Duration,
    /// What the child says (library children time themselves, from before
    /// the config is parsed).
    own_ready: Option<Duration>,
    /// The binary's API port (its `/metrics`).
    port: Option<u16>,
}

impl Herald {
    fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// RSS and peak RSS.
    fn rss(&self) -> (u64, u64) {
        (
            proc::status_kb(self.pid(), "VmRSS:"),
            proc::status_kb(self.pid(), "VmHWM:"),
        )
    }

    fn stop(mut self) {
        drop(self.proc.stdin.take());
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

async fn spawn_child(spec: &ChildSpec) -> Herald {
    let spec_json = serde_json::to_string(spec).expect("spec");
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut proc = Command::new(std::env::current_exe().expect("current exe"))
            .arg("--child")
            .arg(spec_json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let mut line = String::new();
        BufReader::new(proc.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("child output");
        let ready_after = t.elapsed();
        let own: f64 = line
            .strip_prefix("ready ")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("child said {line:?}"));
        Herald {
            proc,
            ready_after,
            own_ready: Some(Duration::from_secs_f64(own)),
            port: None,
        }
    })
    .await
    .expect("spawn")
}

/// The real `herald run` with `config` (written to `dir/herald.yaml`), ready
/// when `/readyz` answers 200.
async fn spawn_binary(dir: &Path, config: &Value) -> Herald {
    spawn_program(Path::new(env!("CARGO_BIN_EXE_herald")), dir, config).await
}

/// The `herald run` config of the binary cases: the pods, the wasm chain
/// (filter → prune → route), a batch sink.
fn binary_config(kubeconfig: &Path, batch_url: &str) -> Value {
    json!({
        "cluster": "bench",
        "kubeconfig": kubeconfig,
        "watch": [{"version": "v1", "kind": "Pod", "plugins": LIGHT}],
        "plugins": {"dir": wasm_dir(), "config": plugin_configs()},
        "sinks": [{"name": "out", "type": "batch", "url": batch_url}],
    })
}

/// `herald-sysalloc`: the same program with the system allocator, if
/// `scripts/bench` built it (`--features sysalloc-baseline`).
fn sysalloc_bin() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_herald")).with_file_name("herald-sysalloc");
    p.exists().then_some(p)
}

/// `program run` with `config`, as [`spawn_binary`].
async fn spawn_program(program: &Path, dir: &Path, config: &Value) -> Herald {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let mut config = config.clone();
    // /readyz and /metrics are served on the metrics listener (no token);
    // the query API is not used here.
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    config["api"] = json!({"listen": format!("127.0.0.1:{api}")});
    config["metrics"] = json!({"listen": format!("127.0.0.1:{port}")});
    let path = dir.join("herald.yaml");
    std::fs::write(&path, config.to_string()).expect("config");
    let t = Instant::now();
    let proc = Command::new(program)
        .arg("run")
        .arg("--config")
        .arg(&path)
        .env("HERALD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn herald");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "herald run not ready"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Herald {
        proc,
        ready_after: t.elapsed(),
        own_ready: None,
        port: Some(port),
    }
}

/// A counter family's total in the binary's `/metrics`.
async fn metric_total(h: &Herald, name: &str) -> u64 {
    let url = format!("http://127.0.0.1:{}/metrics", h.port.expect("a binary"));
    let text = reqwest::get(&url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One periodic resync of `objects` unchanged pods through dedup (issue 16):
/// the binary with no plugins and `resyncInterval: 2s`. The first pass
/// remembers the silently listed pods; the CPU of the next whole pass (from
/// the end of the second to the end of the third, idle time and the bench's
/// /metrics polling included) is the figure. Nothing may be notified.
struct Resync {
    objects: usize,
    cpu: Duration,
    wall: Duration,
    notified: u64,
}

async fn resync_pass(
    recv: &Recv,
    kubeconfig: &Path,
    url: &str,
    dir: &Path,
    objects: usize,
) -> Resync {
    let config = json!({
        "cluster": "bench",
        "kubeconfig": kubeconfig,
        "watch": [{"version": "v1", "kind": "Pod"}],
        "sinks": [{"name": "out", "type": "batch", "url": url}],
        "resyncInterval": "2s",
    });
    let h = spawn_binary(dir, &config).await;
    let dropped = "herald_dedup_dropped_total";
    let until = |n: u64| {
        let h = &h;
        async move {
            let t = Instant::now();
            loop {
                if metric_total(h, dropped).await >= n {
                    return;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(120),
                    "resync stalled below {n}"
                );
                // Each look is a /metrics request herald serves: its CPU is
                // in the figure, so look 10 times a second, no more.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    until(objects as u64).await;
    let base = recv.items();
    let cpu0 = proc::cpu(h.pid());
    let t0 = Instant::now();
    until(2 * objects as u64).await;
    let r = Resync {
        objects,
        cpu: proc::cpu(h.pid()) - cpu0,
        wall: t0.elapsed(),
        notified: recv.items() - base,
    };
    h.stop();
    r
}

/// The binary with the wasm chain at 10k pods: herald (mimalloc) and
/// herald-sysalloc alternately, twice each (issue 16: keep the faster
/// allocator).
async fn allocator_runs(
    sim: &Sim,
    recv: &Recv,
    config: &Value,
    dir: &Path,
    targets: &Targets,
    rounds: usize,
) -> Vec<(&'static str, f64)> {
    let Some(sys) = sysalloc_bin() else {
        eprintln!("herald-sysalloc not built (scripts/bench builds it): no allocator comparison");
        return Vec::new();
    };
    let mut out = Vec::new();
    for round in 0..rounds {
        let mut pair = [
            (
                "herald (mimalloc < 4 KiB, glibc above)",
                PathBuf::from(env!("CARGO_BIN_EXE_herald")),
            ),
            ("glibc malloc", sys.clone()),
        ];
        // Each goes first every other round: the machine's drift within a
        // round falls on both.
        if round % 2 == 1 {
            pair.reverse();
        }
        for (name, program) in pair {
            let h = spawn_program(&program, dir, config).await;
            drive(sim, recv, &h, targets, 500).await;
            let cpu = drive(sim, recv, &h, targets, EVENTS).await.cpu;
            h.stop();
            let per = EVENTS as f64 / cpu.as_secs_f64();
            eprintln!("allocator {name}: {per:.0} events/CPU-s");
            out.push((name, per));
        }
    }
    out
}

fn report_allocators(runs: &[(&'static str, f64)], resync: Option<&Resync>) {
    if let Some(r) = resync {
        let per = r.objects as f64 / r.cpu.as_secs_f64();
        println!();
        println!(
            "## Resync: {} unchanged pods offered to dedup, `herald run`, no plugins",
            r.objects
        );
        println!();
        println!("| objects | herald CPU ms | wall ms | objects per CPU-s | notified |");
        println!("| ---: | ---: | ---: | ---: | ---: |");
        println!(
            "| {} | {:.0} | {:.0} | {per:.0} | {} |",
            r.objects,
            ms(r.cpu),
            ms(r.wall),
            r.notified
        );
        println!();
        println!(
            "SUMMARY|resync of {}k unchanged pods through dedup, objects per CPU-s|{per:.0}|–|–|≥ 200,000, 0 notified|{}",
            r.objects / 1000,
            if per >= 200_000.0 && r.notified == 0 {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    if runs.is_empty() {
        return;
    }
    let mean = |n: &str| {
        let v: Vec<f64> = runs.iter().filter(|r| r.0 == n).map(|r| r.1).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    println!();
    println!("## Allocator: `herald run`, 10k pods, wasm filter → prune → route → batch sink");
    println!();
    println!("| round | allocator | events per CPU-s |");
    println!("| ---: | --- | ---: |");
    for (i, (n, v)) in runs.iter().enumerate() {
        println!("| {} | {n} | {v:.0} |", i / 2 + 1);
    }
    let (m, g) = (
        mean("herald (mimalloc < 4 KiB, glibc above)"),
        mean("glibc malloc"),
    );
    println!();
    println!(
        "SUMMARY|allocator: herald's (mimalloc < 4 KiB, glibc above) / glibc malloc, `herald run` wasm chain, events per CPU-s (mean of {} rounds)|{m:.0}|glibc {g:.0}|{:.2}x|keep the faster|{}",
        runs.len() / 2,
        m / g,
        if m >= g {
            "mimalloc kept"
        } else {
            "**glibc faster**"
        }
    );
}

// === load ===

/// Objects the generator updates: (resource plural, object).
type Targets = Vec<(String, Value)>;

/// Up to `per` objects of each `(resource, namespace)`, ready to be sent
/// back as updates.
async fn targets(sim: &Sim, of: &[(&str, String)], per: usize) -> Targets {
    let mut out = Vec::new();
    for (resource, namespace) in of {
        for mut o in sim
            .list(resource, namespace)
            .await
            .expect("list")
            .into_iter()
            .take(per)
        {
            o["metadata"]
                .as_object_mut()
                .expect("metadata")
                .remove("resourceVersion");
            out.push((resource.to_string(), o));
        }
    }
    // Interleave the resources.
    let n = of.len().max(1);
    let per_res = out.len() / n;
    let mut mixed = Vec::with_capacity(out.len());
    for i in 0..per_res {
        for r in 0..n {
            mixed.push(out[r * per_res + i].clone());
        }
    }
    mixed
}

/// Updates so far; each update's `seq` label is unique, so no update is a
/// no-op (which the API server would not report).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// One update: label `seq` set to a new value. Returns the new resourceVersion.
async fn update(sim: &Sim, t: &(String, Value)) -> String {
    let mut o = t.1.clone();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    o["metadata"]["labels"]["seq"] = json!(seq.to_string());
    sim.update_version(&t.0, o).await.expect("update")
}

// === 1. throughput ===

#[derive(Debug, Clone)]
struct Throughput {
    case: String,
    /// The chain's plugin names.
    chain: &'static [&'static str],
    objects: usize,
    types: usize,
    plugins: Plugins,
    /// Spawn → ready, and the child's own start → ready.
    ready: Duration,
    rss_ready: u64,
    cpu: Duration,
    wall: Duration,
    events: usize,
    threads: Vec<(String, Duration)>,
    /// Times herald's threads were switched in during the run.
    switches: u64,
    /// `pipeline.workers` when set (the workers comparison).
    workers: Option<usize>,
    /// Cores of the whole machine in use during the run (herald, the
    /// simulator, the receiver and anything else running).
    machine_cores: f64,
}

impl Throughput {
    /// What [`drive`] measured over [`EVENTS`] writes, for the headline
    /// chain at 10k pods in one type with no `workers` setting; the caller
    /// names the case and sets what differs.
    fn of(run: Driven) -> Self {
        Throughput {
            case: String::new(),
            chain: &LIGHT,
            objects: 10_000,
            types: 1,
            plugins: Plugins::Wasm,
            ready: Duration::ZERO,
            rss_ready: 0,
            cpu: run.cpu,
            wall: run.wall,
            events: EVENTS,
            threads: run.threads,
            switches: run.switches,
            workers: None,
            machine_cores: run.machine_cores,
        }
    }

    fn per_cpu_s(&self) -> f64 {
        self.events as f64 / self.cpu.as_secs_f64()
    }
    fn us_per_event(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.events as f64
    }
}

/// Runs `events` updates through a ready herald and measures its CPU time
/// until the receiver has every notification.
async fn drive(sim: &Sim, recv: &Recv, h: &Herald, targets: &Targets, events: usize) -> Driven {
    let pid = h.pid();
    let sw0 = proc::switches(pid);
    let machine0 = proc::machine();
    let base = recv.items();
    let cpu0 = proc::cpu(pid);
    let th0 = proc::threads(pid);
    let t0 = Instant::now();
    for i in 0..events {
        update(sim, &targets[i % targets.len()]).await;
        if i % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    let all = recv
        .wait_items(base + events as u64, Duration::from_secs(300))
        .await;
    assert!(
        all,
        "only {} of {events} notifications arrived",
        recv.items() - base
    );
    let wall = t0.elapsed();
    let cpu = proc::cpu(pid) - cpu0;
    let mut threads: Vec<(String, Duration)> = proc::threads_delta(&th0, &proc::threads(pid))
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.1));
    Driven {
        cpu,
        wall,
        threads,
        switches: proc::switches(pid) - sw0,
        machine_cores: proc::machine().cores_since(&machine0),
    }
}

/// What [`drive`] measured over its writes: herald's CPU, the wall time,
/// herald's CPU by thread, its threads' switches, and the cores of the
/// whole machine in use (herald, the simulator, the receiver, the rest).
struct Driven {
    cpu: Duration,
    wall: Duration,
    threads: Vec<(String, Duration)>,
    switches: u64,
    machine_cores: f64,
}

/// With `HERALD_BENCH_PERF=DIR`, a `perf record` of the child into
/// `DIR/<name>.data` (with `HERALD_BENCH_PERF_DWARF`, call graphs by DWARF:
/// the release build has no frame pointers, so `-g` alone gives flat
/// profiles).
fn perf_start(h: &Herald, name: &str) -> Option<Child> {
    let dir = std::env::var_os("HERALD_BENCH_PERF")?;
    let out = Path::new(&dir).join(format!("{name}.data"));
    let graph = if std::env::var_os("HERALD_BENCH_PERF_DWARF").is_some() {
        "--call-graph=dwarf,16384"
    } else {
        "-g"
    };
    Some(
        Command::new("perf")
            .args(["record", "-F", "999", graph, "-o"])
            .arg(out)
            .arg("-p")
            .arg(h.pid().to_string())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf"),
    )
}

/// Ends a [`perf_start`] recording and waits for its file.
fn perf_stop(perf: Option<Child>) {
    if let Some(mut p) = perf {
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }
}

#[allow(clippy::too_many_arguments)]
async fn throughput(
    sim: &Sim,
    recv: &Recv,
    kubeconfig: &Path,
    url: &str,
    watch: &[Value],
    targets: &Targets,
    objects: usize,
    plugins: Plugins,
    chain: &'static [&'static str],
    workers: Option<usize>,
) -> Throughput {
    let spec = ChildSpec {
        kubeconfig: kubeconfig.to_path_buf(),
        plugins,
        chain: chain.iter().map(|s| s.to_string()).collect(),
        sink: json!({"name": "out", "type": "batch", "url": url}),
        watch: watch.to_vec(),
        workers,
        decisions: DECISIONS.load(Ordering::Relaxed),
    };
    let h = spawn_child(&spec).await;
    let (rss_ready, _) = h.rss();
    // Warm-up: connections, code paths, the plugins' first calls.
    drive(sim, recv, &h, targets, 500).await;
    let perf = perf_start(
        &h,
        &format!("{objects}-{}-{plugins:?}-{}", watch.len(), chain.join("-")),
    );
    let run = drive(sim, recv, &h, targets, EVENTS).await;
    perf_stop(perf);
    let ready = h.own_ready.unwrap_or(h.ready_after);
    h.stop();
    Throughput {
        case: match workers {
            Some(n) => format!("{}, {n} chain worker(s)", case(plugins, chain)),
            None => case(plugins, chain),
        },
        chain,
        objects,
        types: watch.len(),
        plugins,
        ready,
        rss_ready,
        workers,
        ..Throughput::of(run)
    }
}

// === 2. latency ===

/// The latency cases: no plugins and the wasm chain, at 1,000 and 5,000
/// events a second.
const LATENCY_CASES: [(Plugins, u64); 4] = [
    (Plugins::None, 1_000),
    (Plugins::Wasm, 1_000),
    (Plugins::None, 5_000),
    (Plugins::Wasm, 5_000),
];

struct Latency {
    case: String,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
    rate: f64,
    events: usize,
    /// herald's CPU over the run, in cores (CPU-s per wall-s).
    herald_cores: f64,
    /// The bench process's (the simulator, the receiver, the writer), in cores.
    bench_cores: f64,
    /// Times herald's threads were switched in, per event.
    switches: f64,
    /// Cores of the whole machine in use over the run.
    machine_cores: f64,
}

/// Every case of [`LATENCY_CASES`], in order.
async fn latency_cases(
    sim: &Sim,
    recv: &Recv,
    kubeconfig: &Path,
    url: &str,
    targets: &Targets,
) -> Vec<Latency> {
    // HERALD_BENCH_LATENCY_RATES=300,1000: no plugins and the wasm chain at
    // these rates instead.
    let cases: Vec<(Plugins, u64)> = match std::env::var("HERALD_BENCH_LATENCY_RATES") {
        Ok(rates) => rates
            .split(',')
            .map(|r| {
                r.trim()
                    .parse::<u64>()
                    .expect("HERALD_BENCH_LATENCY_RATES: numbers")
            })
            .flat_map(|r| [(Plugins::None, r), (Plugins::Wasm, r)])
            .collect(),
        Err(_) => LATENCY_CASES.to_vec(),
    };
    let mut out = Vec::with_capacity(cases.len());
    for (plugins, rate) in cases {
        out.push(latency(sim, recv, kubeconfig, url, targets, plugins, rate).await);
        eprintln!("latency {plugins:?} at {rate}/s done");
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Deserialize)]
struct EnvelopeRv {
    #[serde(rename = "resourceVersion")]
    rv: String,
}

async fn latency(
    sim: &Sim,
    recv: &Recv,
    kubeconfig: &Path,
    url: &str,
    targets: &Targets,
    plugins: Plugins,
    per_second: u64,
) -> Latency {
    let spec = ChildSpec {
        kubeconfig: kubeconfig.to_path_buf(),
        plugins,
        chain: LIGHT.iter().map(|s| s.to_string()).collect(),
        sink: json!({"name": "out", "type": "webhook", "url": url}),
        watch: vec![json!({"version": "v1", "kind": "Pod"})],
        workers: None,
        decisions: DECISIONS.load(Ordering::Relaxed),
    };
    let h = spawn_child(&spec).await;
    drive(sim, recv, &h, targets, 500).await;
    recv.take_log();
    recv.record.store(true, Ordering::Relaxed);
    let base = recv.items();
    let mut written: HashMap<String, Instant> = HashMap::with_capacity(LATENCY_EVENTS);
    let perf = perf_start(&h, &format!("latency-{plugins:?}-{per_second}"));
    let (herald0, bench0) = (proc::cpu(h.pid()), proc::cpu(std::process::id()));
    let switches0 = proc::switches(h.pid());
    let machine0 = proc::machine();
    let start = tokio::time::Instant::now();
    for i in 0..LATENCY_EVENTS {
        // tokio's timer ticks in milliseconds: above 1,000/s the writes of
        // one millisecond go out together.
        tokio::time::sleep_until(start + Duration::from_micros(i as u64 * 1_000_000 / per_second))
            .await;
        let t = Instant::now();
        let rv = update(sim, &targets[i % targets.len()]).await;
        written.insert(rv, t);
    }
    let sent_in = start.elapsed();
    assert!(
        recv.wait_items(base + LATENCY_EVENTS as u64, Duration::from_secs(60))
            .await,
        "latency run: notifications missing"
    );
    let wall = start.elapsed().as_secs_f64();
    let herald_cores = (proc::cpu(h.pid()) - herald0).as_secs_f64() / wall;
    let bench_cores = (proc::cpu(std::process::id()) - bench0).as_secs_f64() / wall;
    let switches = (proc::switches(h.pid()) - switches0) as f64 / LATENCY_EVENTS as f64;
    let machine_cores = proc::machine().cores_since(&machine0);
    perf_stop(perf);
    recv.record.store(false, Ordering::Relaxed);
    h.stop();
    let mut lat: Vec<Duration> = recv
        .take_log()
        .into_iter()
        .filter_map(|(at, body)| {
            let e: EnvelopeRv = serde_json::from_slice(&body).ok()?;
            Some(at - *written.get(&e.rv)?)
        })
        .collect();
    assert_eq!(
        lat.len(),
        LATENCY_EVENTS,
        "every write matched to a receipt"
    );
    lat.sort();
    Latency {
        case: case(plugins, &LIGHT),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        p999: percentile(&lat, 0.999),
        max: *lat.last().expect("latencies"),
        rate: LATENCY_EVENTS as f64 / sent_in.as_secs_f64(),
        events: LATENCY_EVENTS,
        herald_cores,
        bench_cores,
        switches,
        machine_cores,
    }
}

// === 5. hot swap with the real binary ===

struct Swap {
    first: Duration,
    later: Vec<Duration>,
}

/// `herald run` with one plugin `gate` that is `noise.wasm` (passes the
/// label changes) or `diff.wasm` (adds `heraldDiff`); each swap renames the
/// other version over `gate.wasm` and times until a notification shows it.
async fn hot_swap(sim: &Sim, recv: &Recv, kubeconfig: &Path, url: &str, targets: &Targets) -> Swap {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins dir");
    let versions = [
        std::fs::read(wasm_dir().join("noise.wasm")).expect("noise.wasm"),
        std::fs::read(wasm_dir().join("diff.wasm")).expect("diff.wasm"),
    ];
    std::fs::write(plugins.join("gate.wasm"), &versions[0]).expect("gate");
    let config = json!({
        "cluster": "bench",
        "kubeconfig": kubeconfig,
        "watch": [{"version": "v1", "kind": "Pod", "plugins": ["gate"]}],
        "plugins": {"dir": plugins, "config": {"gate": {}}},
        "sinks": [{"name": "hook", "type": "webhook", "url": url, "old": "none"}],
    });
    let h = spawn_binary(dir.path(), &config).await;
    drive(sim, recv, &h, targets, 200).await;
    let mut times = Vec::new();
    let mut seq = 0usize;
    for s in 0..SWAPS {
        let want_diff = s % 2 == 0;
        let tmp = plugins.join(".gate.tmp");
        std::fs::write(&tmp, &versions[usize::from(want_diff)]).expect("write");
        recv.take_log();
        recv.record.store(true, Ordering::Relaxed);
        let t = Instant::now();
        std::fs::rename(&tmp, plugins.join("gate.wasm")).expect("rename");
        let seen = loop {
            update(sim, &targets[seq % targets.len()]).await;
            seq += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
            let log = recv.take_log();
            if let Some((at, _)) = log.iter().find(|(_, b)| {
                let has = b.windows(10).any(|w| w == b"heraldDiff");
                has == want_diff
            }) {
                break *at - t;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "swap {s} not seen");
        };
        recv.record.store(false, Ordering::Relaxed);
        times.push(seen);
        // Let the stream settle before the next swap.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    h.stop();
    Swap {
        first: times[0],
        later: times[1..].to_vec(),
    }
}

// === batch sink alone ===

/// Notifications per second through `Sinks` alone (dispatch → batch sink →
/// receiver), pre-built outcomes, no source or plugins.
async fn batch_sink(recv: &Recv, url: &str, max_objects: usize, n: usize) -> f64 {
    let cfg: herald::sink::SinkConfig = serde_json::from_value(
        json!({"name": "out", "type": "batch", "url": url, "maxObjects": max_objects}),
    )
    .expect("sink config");
    let sinks =
        Sinks::start("bench", std::slice::from_ref(&cfg), Default::default()).expect("sinks");
    let delivery = herald::pipeline::Delivery::new(
        sinks.clone(),
        herald::pipeline::Routes::new(&[cfg], Default::default()),
        None,
    );
    let pod = fixtures::pod("bench-000", "pod-00000", &[("app", "seed")]);
    let outcomes: Vec<Outcome> = (0..n)
        .map(|i| {
            let mut object = pod.clone();
            object["metadata"]["uid"] = json!(format!("uid-{}", i % 1000));
            object["metadata"]["resourceVersion"] = json!(i.to_string());
            Outcome {
                change: ChangeType::Modified,
                gvk: herald::change::Gvk {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "Pod".into(),
                },
                watch: "pods".into(),
                namespace: Some("bench-000".into()),
                name: format!("pod-{:05}", i % 1000),
                uid: format!("uid-{}", i % 1000),
                observed_at: std::time::SystemTime::now(),
                object: object.into(),
                old: None,
                fate: Fate::Deliver { routes: vec![] },
                record: vec![],
                stream: "pods".into(),
                plugins: Vec::new(),
            }
        })
        .collect();
    let base = recv.items();
    let t = Instant::now();
    let feeder = tokio::task::spawn_blocking(move || {
        use herald::pipeline::Deliver;
        for o in outcomes {
            delivery.deliver(o, None);
        }
    });
    assert!(
        recv.wait_items(base + n as u64, Duration::from_secs(120))
            .await
    );
    let rate = n as f64 / t.elapsed().as_secs_f64();
    feeder.await.expect("feeder");
    sinks.close(Duration::from_secs(5)).await;
    rate
}

// === seeding ===

async fn seed_pods(sim: &Sim, from: usize, to: usize) {
    for i in from / PER_NS..to / PER_NS {
        sim.create("namespaces", json!({"metadata": {"name": ns(i)}}))
            .await
            .expect("namespace");
        sim.seed_pods(&ns(i), PER_NS).await.expect("seed");
    }
}

/// Nine custom resource types `Kind1`…`Kind9` with `PER_NS` objects each
/// (the pod fixture under another kind), in namespace `bench-000`.
async fn seed_crds(sim: &Sim) -> Vec<(String, String)> {
    let mut kinds = Vec::new();
    let template = fixtures::pod(&ns(0), "t", &[("app", "seed"), ("shard", "0")]);
    for k in 1..=9 {
        let kind = format!("Kind{k}");
        let plural = format!("kind{k}s");
        sim.add_resource(ResourceType::new(GROUP, "v1", &kind, &plural));
        for i in 0..PER_NS {
            let mut o = template.clone();
            o["apiVersion"] = json!(format!("{GROUP}/v1"));
            o["kind"] = json!(kind);
            o["metadata"]["name"] = json!(format!("obj-{i:05}"));
            sim.create(&plural, o).await.expect("create");
            if i % 500 == 499 {
                tokio::task::yield_now().await;
            }
        }
        kinds.push((kind, plural));
    }
    kinds
}

// === main ===

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        // As the `herald` binary runs.
        herald::alloc::tune();
        child(serde_json::from_str(&args[i + 1]).expect("child spec"));
        return;
    }
    // Under `cargo test --benches` (no `--bench`), only check that it starts.
    if !args.iter().any(|a| a == "--bench") {
        println!("pipeline bench: run with `cargo bench -p herald --bench pipeline`");
        return;
    }
    assert!(
        wasm_dir().join("diff.wasm").exists(),
        "run scripts/build-plugins first"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(parent());
}

struct BinaryStart {
    objects: usize,
    ready: Duration,
    rss: u64,
    /// The library child's figures at the same size (no plugins), if run.
    lib: Option<(Duration, u64)>,
    /// `herald-sysalloc` (system allocator) with the same config, if built:
    /// start → ready and RSS at ready.
    sysalloc: Option<(Duration, u64)>,
}

async fn parent() {
    let total = Instant::now();
    let sim = Simulator::builder()
        .history_retention(HISTORY)
        .start()
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let (addr, recv) = Recv::start().await;
    let batch_url = format!("http://{addr}/batch");
    let hook_url = format!("http://{addr}/hook");
    let pods_watch = vec![json!({"version": "v1", "kind": "Pod"})];

    // HERALD_BENCH_DECISIONS=1: only the decisions ring off / on at 10k pods.
    if std::env::var_os("HERALD_BENCH_DECISIONS").is_some() {
        let at = At10k::seeded(&sim, &recv, &kubeconfig, &batch_url, &pods_watch).await;
        let mut runs = Vec::new();
        // Off, on, off, on: the machine's drift shows as the spread of pairs.
        for on in [false, true, false, true] {
            DECISIONS.store(on, Ordering::Relaxed);
            let r = at.run(Plugins::Wasm, None).await;
            eprintln!(
                "decisions {on}: {:.0} events/CPU-s, {:.0} events/s",
                r.per_cpu_s(),
                r.events as f64 / r.wall.as_secs_f64()
            );
            runs.push((on, r));
        }
        report_decisions(&runs);
        return;
    }

    // HERALD_BENCH_ALLOCATOR=N: only the allocator comparison at 10k pods,
    // N rounds, each allocator first every other round.
    if let Some(rounds) = std::env::var("HERALD_BENCH_ALLOCATOR")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        seed_pods(&sim, 0, 10_000).await;
        let pod_targets = targets(&sim, &[("pods", ns(0))], PER_NS).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = binary_config(&kubeconfig, &batch_url);
        let runs = allocator_runs(&sim, &recv, &config, dir.path(), &pod_targets, rounds).await;
        report_allocators(&runs, None);
        return;
    }

    // HERALD_BENCH_RESYNC=1: only the resync of 100k pods.
    if std::env::var_os("HERALD_BENCH_RESYNC").is_some() {
        seed_pods(&sim, 0, 100_000).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let r = resync_pass(&recv, &kubeconfig, &batch_url, dir.path(), 100_000).await;
        report_allocators(&[], Some(&r));
        return;
    }

    // HERALD_BENCH_LATENCY=1: only the latency cases at 10k pods.
    if std::env::var_os("HERALD_BENCH_LATENCY").is_some() {
        seed_pods(&sim, 0, 10_000).await;
        let pod_targets = targets(&sim, &[("pods", ns(0))], PER_NS).await;
        for l in latency_cases(&sim, &recv, &kubeconfig, &hook_url, &pod_targets).await {
            println!(
                "latency {} at {:.0}/s: p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms; cores used: herald {:.2}, simulator + receiver {:.2}, whole machine {:.2}; herald's thread switches per event {:.2}",
                l.case,
                l.rate,
                l.p50.as_secs_f64() * 1e3,
                l.p99.as_secs_f64() * 1e3,
                l.p999.as_secs_f64() * 1e3,
                l.herald_cores,
                l.bench_cores,
                l.machine_cores,
                l.switches
            );
        }
        return;
    }

    // HERALD_BENCH_THROUGHPUT=N: only the batched throughput at 10k pods, no
    // plugins then the wasm chain, N rounds, with each run's CPU by thread.
    if let Some(rounds) = std::env::var("HERALD_BENCH_THROUGHPUT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let at = At10k::seeded(&sim, &recv, &kubeconfig, &batch_url, &pods_watch).await;
        for _ in 0..rounds {
            for plugins in [Plugins::None, Plugins::Wasm] {
                let r = at.run(plugins, None).await;
                println!(
                    "throughput {}: {:.0} events/CPU-s, {:.0} events/s, {:.2} thread switches per event, whole machine {:.2} cores busy; CPU ms by thread: {}",
                    r.case,
                    r.per_cpu_s(),
                    r.events as f64 / r.wall.as_secs_f64(),
                    r.switches as f64 / r.events as f64,
                    r.machine_cores,
                    proc::by_thread(&r.threads, 8)
                );
            }
        }
        return;
    }

    // HERALD_BENCH_WORKERS=1: only the chain-workers comparison at 10k pods.
    if std::env::var_os("HERALD_BENCH_WORKERS").is_some() {
        let at = At10k::seeded(&sim, &recv, &kubeconfig, &batch_url, &pods_watch).await;
        let runs = workers_runs(&at).await;
        report_workers(&runs);
        return;
    }

    // Batch sink alone.
    let mut sink_rates = Vec::new();
    for max in [10, 100] {
        sink_rates.push((max, batch_sink(&recv, &batch_url, max, EVENTS).await));
    }
    eprintln!("batch sink alone done");

    let mut runs: Vec<Throughput> = Vec::new();
    let mut starts: Vec<BinaryStart> = Vec::new();
    let mut lat = Vec::new();
    let mut swap = None;
    let mut binary_tp = None;
    let mut allocators = Vec::new();
    let mut resync = None;
    let mut workers = Vec::new();
    let mut seeded = 0;
    let bin_dir = tempfile::tempdir().expect("tempdir");
    for level in LEVELS {
        let t = Instant::now();
        seed_pods(&sim, seeded, level).await;
        seeded = level;
        eprintln!("seeded {level} pods in {:.1} s", t.elapsed().as_secs_f64());
        let pod_targets = targets(&sim, &[("pods", ns(0))], PER_NS).await;

        // The real binary with the wasm chain and a batch sink: start-up and RSS.
        let bin_config = binary_config(&kubeconfig, &batch_url);
        let h = spawn_binary(bin_dir.path(), &bin_config).await;
        let (rss, _) = h.rss();
        let ready = h.ready_after;
        if level == 10_000 {
            drive(&sim, &recv, &h, &pod_targets, 500).await;
            let run = drive(&sim, &recv, &h, &pod_targets, EVENTS).await;
            binary_tp = Some(Throughput {
                case: format!("herald run (binary), {}", case(Plugins::Wasm, &LIGHT)),
                objects: level,
                ready,
                rss_ready: rss,
                ..Throughput::of(run)
            });
        }
        h.stop();
        if level == 10_000 {
            allocators =
                allocator_runs(&sim, &recv, &bin_config, bin_dir.path(), &pod_targets, 2).await;
        }
        if level == 100_000 {
            let r = resync_pass(&recv, &kubeconfig, &batch_url, bin_dir.path(), level).await;
            eprintln!(
                "resync {level}: {:.0} objects/CPU-s, {} notified",
                r.objects as f64 / r.cpu.as_secs_f64(),
                r.notified
            );
            resync = Some(r);
        }
        let sysalloc = match sysalloc_bin() {
            Some(sys) => {
                let h = spawn_program(&sys, bin_dir.path(), &bin_config).await;
                let r = (h.ready_after, h.rss().0);
                h.stop();
                Some(r)
            }
            None => None,
        };
        let mut start = BinaryStart {
            objects: level,
            ready,
            rss,
            lib: None,
            sysalloc,
        };
        eprintln!("binary start-up at {level} done");

        if THROUGHPUT_AT.contains(&level) {
            let mut cases = vec![
                (Plugins::None, &LIGHT),
                (Plugins::Native, &LIGHT),
                (Plugins::Wasm, &LIGHT),
            ];
            if level == 10_000 {
                cases.extend([(Plugins::Native, &DIFF), (Plugins::Wasm, &DIFF)]);
            }
            for (plugins, chain) in cases {
                let r = throughput(
                    &sim,
                    &recv,
                    &kubeconfig,
                    &batch_url,
                    &pods_watch,
                    &pod_targets,
                    level,
                    plugins,
                    chain,
                    None,
                )
                .await;
                eprintln!(
                    "throughput {level} {}: {:.0} events/CPU-s",
                    r.case,
                    r.per_cpu_s()
                );
                if plugins == Plugins::None {
                    start.lib = Some((r.ready, r.rss_ready));
                }
                runs.push(r);
            }
        }
        starts.push(start);

        if level == 1_000 {
            swap = Some(hot_swap(&sim, &recv, &kubeconfig, &hook_url, &pod_targets).await);
            eprintln!("hot swap done");
        }
        if level == 10_000 {
            workers = workers_runs(&At10k {
                sim: &sim,
                recv: &recv,
                kubeconfig: &kubeconfig,
                url: &batch_url,
                watch: &pods_watch,
                targets: pod_targets.clone(),
            })
            .await;
            lat = latency_cases(&sim, &recv, &kubeconfig, &hook_url, &pod_targets).await;
            // 10k objects in 10 types: pods of one namespace and 9 CRDs.
            let kinds = seed_crds(&sim).await;
            let mut watch = vec![json!({"version": "v1", "kind": "Pod", "namespaces": [ns(0)]})];
            let mut of = vec![("pods", ns(0))];
            for (kind, plural) in &kinds {
                watch.push(json!({"group": GROUP, "version": "v1", "kind": kind}));
                of.push((plural.as_str(), ns(0)));
            }
            let mixed = targets(&sim, &of, 100).await;
            for plugins in [Plugins::None, Plugins::Native, Plugins::Wasm] {
                let r = throughput(
                    &sim,
                    &recv,
                    &kubeconfig,
                    &batch_url,
                    &watch,
                    &mixed,
                    10_000,
                    plugins,
                    &LIGHT,
                    None,
                )
                .await;
                eprintln!(
                    "throughput 10 types {plugins:?}: {:.0} events/CPU-s",
                    r.per_cpu_s()
                );
                runs.push(r);
            }
        }
    }

    report(
        &runs,
        binary_tp.as_ref(),
        &lat,
        &starts,
        swap.as_ref(),
        &sink_rates,
    );
    report_workers(&workers);
    report_allocators(&allocators, resync.as_ref());
    println!();
    println!(
        "total {:.0} s (seeding included); machine: {} cores, shared",
        total.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

/// The wasm chain (filter → prune → route) at 10k pods with 1, then 2
/// chain workers (issue 16: ≥ 1.7x events per wall-second with 2).
async fn workers_runs(at: &At10k<'_>) -> Vec<Throughput> {
    let mut runs = Vec::new();
    for n in [1, 2] {
        let r = at.run(Plugins::Wasm, Some(n)).await;
        eprintln!(
            "throughput {}: {:.0} events/CPU-s, {:.0} events/s, whole machine {:.2} cores busy",
            r.case,
            r.per_cpu_s(),
            r.events as f64 / r.wall.as_secs_f64(),
            r.machine_cores
        );
        runs.push(r);
    }
    runs
}

/// What a throughput run at 10k pods with the headline chain needs: the
/// simulator, the receiver and the pods to write.
struct At10k<'a> {
    sim: &'a Sim,
    recv: &'a Recv,
    kubeconfig: &'a Path,
    url: &'a str,
    watch: &'a [Value],
    targets: Targets,
}

impl<'a> At10k<'a> {
    /// Seeds the simulator with 10k pods (for the modes that run one part
    /// alone) and picks the pods to write.
    async fn seeded(
        sim: &'a Sim,
        recv: &'a Recv,
        kubeconfig: &'a Path,
        url: &'a str,
        watch: &'a [Value],
    ) -> Self {
        seed_pods(sim, 0, 10_000).await;
        let targets = targets(sim, &[("pods", ns(0))], PER_NS).await;
        At10k {
            sim,
            recv,
            kubeconfig,
            url,
            watch,
            targets,
        }
    }

    /// One [`throughput`] run of 10k pods with `plugins` (the headline
    /// chain) and `workers`.
    async fn run(&self, plugins: Plugins, workers: Option<usize>) -> Throughput {
        throughput(
            self.sim,
            self.recv,
            self.kubeconfig,
            self.url,
            self.watch,
            &self.targets,
            10_000,
            plugins,
            &LIGHT,
            workers,
        )
        .await
    }
}

fn report_decisions(runs: &[(bool, Throughput)]) {
    println!();
    println!(
        "## Decisions ring: 10k pods, wasm filter → prune → route → batch sink, {EVENTS} MODIFIED events"
    );
    println!();
    println!("| run | decisions | events per CPU-s | wall events/s |");
    println!("| ---: | --- | ---: | ---: |");
    for (i, (on, r)) in runs.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {:.0} |",
            i + 1,
            if *on { "on (16 MiB)" } else { "off" },
            r.per_cpu_s(),
            r.events as f64 / r.wall.as_secs_f64()
        );
    }
    let mean = |on: bool| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|(o, _)| *o == on)
            .map(|(_, r)| r.per_cpu_s())
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let ratio = mean(true) / mean(false);
    println!();
    println!(
        "SUMMARY|decisions on / off, events per CPU-s (mean of 2 runs each)|{:.0} / {:.0}|off|{ratio:.3}x|≥ 0.95x|{}",
        mean(true),
        mean(false),
        if ratio >= 0.95 { "yes" } else { "**no**" }
    );
}

fn report_workers(runs: &[Throughput]) {
    let [one, two] = runs else { return };
    let wall = |r: &Throughput| r.events as f64 / r.wall.as_secs_f64();
    println!();
    println!(
        "## Chain workers: 10k pods, wasm filter → prune → route → batch sink, {EVENTS} MODIFIED events"
    );
    println!();
    println!(
        "| workers | events per CPU-s | wall events/s | vs 1 worker (wall) | machine cores busy | CPU ms by thread |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | --- |");
    for r in runs {
        println!(
            "| {} | {:.0} | {:.0} | {:.2}x | {:.2} of {} | {} |",
            r.workers.unwrap_or(0),
            r.per_cpu_s(),
            wall(r),
            wall(r) / wall(one),
            r.machine_cores,
            proc::machine().cores(),
            proc::by_thread(&r.threads, 6)
        );
    }
    // Events per wall-second can grow by no more than the idle part of the
    // machine with one worker lets them (and less: a second worker adds
    // work of its own, and the simulator and receiver grow with the rate).
    let ceiling = proc::machine().cores() as f64 / one.machine_cores.max(f64::EPSILON);
    println!();
    println!(
        "With 1 worker the machine had {:.2} of its {} cores busy: on it, no number of workers can raise the wall rate above {ceiling:.2}x.",
        one.machine_cores,
        proc::machine().cores()
    );
    let ratio = wall(two) / wall(one);
    println!();
    println!(
        "SUMMARY|2 chain workers vs 1, 10k pods, wasm filter → prune → route: events per wall-s|{:.0}|1 worker {:.0} (machine ceiling {ceiling:.2}x)|{ratio:.2}x|≥ 1.7x|{}",
        wall(two),
        wall(one),
        if ratio >= 1.7 { "yes" } else { "**no**" }
    );
    println!(
        "SUMMARY|same, events per CPU-s, 2 workers / 1|{:.0} / {:.0}|–|{:.2}x|none|–",
        two.per_cpu_s(),
        one.per_cpu_s(),
        two.per_cpu_s() / one.per_cpu_s()
    );
}

fn report(
    runs: &[Throughput],
    binary: Option<&Throughput>,
    lat: &[Latency],
    starts: &[BinaryStart],
    swap: Option<&Swap>,
    sinks: &[(usize, f64)],
) {
    let find = |objects: usize, types: usize, p: Plugins, chain: &[&str]| {
        runs.iter().find(|r| {
            r.objects == objects
                && r.types == types
                && r.workers.is_none()
                && r.plugins == p
                && (p == Plugins::None || r.chain == chain)
        })
    };
    println!();
    println!(
        "## 1. Throughput: watch → plugins → batch sink (maxObjects 10), {EVENTS} MODIFIED events of ~6.6 KB pods"
    );
    println!();
    println!(
        "| objects cached | types | plugins | events per CPU-s | µs CPU per event | vs native | wall events/s | CPU share: pipeline threads (intake and commit, chain workers) / tokio workers |"
    );
    println!("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for r in runs.iter().chain(binary) {
        let native = find(r.objects, r.types, Plugins::Native, r.chain).map(|n| n.us_per_event());
        let share = |name: &str| {
            let t: Duration = r
                .threads
                .iter()
                .filter(|(n, _)| n.starts_with(name))
                .map(|(_, d)| *d)
                .sum();
            100.0 * t.as_secs_f64() / r.cpu.as_secs_f64()
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {} | {:.0} | {:.0} % / {:.0} % |",
            r.objects,
            r.types,
            r.case,
            r.per_cpu_s(),
            r.us_per_event(),
            native.map_or("-".into(), |n| format!("{:.2}x", r.us_per_event() / n)),
            r.events as f64 / r.wall.as_secs_f64(),
            share("herald-pipeline") + share("herald-chain"),
            share("tokio-rt"),
        );
    }
    println!();
    println!("Threads of each run (CPU ms):");
    for r in runs.iter().chain(binary) {
        println!(
            "- {} objects, {} types, {}: {}",
            r.objects,
            r.types,
            r.case,
            proc::by_thread(&r.threads, usize::MAX)
        );
    }
    println!();
    println!("Batch sink alone (dispatch → batch → receiver, {EVENTS} notifications):");
    println!();
    println!("| maxObjects | events/s (wall) |");
    println!("| ---: | ---: |");
    for (m, r) in sinks {
        println!("| {m} | {r:.0} |");
    }
    println!();
    println!(
        "## 2. Latency: simulator write → receiver receipt, unbatched webhook (old: patch), 1,000 and 5,000 events/s"
    );
    println!();
    println!(
        "| plugins | events | rate/s | p50 ms | p99 ms | p999 ms | max ms | cores: herald | cores: simulator + receiver | cores: whole machine |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for l in lat {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            l.case,
            l.events,
            l.rate,
            ms(l.p50),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            l.herald_cores,
            l.bench_cores,
            l.machine_cores
        );
    }
    println!();
    println!("## 3/4. Start → ready and RSS at ready, pods");
    println!();
    println!(
        "| pods | herald run (binary, 3 wasm plugins) s | its RSS MiB | herald-sysalloc (glibc malloc) s | its RSS MiB | RSS herald / glibc | library pipeline, no plugins s | its RSS MiB |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in starts {
        let (lr, lm) = s.lib.map_or(("-".into(), "-".into()), |(r, m)| {
            (
                format!("{:.2}", r.as_secs_f64()),
                format!("{:.0}", proc::mib(m)),
            )
        });
        let (sr, sm, ratio) = s
            .sysalloc
            .map_or(("-".into(), "-".into(), "-".into()), |(r, m)| {
                (
                    format!("{:.2}", r.as_secs_f64()),
                    format!("{:.0}", proc::mib(m)),
                    format!("{:.2}x", s.rss as f64 / m as f64),
                )
            });
        println!(
            "| {} | {:.2} | {:.0} | {sr} | {sm} | {ratio} | {lr} | {lm} |",
            s.objects,
            s.ready.as_secs_f64(),
            proc::mib(s.rss)
        );
    }
    println!();
    println!("Library children at ready (start → ready s, RSS MiB):");
    for r in runs {
        println!(
            "- {} objects, {} types, {}: {:.2} s, {:.0} MiB",
            r.objects,
            r.types,
            r.case,
            r.ready.as_secs_f64(),
            proc::mib(r.rss_ready)
        );
    }
    summary(runs, binary, lat, starts, swap, sinks);
    if let Some(s) = swap {
        println!();
        println!(
            "## 5. Hot swap (herald run): file renamed into the plugin dir → first notification from the new version"
        );
        println!();
        println!(
            "first (compiles the new version): {:.0} ms; later (compiled before): {}",
            ms(s.first),
            s.later
                .iter()
                .map(|d| format!("{:.0} ms", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// The headline figures as `SUMMARY|figure|value|baseline|ratio|target|met`
/// lines for `scripts/bench`.
fn summary(
    runs: &[Throughput],
    binary: Option<&Throughput>,
    lat: &[Latency],
    starts: &[BinaryStart],
    swap: Option<&Swap>,
    sinks: &[(usize, f64)],
) {
    let find = |objects: usize, types: usize, p: Plugins, chain: &[&str]| {
        runs.iter().find(|r| {
            r.objects == objects
                && r.types == types
                && r.workers.is_none()
                && r.plugins == p
                && (p == Plugins::None || r.chain == chain)
        })
    };
    for (objects, types) in [(1_000, 1), (10_000, 1), (100_000, 1), (10_000, 10)] {
        let (Some(w), Some(n), Some(f)) = (
            find(objects, types, Plugins::Wasm, &LIGHT),
            find(objects, types, Plugins::Native, &LIGHT),
            find(objects, types, Plugins::None, &LIGHT),
        ) else {
            continue;
        };
        let ratio = w.us_per_event() / n.us_per_event();
        println!(
            "SUMMARY|end to end, {}k objects in {types} type(s), wasm filter → prune → route: events per CPU-s|{:.0}|native plugins {:.0}, no plugins {:.0}|{ratio:.2}x native|≥ 25,000/s per core; ≤ 1.3x native|{} / {}",
            objects / 1000,
            w.per_cpu_s(),
            n.per_cpu_s(),
            f.per_cpu_s(),
            yes(w.per_cpu_s() >= 25_000.0),
            yes(ratio <= 1.3),
        );
    }
    if let (Some(w), Some(n)) = (
        find(10_000, 1, Plugins::Wasm, &DIFF),
        find(10_000, 1, Plugins::Native, &DIFF),
    ) {
        let ratio = w.us_per_event() / n.us_per_event();
        println!(
            "SUMMARY|end to end, 10k pods, wasm filter → prune → diff: events per CPU-s|{:.0}|native plugins {:.0}|{ratio:.2}x native|≥ 25,000/s per core; ≤ 1.3x native|{} / {}",
            w.per_cpu_s(),
            n.per_cpu_s(),
            yes(w.per_cpu_s() >= 25_000.0),
            yes(ratio <= 1.3),
        );
    }
    if let (Some(b), Some(w)) = (binary, find(10_000, 1, Plugins::Wasm, &LIGHT)) {
        println!(
            "SUMMARY|end to end, herald run binary, 10k pods, wasm filter → prune → route: events per CPU-s|{:.0}|library pipeline {:.0}|{:.2}x|≥ 25,000/s per core|{}",
            b.per_cpu_s(),
            w.per_cpu_s(),
            b.per_cpu_s() / w.per_cpu_s(),
            yes(b.per_cpu_s() >= 25_000.0)
        );
    }
    for (m, r) in sinks {
        println!("SUMMARY|batch sink alone (maxObjects {m}), events/s wall|{r:.0}|–|–|none|–");
    }
    for l in lat {
        println!(
            "SUMMARY|latency write → receipt, webhook, {:.0}/s, {}: p50 / p99 / p999 ms|{:.2} / {:.2} / {:.2}|–|–|p99 ≤ 5 ms|{}",
            l.rate,
            l.case,
            ms(l.p50),
            ms(l.p99),
            ms(l.p999),
            yes(l.p99 <= Duration::from_millis(5))
        );
    }
    for s in starts.iter().filter(|s| s.objects >= 50_000) {
        if let Some((_, sys)) = s.sysalloc {
            println!(
                "SUMMARY|RSS at ready, herald run, {}k pods, 3 wasm plugins: herald's allocator / glibc malloc, MiB|{:.0}|glibc {:.0}|{:.2}x|none (issue 16: no regression)|–",
                s.objects / 1000,
                proc::mib(s.rss),
                proc::mib(sys),
                s.rss as f64 / sys as f64
            );
        }
    }
    if let (Some(s1), Some(s50)) = (
        starts.iter().find(|s| s.objects == 1_000),
        starts.iter().find(|s| s.objects == 50_000),
    ) {
        println!(
            "SUMMARY|start → ready, herald run, 50k pods, 3 wasm plugins (compiled at start), s|{:.2}|1k pods {:.2}|{:.1}x|≤ 10 s|{}",
            s50.ready.as_secs_f64(),
            s1.ready.as_secs_f64(),
            s50.ready.as_secs_f64() / s1.ready.as_secs_f64(),
            yes(s50.ready <= Duration::from_secs(10))
        );
    }
    if let Some(s) = swap {
        let later = common::median(s.later.clone());
        println!(
            "SUMMARY|hot swap, file renamed → new version's first notification, ms|{:.0} (first, compiling), {:.0} (later, median)|–|–|none|–",
            ms(s.first),
            ms(later)
        );
    }
}

/// `wasm filter → prune → route`, `no plugins`.
fn case(plugins: Plugins, chain: &[&str]) -> String {
    match plugins {
        Plugins::None => "no plugins".into(),
        Plugins::Wasm => format!("wasm {}", chain.join(" → ")),
        Plugins::Native => format!("native {}", chain.join(" → ")),
    }
}
