//! herald against a real API server (issue 19), beside the simulator in the same run.
//!
//! The pipeline bench's workload — pods of the fixture size (~6.6 KB), created, then
//! label updates, then deletes — written by `herald-load` (a kube-rs client that is
//! not herald, several writers) to:
//!
//! 1. a real kube-apiserver v1.28.7 with etcd (`../shared/k8s/start`, HTTPS, token
//!    auth), as fast as it takes them;
//! 2. the simulator (`herald-sim`, its own process), as fast as it takes them;
//! 3. the simulator paced at the rate the real server achieved in 1;
//! 4. the same with `--real-writes`: objects get `managedFields` (and a new pod's
//!    status) as the real server writes them — the simulator figure for the same case.
//!
//! In each, `herald run` (the release binary, a kubeconfig, one watch on the pods'
//! namespace, no plugins) delivers every change to an unbatched raw webhook, a real
//! HTTP server in this process. Reported per case: events per herald CPU-second
//! (`utime + stime` of its `/proc/PID/stat`), user and system shares, CPU by thread,
//! peak RSS, write → receipt latency, the server's own CPU per write (kube-apiserver
//! + etcd, or the simulator process), and herald's idle CPU before the load.
//!
//! Sizes: `HERALD_BENCH_REAL_PODS` (600), `HERALD_BENCH_REAL_UPDATES` (3000),
//! `HERALD_BENCH_REAL_WRITERS` (4). `HERALD_BENCH_PERF=DIR`: a `perf record` of herald
//! per case (`DIR/<case>.data`) and a table of where its CPU goes.
//!
//! Run: `scripts/bench real` (builds `herald-load` and `herald-sim` in release first).

mod common;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{perf, proc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const NAMESPACE: &str = "bench-real";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A binary of this workspace beside the `herald` that cargo built for the bench.
fn sibling(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_herald")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: run `scripts/bench real` (it builds herald-load and herald-sim)",
        p.display()
    );
    p
}

// === receiver ===

/// A loopback HTTP/1 receiver: 200 to everything; per notification, the receipt time
/// and the envelope's `resourceVersion`.
#[derive(Default)]
struct Recv {
    items: AtomicU64,
    log: Mutex<Vec<(u128, String)>>,
}

impl Recv {
    async fn start() -> (String, Arc<Recv>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let state = Arc::new(Recv::default());
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let st = st.clone();
                        async move {
                            let body = match BodyExt::collect(req.into_body()).await {
                                Ok(b) => b.to_bytes(),
                                Err(_) => Bytes::new(),
                            };
                            let at = unix_ns();
                            let rv = serde_json::from_slice::<Value>(&body)
                                .ok()
                                .and_then(|v| v["resourceVersion"].as_str().map(str::to_string))
                                .unwrap_or_default();
                            st.log.lock().expect("log").push((at, rv));
                            st.items.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (url, state)
    }

    fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }

    async fn wait_items(&self, n: u64, timeout: Duration) -> bool {
        let t = Instant::now();
        while self.items() < n {
            if t.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }
}

// === processes ===

/// `herald run` on `kubeconfig`, watching the pods of [`NAMESPACE`] into `hook`.
struct Herald {
    proc: Child,
    _dir: tempfile::TempDir,
}

impl Herald {
    async fn start(kubeconfig: &Path, hook: &str) -> Herald {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics = herald_e2e::free_port();
        let config = json!({
            "cluster": "bench",
            "kubeconfig": kubeconfig,
            "watch": [{"version": "v1", "kind": "Pod", "namespaces": [NAMESPACE]}],
            "sinks": [{"name": "out", "type": "webhook", "url": hook, "format": "raw"}],
            "api": {"listen": format!("127.0.0.1:{}", herald_e2e::free_port()), "auth": "none"},
            "metrics": {"listen": format!("127.0.0.1:{metrics}")},
        });
        let path = dir.path().join("herald.yaml");
        std::fs::write(&path, config.to_string()).expect("config");
        let proc = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("HERALD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn herald");
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{metrics}/readyz");
        let t = Instant::now();
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "herald not ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Herald { proc, _dir: dir }
    }

    fn pid(&self) -> u32 {
        self.proc.id()
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// The simulator as a process of its own, so its CPU is measured apart.
struct SimProc {
    proc: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl SimProc {
    /// With `real_writes`, objects get managedFields as the real server's do.
    fn start(real_writes: bool) -> SimProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut proc = Command::new(sibling("herald-sim"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--history",
                "1000000",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .args(real_writes.then_some("--real-writes"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn herald-sim");
        let mut line = String::new();
        BufReader::new(proc.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("herald-sim output");
        assert!(line.starts_with("http"), "herald-sim said {line:?}");
        SimProc {
            proc,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

// === one case ===

struct Case {
    name: String,
    events: u64,
    writes: u64,
    write_secs: f64,
    wall: Duration,
    user: Duration,
    sys: Duration,
    idle_per_s: Duration,
    peak_rss: u64,
    threads: Vec<(String, Duration)>,
    server_cpu: Duration,
    p50: Duration,
    p99: Duration,
    profile: Option<perf::Profile>,
}

impl Case {
    fn cpu(&self) -> Duration {
        self.user + self.sys
    }
    fn per_cpu_s(&self) -> f64 {
        self.events as f64 / self.cpu().as_secs_f64()
    }
    fn us_per_event(&self) -> f64 {
        self.cpu().as_secs_f64() * 1e6 / self.events as f64
    }
    fn write_rate(&self) -> f64 {
        self.writes as f64 / self.write_secs
    }
}

struct Load {
    pods: usize,
    updates: usize,
    writers: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the load against `kubeconfig` with herald watching; `server` are the pids
/// whose CPU is the server's.
async fn run_case(
    name: &str,
    kubeconfig: &Path,
    server: &[u32],
    load: &Load,
    rate: f64,
    hook: &str,
    recv: &Recv,
) -> Case {
    let h = Herald::start(kubeconfig, hook).await;
    let pid = h.pid();
    // Idle: what herald costs with nothing to do, from its threads' schedstat
    // (nanoseconds; `stat`'s 10 ms ticks are too coarse for 3 s).
    let busy = || proc::threads(pid).values().sum::<Duration>();
    let b0 = busy();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_per_s = busy().saturating_sub(b0) / 3;

    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("writes.tsv");
    let base = recv.items();
    recv.log.lock().expect("log").clear();
    let server_cpu = || server.iter().map(|p| proc::cpu(*p)).sum::<Duration>();
    let srv0 = server_cpu();
    let (u0, s0) = proc::cpu_split(pid);
    let th0 = proc::threads(pid);
    let profile = perf::Recording::start(name, pid);
    let t0 = Instant::now();
    let mut cmd = tokio::process::Command::new(sibling("herald-load"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", NAMESPACE])
        .args(["--pods", &load.pods.to_string()])
        .args(["--updates", &load.updates.to_string()])
        .args(["--writers", &load.writers.to_string()])
        .args(["--rate", &format!("{rate:.1}")])
        .arg("--log")
        .arg(&log);
    let out = cmd.output().await.expect("run herald-load");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "herald-load failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let write_secs: f64 = said
        .split_whitespace()
        .skip_while(|w| *w != "seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("herald-load summary");
    let events = (2 * load.pods + load.updates) as u64;
    let all = recv
        .wait_items(base + events, Duration::from_secs(300))
        .await;
    assert!(
        all,
        "{name}: only {} of {events} notifications arrived",
        recv.items() - base
    );
    let wall = t0.elapsed();
    let (u1, s1) = proc::cpu_split(pid);
    let server_cpu = server_cpu() - srv0;
    let mut threads: Vec<(String, Duration)> = proc::threads_delta(&th0, &proc::threads(pid))
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.1));
    let profile = profile.map(perf::Recording::finish);
    let peak_rss = proc::status_kb(pid, "VmHWM:");
    drop(h);

    let writes: std::collections::HashMap<String, u128> = std::fs::read_to_string(&log)
        .expect("writes log")
        .lines()
        .filter_map(|l| {
            let (rv, t) = l.split_once('\t')?;
            Some((rv.to_string(), t.parse().ok()?))
        })
        .collect();
    let mut lat: Vec<Duration> = recv
        .log
        .lock()
        .expect("log")
        .iter()
        .filter_map(|(at, rv)| {
            let w = writes.get(rv)?;
            Some(Duration::from_nanos(at.saturating_sub(*w) as u64))
        })
        .collect();
    lat.sort();
    eprintln!(
        "{name}: {events} events, {} latencies matched, {:.1} s of writes",
        lat.len(),
        write_secs
    );
    Case {
        name: name.into(),
        events,
        writes: writes.len() as u64,
        write_secs,
        wall,
        user: u1 - u0,
        sys: s1 - s0,
        idle_per_s,
        peak_rss,
        threads,
        server_cpu,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        profile,
    }
}

// === main ===

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Under `cargo test --benches` (no `--bench`), only check that it starts.
    if !args.iter().any(|a| a == "--bench") {
        println!("real bench: run with `scripts/bench real`");
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(parent());
}

async fn parent() {
    let total = Instant::now();
    let load = Load {
        pods: env_usize("HERALD_BENCH_REAL_PODS", 600),
        updates: env_usize("HERALD_BENCH_REAL_UPDATES", 3_000),
        writers: env_usize("HERALD_BENCH_REAL_WRITERS", 4),
    };
    let (hook, recv) = Recv::start().await;

    // 1. The real API server. No controllers run, so no `default` ServiceAccount
    // exists: its admission plugin is off, which also keeps the pods as written.
    if std::env::var_os("K8S_APISERVER_ARGS").is_none() {
        // SAFETY: set before any other thread reads the environment.
        unsafe {
            std::env::set_var(
                "K8S_APISERVER_ARGS",
                "--disable-admission-plugins=ServiceAccount",
            )
        };
    }
    let real = tokio::task::spawn_blocking(herald_e2e::k8s::RealApiServer::start)
        .await
        .expect("start")
        .unwrap_or_else(|e| panic!("{e}"));
    let pids: Vec<u32> = ["apiserver.pid", "etcd.pid"]
        .iter()
        .filter_map(|f| {
            std::fs::read_to_string(real.dir.join(f))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    let real_case = run_case(
        "real kube-apiserver",
        &real.kubeconfig,
        &pids,
        &load,
        0.0,
        &hook,
        &recv,
    )
    .await;
    drop(real);

    // 2.–4. The simulator: as fast, at the real server's pace, and at that pace
    // writing objects as the real server does (managedFields).
    let mut cases = vec![real_case];
    let paced = cases[0].write_rate();
    for (name, rate, real_writes) in [
        ("simulator, as fast".to_string(), 0.0, false),
        (format!("simulator, {paced:.0} writes/s"), paced, false),
        (
            format!("simulator, {paced:.0} writes/s, real writes"),
            paced,
            true,
        ),
    ] {
        let sim = SimProc::start(real_writes);
        let c = run_case(
            &name,
            &sim.kubeconfig,
            &[sim.proc.id()],
            &load,
            rate,
            &hook,
            &recv,
        )
        .await;
        cases.push(c);
    }
    report(&cases, &load);
    println!();
    println!(
        "total {:.0} s; machine: {} cores, shared",
        total.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(cases: &[Case], load: &Load) {
    println!(
        "## herald against a real API server and the simulator: {} pods of ~6.6 KB, {} label updates, {} deletes, {} writers, unbatched raw webhook, no plugins",
        load.pods, load.updates, load.pods, load.writers
    );
    println!();
    println!(
        "| case | writes/s | events per herald CPU-s | µs CPU per event | user / sys | idle CPU ms/s | peak RSS MiB | latency p50 / p99 ms | server CPU ms per write |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for c in cases {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} % / {:.0} % | {:.1} | {:.0} | {:.2} / {:.2} | {:.2} |",
            c.name,
            c.write_rate(),
            c.per_cpu_s(),
            c.us_per_event(),
            100.0 * c.user.as_secs_f64() / c.cpu().as_secs_f64(),
            100.0 * c.sys.as_secs_f64() / c.cpu().as_secs_f64(),
            ms(c.idle_per_s),
            proc::mib(c.peak_rss),
            ms(c.p50),
            ms(c.p99),
            ms(c.server_cpu) / c.writes.max(1) as f64,
        );
    }
    println!();
    println!("herald's CPU by thread (ms), and wall time of the case:");
    for c in cases {
        println!(
            "- {} ({:.1} s): {}",
            c.name,
            c.wall.as_secs_f64(),
            proc::by_thread(&c.threads, 8)
        );
    }
    if cases.iter().any(|c| c.profile.is_some()) {
        perf::report(
            &cases
                .iter()
                .filter_map(|c| {
                    Some((
                        c.name.as_str(),
                        c.profile.as_ref()?,
                        c.events,
                        c.user,
                        c.sys,
                    ))
                })
                .collect::<Vec<_>>(),
        );
    }
    let [real, fast, paced_as_written, paced] = cases else {
        return;
    };
    let gap = real.us_per_event() / paced.us_per_event();
    println!();
    println!(
        "SUMMARY|real kube-apiserver, {} pods + {} updates + {} deletes, raw webhook: herald events per CPU-s|{:.0}|simulator same pace, real writes {:.0}; as written {:.0}; as fast {:.0}|{:.2}x CPU per event vs simulator (same pace, real writes)|≤ 2x|{}",
        load.pods,
        load.updates,
        load.pods,
        real.per_cpu_s(),
        paced.per_cpu_s(),
        paced_as_written.per_cpu_s(),
        fast.per_cpu_s(),
        gap,
        if gap <= 2.0 { "yes" } else { "**no**" }
    );
    println!(
        "SUMMARY|same, write → receipt p50 / p99 ms (real; simulator same pace)|{:.2} / {:.2}|{:.2} / {:.2}|–|none|–",
        ms(real.p50),
        ms(real.p99),
        ms(paced.p50),
        ms(paced.p99)
    );
    println!(
        "SUMMARY|same, herald peak RSS MiB; server CPU ms per write (real; simulator)|{:.0}; {:.2}|{:.0}; {:.2}|–|none|–",
        proc::mib(real.peak_rss),
        ms(real.server_cpu) / real.writes.max(1) as f64,
        proc::mib(paced.peak_rss),
        ms(paced.server_cpu) / paced.writes.max(1) as f64,
    );
}
