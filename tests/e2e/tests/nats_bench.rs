//! Not a test: the NATS sink's benchmark (BENCHMARKS.md, issue 17), run by
//! hand with `cargo test -p herald --test e2e --release nats_bench -- --ignored --nocapture`.
//! The same 10,000 changes (1,000 creates, 9,000 updates) go through herald
//! into NATS JetStream and into the batch HTTP sink, alternately, in one
//! run: events per herald CPU-second (utime + stime of the herald process
//! from `/proc`) over that burst; then 1,000 more updates paced at one per
//! 5 ms, whose latency from herald seeing a change to the broker storing
//! it (JetStream's timestamp) or the receiver getting it is the publish
//! latency (the burst's own latencies are mostly time spent queued).

use std::time::{Duration, SystemTime};

use herald_e2e::nats::NatsServer;
use herald_e2e::receiver::Receiver;
use herald_e2e::{Cluster, HeraldProcess, wait_http_ok};
use serde_json::json;

const NS: &str = "bench";
const OBJECTS: usize = 1000;
const UPDATES: usize = 9000;
const PACED: usize = 1000;

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

fn time_of(envelope: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339(envelope["time"].as_str().expect("time")).expect("RFC 3339")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// (events per herald CPU-second, p50 ms, p99 ms) of one run.
async fn run(kind: &str, nats: &NatsServer, hook: &Receiver, round: usize) -> (f64, f64, f64) {
    let c = Cluster::start(Duration::from_secs(1)).await;
    let sink = match kind {
        "nats" => format!(
            "  - {{ name: out, type: nats, url: {}, old: none, subject: 'bench{round}.{{kind}}.{{namespace}}' }}",
            nats.url()
        ),
        _ => format!(
            "  - {{ name: out, type: batch, url: {}, maxObjects: 100, interval: 100ms }}",
            hook.url(&format!("/r{round}"))
        ),
    };
    let cfg = c.config(&format!(
        "cluster: bench\nwatch:\n  - {{ version: v1, kind: ConfigMap, namespaces: [{NS}] }}\nsinks:\n{sink}\n"
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &cfg);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let stream = format!("BENCH{round}");
    if kind == "nats" {
        nats.create_stream(
            &stream,
            &[&format!("bench{round}.>")],
            Duration::from_secs(120),
        )
        .await;
    }
    let cpu0 = cpu_seconds(herald.pid());
    for i in 0..OBJECTS {
        c.sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map(NS, &format!("o{i:05}"), &[("v", "0")]),
            )
            .await
            .expect("create");
    }
    for k in 0..UPDATES {
        let mut cm = c
            .sim
            .get("configmaps", NS, &format!("o{:05}", (k * 7) % OBJECTS))
            .await
            .expect("get");
        cm["data"]["v"] = json!(format!("u{k}"));
        c.sim.update("configmaps", cm).await.expect("update");
    }
    let total = OBJECTS + UPDATES;
    let path = format!("/r{round}");
    let count = |r: &[herald_e2e::receiver::Request]| -> usize {
        r.iter()
            .filter(|q| q.path == path)
            .map(|q| q.json()["items"].as_array().map_or(0, Vec::len))
            .sum()
    };
    let arrived = |n: usize| async move {
        if kind == "nats" {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while nats.count(&format!("BENCH{round}")).await < n as u64 {
                assert!(std::time::Instant::now() < deadline, "not all stored");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            assert!(
                hook.wait_for(Duration::from_secs(120), |r| count(r) >= n)
                    .await,
                "not all received"
            );
        }
    };
    arrived(total).await;
    let cpu = cpu_seconds(herald.pid()) - cpu0;
    for k in 0..PACED {
        let mut cm = c
            .sim
            .get("configmaps", NS, &format!("o{:05}", k % OBJECTS))
            .await
            .expect("get");
        cm["data"]["v"] = json!(format!("p{k}"));
        c.sim.update("configmaps", cm).await.expect("update");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    arrived(total + PACED).await;
    // The paced updates' latencies: what arrived after the burst.
    let mut latencies: Vec<f64> = Vec::with_capacity(PACED);
    if kind == "nats" {
        for (stored_at, envelope) in nats.read_all_timed(&stream).await.into_iter().skip(total) {
            let d = stored_at
                .duration_since(time_of(&envelope))
                .unwrap_or_default();
            latencies.push(d.as_secs_f64() * 1000.0);
        }
    } else {
        let mut requests: Vec<_> = hook
            .requests()
            .into_iter()
            .filter(|q| q.path == path)
            .collect();
        requests.sort_by_key(|q| q.seq);
        let items = requests.iter().flat_map(|q| {
            q.json()["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |i| (q.time, i))
        });
        for (at, item) in items.skip(total) {
            let d = at.duration_since(time_of(&item)).unwrap_or_default();
            latencies.push(d.as_secs_f64() * 1000.0);
        }
    }
    assert_eq!(latencies.len(), PACED);
    summarise(total, cpu, latencies)
}

fn summarise(total: usize, cpu: f64, mut latencies: Vec<f64>) -> (f64, f64, f64) {
    latencies.sort_by(f64::total_cmp);
    (
        total as f64 / cpu,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand (see the module doc)"]
async fn nats_bench() {
    let nats = NatsServer::start(&[]).await;
    let hook = Receiver::ok().await;
    let mut rows: Vec<(String, (f64, f64, f64))> = Vec::new();
    for round in 0..4 {
        let kind = if round % 2 == 0 { "batch" } else { "nats" };
        let r = run(kind, &nats, &hook, round).await;
        eprintln!(
            "round {round} {kind}: {:.0} events/CPU-s, p50 {:.1} ms, p99 {:.1} ms",
            r.0, r.1, r.2
        );
        rows.push((kind.into(), r));
    }
    let mean = |kind: &str, f: fn(&(f64, f64, f64)) -> f64| -> f64 {
        let v: Vec<f64> = rows
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, r)| f(r))
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (nb, nn) = (mean("batch", |r| r.0), mean("nats", |r| r.0));
    println!(
        "| sink | events per herald CPU-second (10,000-change burst) | change → stored/received p50 (paced, 200/s) | p99 |"
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| batch HTTP (maxObjects 100, interval 100ms) | {nb:.0} | {:.1} ms | {:.1} ms |",
        mean("batch", |r| r.1),
        mean("batch", |r| r.2)
    );
    println!(
        "| NATS JetStream (maxInFlight 256) | {nn:.0} | {:.1} ms | {:.1} ms |",
        mean("nats", |r| r.1),
        mean("nats", |r| r.2)
    );
    println!("\nNATS / batch, events per CPU-second: {:.2}", nn / nb);
}
