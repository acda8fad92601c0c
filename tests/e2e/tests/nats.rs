//! The NATS JetStream sink (issue 17) against a real `nats-server -js`
//! started by the test: exactly once by `Nats-Msg-Id` and in per-object
//! order across SIGKILLs of herald and an outage of the broker, a refused
//! message dead-lettered with the broker's reason, and two clusters into
//! one stream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use herald_e2e::nats::{NatsServer, Stored};
use herald_e2e::{Cluster, HeraldProcess, http_get, wait_http_ok};
use serde_json::json;

const NS: &str = "bus";
const STREAM: &str = "HERALD";

/// A config with one nats sink `bus` (and `extra` sinks after it).
fn config(
    c: &Cluster,
    cluster: &str,
    nats: &NatsServer,
    bus: &str,
    extra: &str,
) -> std::path::PathBuf {
    c.config(&format!(
        r#"
cluster: {cluster}
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [{NS}] }}
sinks:
  - name: bus
    type: nats
    url: {url}
    old: none
    retry: {{ initialBackoff: 100ms, maxBackoff: 1s, maxAge: 10m }}
{bus}
{extra}
stateDir: {state}
"#,
        url = nats.url(),
        state = c.dir.path().join("state").display(),
    ))
}

/// The simulator's changes in the namespace: (uid, resourceVersion).
fn log(c: &Cluster) -> Vec<(String, String)> {
    c.sim
        .change_log()
        .into_iter()
        .filter(|e| e.namespace.as_deref() == Some(NS))
        .map(|e| (e.uid.clone(), e.resource_version.to_string()))
        .collect()
}

async fn create(c: &Cluster, i: usize) {
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map(NS, &format!("o{i:05}"), &[("v", "0")]),
        )
        .await
        .expect("create");
}

async fn update(c: &Cluster, i: usize, value: &str) {
    let mut cm = c
        .sim
        .get("configmaps", NS, &format!("o{i:05}"))
        .await
        .expect("get");
    cm["data"]["v"] = json!(value);
    c.sim.update("configmaps", cm).await.expect("update");
}

/// Waits until the stream holds `n` messages (and no more come for a
/// moment), for at most `wait`; the count.
async fn settle(nats: &NatsServer, n: u64, wait: Duration) -> u64 {
    let deadline = Instant::now() + wait;
    loop {
        let have = nats.count(STREAM).await;
        if have >= n || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return nats.count(STREAM).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts that `stored` holds every change of `changes` exactly once (by
/// id, and by uid and resourceVersion), and each object's changes in order.
fn assert_exactly_once_in_order(stored: &[Stored], changes: &[(String, String)]) {
    let ids: BTreeSet<&str> = stored.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), stored.len(), "an id stored twice");
    assert!(
        stored.iter().all(|m| m.id.starts_with("msg_")),
        "every message has herald's id"
    );
    for m in stored {
        assert_eq!(m.payload["id"], m.id, "Nats-Msg-Id is the envelope's id");
    }
    let keys: Vec<(String, String)> = stored
        .iter()
        .map(|m| {
            (
                m.payload["uid"].as_str().unwrap_or_default().to_string(),
                m.payload["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let have: BTreeSet<&(String, String)> = keys.iter().collect();
    assert_eq!(
        have.len(),
        keys.len(),
        "a change stored twice under two ids"
    );
    let want: BTreeSet<&(String, String)> = changes.iter().collect();
    let missing: Vec<_> = want.difference(&have).take(10).collect();
    let extra: Vec<_> = have.difference(&want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, not in the log {extra:?}"
    );
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for (uid, rv) in &keys {
        let rv: u64 = rv.parse().expect("numeric resourceVersion");
        if let Some(prev) = last.insert(uid, rv) {
            assert!(prev < rv, "{uid}: resourceVersion {rv} stored after {prev}");
        }
    }
}

async fn sink_status(c: &Cluster) -> serde_json::Value {
    let (code, body) = http_get(&c.api("/sinks")).await.expect("GET /sinks");
    assert_eq!(code, 200);
    body.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "bus").cloned())
        .expect("the bus sink in /sinks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_changes_are_stored_exactly_once_in_order_across_two_sigkills() {
    let nats = NatsServer::start(&[]).await;
    let c = Cluster::start_with(herald_sim::Simulator::builder().history_retention(100_000)).await;
    let cfg = config(
        &c,
        "one",
        &nats,
        "    stream: { name: HERALD, subjects: [\"herald.>\"], create: true, duplicateWindow: 10m }",
        "",
    );
    let start = || HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &cfg);
    let mut herald = start();
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let began = Instant::now();
    for i in 0..1000 {
        create(&c, i).await;
    }
    // 9,000 updates; herald is killed twice in the middle of them and
    // restarted while they go on.
    for k in 0..9000 {
        update(&c, (k * 7) % 1000, &format!("u{k}")).await;
        if k == 3000 || k == 6000 {
            herald.kill();
            tokio::time::sleep(Duration::from_millis(200)).await;
            herald = start();
        }
    }
    let changes = log(&c);
    assert_eq!(changes.len(), 10_000);
    let got = settle(&nats, 10_000, Duration::from_secs(120)).await;
    let elapsed = began.elapsed();
    let stored = nats.read_all(STREAM).await;
    assert_eq!(got as usize, stored.len());
    assert_exactly_once_in_order(&stored, &changes);
    let subject = &stored[0].subject;
    assert!(
        subject.starts_with("herald.one.core.configmap.bus."),
        "default subject: {subject}"
    );
    eprintln!("nats: 10,000 changes, 2 SIGKILLs, all stored once in {elapsed:?}");
    drop(herald);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_for_30s_is_retried_and_nothing_is_lost() {
    let mut nats = NatsServer::start(&[]).await;
    nats.create_stream(STREAM, &["herald.>"], Duration::from_secs(600))
        .await;
    let c = Cluster::start(Duration::from_millis(300)).await;
    let cfg = config(&c, "one", &nats, "    timeout: 2s", "");
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &cfg);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for i in 0..500 {
        create(&c, i).await;
    }
    assert_eq!(settle(&nats, 500, Duration::from_secs(60)).await, 500);
    // The broker goes away (same store, same port) for 30 s; changes go on.
    nats.stop();
    let down = Instant::now();
    for k in 0..1500 {
        update(&c, k % 500, &format!("down{k}")).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = sink_status(&c).await;
    assert!(
        s["retries"].as_u64().unwrap_or(0) > 0,
        "retried while down: {s}"
    );
    assert!(
        s["lastError"].as_str().is_some_and(|e| e.contains("NATS")),
        "{s}"
    );
    assert_eq!(s["deadLettered"], 0, "{s}");
    assert!(
        wait_http_ok(&c.probe("/healthz")).await,
        "herald is up while the broker is down"
    );
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    nats.resume().await;
    assert_eq!(settle(&nats, 2000, Duration::from_secs(90)).await, 2000);
    let stored = nats.read_all(STREAM).await;
    assert_exactly_once_in_order(&stored, &log(&c));
    let s = sink_status(&c).await;
    assert_eq!(
        (s["delivered"].as_u64(), s["deadLettered"].as_u64()),
        (Some(2000), Some(0)),
        "{s}"
    );
    drop(herald);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_dead_lettered_with_the_brokers_reason() {
    let nats = NatsServer::start(&[]).await;
    nats.create_stream(STREAM, &["herald.>"], Duration::from_secs(120))
        .await;
    // A stream that takes no message over 256 bytes: JetStream itself
    // refuses, with its own error.
    nats.jetstream()
        .await
        .create_stream(async_nats::jetstream::stream::Config {
            name: "SMALL".into(),
            subjects: vec!["small.>".into()],
            max_message_size: 256,
            ..Default::default()
        })
        .await
        .expect("create stream SMALL");
    let c = Cluster::start(Duration::from_millis(300)).await;
    let cfg = config(
        &c,
        "one",
        &nats,
        "    deadLetter: dl",
        r#"  - name: nostream
    type: nats
    url: URL
    subject: "elsewhere.{kind}.{name}"
    deadLetter: dl
  - name: small
    type: nats
    url: URL
    subject: "small.{name}"
    deadLetter: dl
  - name: dl
    type: log"#
            .replace("URL", &nats.url())
            .as_str(),
    );
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &cfg);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let big = "x".repeat(2 * 1024 * 1024);
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map(NS, "big", &[("v", big.as_str())]),
        )
        .await
        .expect("create");
    create(&c, 1).await;
    // Each sink dead-letters what it cannot publish: the 2 MB message
    // (every sink), the small one (the sink whose subject no stream holds,
    // and the one whose stream takes nothing that large).
    let mut reasons: BTreeMap<(String, String), String> = BTreeMap::new();
    for _ in 0..5 {
        let line = herald.next();
        let dl = &line["deadLetter"];
        reasons.insert(
            (
                dl["sink"].as_str().unwrap_or_default().into(),
                line["name"].as_str().unwrap_or_default().into(),
            ),
            dl["reason"].as_str().unwrap_or_default().into(),
        );
    }
    let big_reason = &reasons[&("bus".to_string(), "big".to_string())];
    assert!(
        big_reason.contains("refused by the NATS server")
            && big_reason.contains("Payload size limit of 1048576"),
        "{big_reason}"
    );
    let nostream = &reasons[&("nostream".to_string(), "o00001".to_string())];
    assert!(nostream.contains("no stream"), "{nostream}");
    assert!(
        reasons.contains_key(&("nostream".to_string(), "big".to_string())),
        "{reasons:?}"
    );
    let small = &reasons[&("small".to_string(), "o00001".to_string())];
    assert!(
        small.contains("refused by JetStream") && small.contains("message size exceeds maximum"),
        "{small}"
    );
    assert!(
        reasons.contains_key(&("small".to_string(), "big".to_string())),
        "{reasons:?}"
    );
    // The small one is in the stream; the sink goes on.
    assert_eq!(settle(&nats, 1, Duration::from_secs(20)).await, 1);
    let stored = nats.read_all(STREAM).await;
    assert_eq!(stored[0].payload["name"], "o00001");
    let s = sink_status(&c).await;
    assert_eq!(
        (s["delivered"].as_u64(), s["deadLettered"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert!(
        herald.next_within(Duration::from_secs(1)).is_none(),
        "nothing else dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_into_one_stream_counts_per_cluster_exact() {
    let nats = NatsServer::start(&[]).await;
    nats.create_stream(STREAM, &["herald.>"], Duration::from_secs(600))
        .await;
    let east = Cluster::start(Duration::from_millis(300)).await;
    let west = Cluster::start(Duration::from_millis(300)).await;
    let e = HeraldProcess::run(
        env!("CARGO_BIN_EXE_herald"),
        &config(&east, "east", &nats, "    format: cloudevents", ""),
    );
    let w = HeraldProcess::run(
        env!("CARGO_BIN_EXE_herald"),
        &config(&west, "west", &nats, "", ""),
    );
    assert!(
        wait_http_ok(&east.probe("/readyz")).await,
        "east never ready"
    );
    assert!(
        wait_http_ok(&west.probe("/readyz")).await,
        "west never ready"
    );
    for i in 0..300 {
        create(&east, i).await;
        create(&west, i).await;
    }
    for k in 0..700 {
        update(&east, k % 300, &format!("e{k}")).await;
        if k % 2 == 0 {
            update(&west, k % 300, &format!("w{k}")).await;
        }
    }
    let (ne, nw) = (log(&east).len(), log(&west).len());
    assert_eq!((ne, nw), (1000, 650));
    assert_eq!(settle(&nats, 1650, Duration::from_secs(60)).await, 1650);
    let stored = nats.read_all(STREAM).await;
    let by = |cluster: &str| -> Vec<Stored> {
        stored
            .iter()
            .filter(|m| m.subject.split('.').nth(1) == Some(cluster))
            .cloned()
            .collect()
    };
    let (se, sw) = (by("east"), by("west"));
    assert_eq!((se.len(), sw.len()), (ne, nw), "counts per cluster");
    assert!(
        se.iter()
            .all(|m| m.payload["cluster"] == "east" && m.ce_id.as_deref() == Some(m.id.as_str()))
    );
    assert!(
        sw.iter()
            .all(|m| m.payload["cluster"] == "west" && m.ce_id.is_none())
    );
    assert_exactly_once_in_order(&se, &log(&east));
    assert_exactly_once_in_order(&sw, &log(&west));
    drop((e, w));
}

#[test]
fn the_readme_nats_example_passes_config_check_and_a_bad_subject_is_named() {
    let readme =
        std::fs::read_to_string(herald_e2e::workspace_root().join("README.md")).expect("README.md");
    let yaml = readme
        .split("### NATS JetStream")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("a yaml block in 'NATS JetStream'");
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |text: &str| {
        let path = dir.path().join("nats.yaml");
        std::fs::write(&path, text).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["config", "check"])
            .arg(&path)
            .env("HERALD_LOG", "error")
            .output()
            .expect("herald config check");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let watch = "watch:\n  - { version: v1, kind: ConfigMap }\n";
    let full = format!("{watch}{yaml}  - name: stdout\n    type: log\n");
    let (ok, out) = check(&full);
    assert!(ok && out.contains("2 sinks"), "{out}");
    let bad = full.replace("{namespace}.{change}", "{namespace}.{colour}");
    let (ok, out) = check(&bad);
    assert!(!ok, "{out}");
    assert!(
        out.contains("sinks[0] (bus).subject") && out.contains("unknown placeholder {colour}"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_token_and_mutual_tls_against_real_brokers() {
    let certs = tempfile::tempdir().expect("tempdir");
    let d = certs.path();
    herald_e2e::certs::issue(
        d,
        "ca",
        "server",
        "/CN=server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    herald_e2e::certs::issue(
        d,
        "ca",
        "client",
        "/CN=client",
        "extendedKeyUsage=clientAuth\n",
    );
    let p = |f: &str| d.join(f).display().to_string();
    let userpass = NatsServer::start(&["--user", "herald", "--pass", "s3cret"]).await;
    let token = NatsServer::start(&["--auth", "t0ken"]).await;
    let tls = NatsServer::start(&[
        "--tlsverify",
        "--tlscert",
        &p("server.crt"),
        "--tlskey",
        &p("server.key"),
        "--tlscacert",
        &p("ca.crt"),
    ])
    .await;
    std::fs::write(d.join("token"), "t0ken\n").expect("token file");
    let c = Cluster::start(Duration::from_millis(300)).await;
    let stream = "    stream: { name: HERALD, create: true }";
    let sink = |name: &str, url: &str, rest: &str| {
        format!(
            "  - name: {name}\n    type: nats\n    url: {url}\n    timeout: 2s\n    retry: {{ initialBackoff: 100ms, maxBackoff: 500ms }}\n{stream}\n{rest}\n"
        )
    };
    let extra = [
        sink(
            "wrongpass",
            &userpass.url(),
            "    auth: { user: { env: NATS_USER }, password: { env: NATS_WRONG } }",
        ),
        sink(
            "token",
            &token.url(),
            &format!("    auth: {{ token: {{ file: {} }} }}", p("token")),
        ),
        sink(
            "mtls",
            &format!("tls://127.0.0.1:{}", tls.port),
            &format!(
                "    tls: {{ caFile: {}, certFile: {}, keyFile: {} }}",
                p("ca.crt"),
                p("client.crt"),
                p("client.key")
            ),
        ),
    ]
    .concat();
    let cfg = config(
        &c,
        "one",
        &userpass,
        &format!(
            "{stream}\n    auth: {{ user: {{ env: NATS_USER }}, password: {{ env: NATS_PASS }} }}"
        ),
        &extra,
    );
    let _herald = HeraldProcess::run_with_env(
        env!("CARGO_BIN_EXE_herald"),
        &cfg,
        &[
            ("NATS_USER", "herald"),
            ("NATS_PASS", "s3cret"),
            ("NATS_WRONG", "guess"),
        ],
    );
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for i in 0..3 {
        create(&c, i).await;
    }
    let status = |name: &'static str| {
        let c = &c;
        async move {
            let (_, body) = http_get(&c.api("/sinks")).await.expect("GET /sinks");
            body.as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
                .expect("sink in /sinks")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in ["bus", "token", "mtls"] {
        loop {
            let s = status(name).await;
            if s["delivered"] == 3 {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: not delivered: {s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Stored for real: the user/password broker's stream holds the three.
    let client =
        async_nats::ConnectOptions::with_user_and_password("herald".into(), "s3cret".into())
            .connect(userpass.url())
            .await
            .expect("connect");
    let mut s = async_nats::jetstream::new(client)
        .get_stream(STREAM)
        .await
        .expect("the stream herald created");
    assert_eq!(s.info().await.expect("info").state.messages, 3);
    // The wrong password is retried, never delivered, and says why.
    let s = status("wrongpass").await;
    assert_eq!(
        (s["delivered"].as_u64(), s["deadLettered"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(s["retries"].as_u64().unwrap_or(0) > 0, "{s}");
    let e = s["lastError"].as_str().unwrap_or_default().to_lowercase();
    assert!(e.contains("authorization"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_sigkill_is_absorbed_by_the_duplicate_window() {
    let nats = NatsServer::start(&[]).await;
    nats.create_stream(STREAM, &["herald.>"], Duration::from_secs(600))
        .await;
    let c = Cluster::start(Duration::from_millis(300)).await;
    let cfg = config(&c, "one", &nats, "    timeout: 60s", "");
    let start = || HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &cfg);
    let mut herald = start();
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for i in 0..100 {
        create(&c, i).await;
    }
    assert_eq!(settle(&nats, 100, Duration::from_secs(30)).await, 100);
    // The broker stops answering: herald publishes a group and waits for
    // acknowledgements that do not come.
    nats.freeze();
    for i in 0..50 {
        update(&c, i, "frozen").await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let published = loop {
        let s = sink_status(&c).await;
        let n = s["inFlight"].as_u64().unwrap_or(0);
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "nothing published: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Let the client write them out, then kill herald before any ack.
    tokio::time::sleep(Duration::from_millis(500)).await;
    herald.kill();
    nats.thaw();
    // The broker stores what it had read from the dead connection: those
    // messages are in the stream, and herald's outbox still holds them.
    let stored = settle(&nats, 100 + published, Duration::from_secs(10)).await;
    assert_eq!(
        stored,
        100 + published,
        "the unacknowledged group is stored"
    );
    herald = start();
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready again");
    // The restarted herald publishes all 50 again (same ids); JetStream
    // drops the copies it holds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = sink_status(&c).await;
        if s["delivered"] == 50 {
            break;
        }
        assert!(Instant::now() < deadline, "not redelivered: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(settle(&nats, 150, Duration::from_secs(5)).await, 150);
    let stored = nats.read_all(STREAM).await;
    assert_exactly_once_in_order(&stored, &log(&c));
    eprintln!("nats: {published} published before the kill, stored once after the redelivery");
    drop(herald);
}
