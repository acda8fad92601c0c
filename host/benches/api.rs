//! The cost of delegated auth on the query API (issue 14): the same queries
//! over loopback HTTP to the same cache, served with `api.auth: none` and
//! with `api.auth: delegated` (TokenReview and SubjectAccessReview against
//! the simulator, the decision cached), requests interleaved in one run so
//! that both see the same machine. The cached path must add under 10% at p50.
//!
//! Run: `cargo bench -p herald --bench api`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald::api::auth::Guard;
use herald::api::config::Limits;
use herald::source::{self, SourceSettings, Sources, WatchSpec};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const NAMESPACES: usize = 10;
const PER_NS: usize = 1_000;
const ROUNDS: usize = 400;
const TOKEN: &str = "bench-reader";

struct Conn {
    addr: SocketAddr,
    token: Option<&'static str>,
    send: SendRequest<Empty<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr, token: Option<&'static str>) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Self { addr, token, send }
    }

    async fn get(&mut self, path: &str) -> Bytes {
        let mut req = hyper::Request::builder()
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(t) = self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Empty::new()).expect("request");
        self.send.ready().await.expect("ready");
        let resp = self.send.send_request(req).await.expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(status.is_success(), "GET {path}: {status}");
        body
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(herald::api::serve_with(
        listener,
        router,
        None,
        Limits::default(),
        std::future::pending(),
    ));
    addr
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = herald_sim::Simulator::builder().start().await.expect("sim");
    for i in 0..NAMESPACES {
        let ns = format!("ns-{i}");
        sim.create("namespaces", json!({"metadata": {"name": ns}}))
            .await
            .expect("namespace");
        sim.seed_pods(&ns, PER_NS).await.expect("seed");
    }
    sim.add_token(TOKEN, "reader", &["readers"]);
    sim.allow("reader", &["get", "list"], "", "pods", None);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client = source::client(Some(&kubeconfig)).await.expect("client");
    let (tx, _rx) = mpsc::channel(1 << 16);
    let sources = Sources::new(client.clone(), SourceSettings::default(), tx);
    sources
        .add(WatchSpec::new("", "v1", "Pod"))
        .await
        .expect("add pods");
    while !sources.ready() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let max = Limits::default().max_list_limit;
    let open = serve(herald::api::query_router(sources.cache(), max)).await;
    let guarded = serve(
        Guard::new(client, Duration::from_secs(10), sources.cache())
            .layer(herald::api::query_router(sources.cache(), max)),
    )
    .await;
    let mut plain = Conn::open(open, None).await;
    let mut authed = Conn::open(guarded, Some(TOKEN)).await;

    println!("# Query API: delegated auth (cached decision) against no auth, same run\n");
    println!(
        "{NAMESPACES}k pods cached; one kept-alive HTTP/1 connection each; {ROUNDS} requests \
         per case, interleaved.\n"
    );
    println!(
        "| query | items | auth: none p50 / p99 ms | delegated p50 / p99 ms | delegated vs none p50 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let cases = [
        (
            "one pod",
            "/api/v1/resources/core/v1/pods/ns-3/pod-00007".to_string(),
        ),
        (
            "one namespace, limit=10",
            "/api/v1/resources/core/v1/pods?namespace=ns-3&limit=10".to_string(),
        ),
        (
            "one namespace (1k)",
            "/api/v1/resources/core/v1/pods?namespace=ns-3".to_string(),
        ),
    ];
    let mut worst: f64 = 0.0;
    for (case, path) in cases {
        let items = serde_json::from_slice::<serde_json::Value>(&plain.get(&path).await)
            .map(|v| v["items"].as_array().map_or(1, Vec::len))
            .unwrap_or(0);
        // Warm-up; the first authenticated request fills the decision cache.
        for _ in 0..20 {
            plain.get(&path).await;
            authed.get(&path).await;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            std::hint::black_box(plain.get(&path).await);
            a.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(authed.get(&path).await);
            b.push(t.elapsed());
        }
        a.sort();
        b.sort();
        let ratio = percentile(&b, 0.5).as_secs_f64() / percentile(&a, 0.5).as_secs_f64();
        worst = worst.max(ratio);
        println!(
            "| {case} | {items} | {:.3} / {:.3} | {:.3} / {:.3} | {ratio:.2}x |",
            ms(percentile(&a, 0.5)),
            ms(percentile(&a, 0.99)),
            ms(percentile(&b, 0.5)),
            ms(percentile(&b, 0.99)),
        );
    }
    println!();
    println!(
        "SUMMARY|query p50 with delegated auth (cached) vs none, worst case|{worst:.2}x|auth: none, same run|{worst:.2}x|< 1.10x|{}",
        if worst < 1.10 { "yes" } else { "no" }
    );
}
