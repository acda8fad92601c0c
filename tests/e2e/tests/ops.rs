//! Operations: metrics, hot reload, graceful shutdown, as the real binary
//! against the API-server simulator over loopback.

use std::io::{Read, Write};
use std::time::Duration;

use herald_e2e::{Cluster, HeraldProcess, plugin_dir, wait_http_ok};

/// GET `url` (plain HTTP on loopback) and return the status and body text.
fn get_text(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").expect("response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels as written, in order),
/// or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config(&format!(
        r#"
cluster: m
watch:
  - version: v1
    kind: ConfigMap
    plugins: [only-a]
plugins:
  dir: {dir}
  config:
    only-a: {{ labels: {{ app: a }} }}
  policy:
    only-a: {{ file: label_filter.wasm }}
"#,
        dir = plugin_dir().display()
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let (code, before) = get_text(&c.probe("/metrics"));
    assert_eq!(code, 200);
    assert!(
        before.contains("herald_watch_ready{watch=\"configmap.v1.core\"} 1"),
        "{before}"
    );
    assert!(
        before.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    for (name, app) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
        let mut cm = herald_sim::fixtures::config_map("default", name, &[("k", "v")]);
        cm["metadata"]["labels"] = serde_json::json!({ "app": app });
        c.sim.create("configmaps", cm).await.expect("create");
    }
    for _ in 0..2 {
        let n = herald.next();
        assert_eq!(n["change"], "added");
    }
    let w = "configmap.v1.core";
    let mut after = String::new();
    let delivered = format!("herald_notifications_total{{watch=\"{w}\",fate=\"delivered\"}}");
    let dropped = format!("herald_notifications_total{{watch=\"{w}\",fate=\"dropped\"}}");
    for _ in 0..50 {
        after = get_text(&c.probe("/metrics")).1;
        if sample(&after, "herald_sink_delivered_total{sink=\"log\"}") >= 2.0
            && sample(&after, &delivered) + sample(&after, &dropped) >= 3.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = format!("herald_events_total{{watch=\"{w}\",change=\"added\"}}");
    assert_eq!(sample(&after, &events), 3.0, "{after}");
    assert_eq!(
        sample(
            &after,
            &format!("herald_notifications_total{{watch=\"{w}\",fate=\"delivered\"}}")
        ),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!("herald_notifications_total{{watch=\"{w}\",fate=\"dropped\"}}")
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "herald_sink_delivered_total{sink=\"log\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "herald_sink_queue_depth{sink=\"log\"}"),
        0.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, &format!("herald_watch_objects{{watch=\"{w}\"}}")),
        3.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, &format!("herald_watch_ready{{watch=\"{w}\"}}")),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!("herald_watch_lists_total{{watch=\"{w}\"}}")
        ),
        1.0,
        "{after}"
    );
    let calls = sample(
        &after,
        &format!("herald_plugin_calls_total{{plugin=\"only-a\",watch=\"{w}\"}}"),
    );
    assert_eq!(calls, 3.0, "{after}");
    let timed = sample(
        &after,
        &format!("herald_plugin_call_seconds_count{{plugin=\"only-a\",watch=\"{w}\"}}"),
    );
    assert_eq!(timed, 3.0, "{after}");
    let age = sample(
        &after,
        &format!("herald_last_event_age_seconds{{watch=\"{w}\"}}"),
    );
    assert!(age > 0.0 && age < 30.0, "{after}");
}

/// Writes `text` to `path` as a mounted ConfigMap changes: a new file
/// renamed over the old one.
fn replace(path: &std::path::Path, text: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn metric(c: &Cluster, series: &str) -> f64 {
    sample(&get_text(&c.probe("/metrics")).1, series)
}

async fn wait_metric(c: &Cluster, series: &str, at_least: f64) -> bool {
    for _ in 0..100 {
        if metric(c, series).await >= at_least {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_applies_a_good_config_and_rejects_a_bad_one() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config("cluster: r\nwatch:\n  - { version: v1, kind: ConfigMap }\n");
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let text = std::fs::read_to_string(&config).expect("read");

    // Good: a second watched type, applied without a restart.
    replace(
        &config,
        format!("{text}  - {{ version: v1, kind: Secret }}\n").as_bytes(),
    );
    assert!(
        wait_metric(
            &c,
            "herald_reloads_total{what=\"config\",result=\"ok\"}",
            1.0
        )
        .await,
        "the good config was not applied"
    );
    assert!(
        wait_http_ok(&c.api("/api/v1/resources/core/v1/secrets")).await,
        "the new watch serves queries"
    );
    // The query API answers once the watch runs, before its first list; a
    // Secret created before that list is in it (the state herald starts
    // from), not an addition. `/readyz` waits for every running watch's list.
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "the new watch never finished its first list"
    );
    let mut secret = herald_sim::fixtures::config_map("default", "s1", &[("k", "dg==")]);
    secret["kind"] = serde_json::json!("Secret");
    c.sim
        .create("secrets", secret)
        .await
        .expect("create secret");
    let n = herald.next();
    assert_eq!(
        (n["kind"].as_str(), n["name"].as_str()),
        (Some("Secret"), Some("s1")),
        "{n}"
    );

    // Bad: an unknown field. Rejected, counted, and the old config runs on.
    replace(
        &config,
        format!("{text}  - {{ version: v1, kind: Secret, colour: red }}\n").as_bytes(),
    );
    assert!(
        wait_metric(
            &c,
            "herald_reloads_total{what=\"config\",result=\"error\"}",
            1.0
        )
        .await,
        "the bad config was not rejected"
    );
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map("default", "after-bad", &[("k", "v")]),
        )
        .await
        .expect("create");
    let n = herald.next();
    assert_eq!(n["name"], "after-bad", "{n}");
    c.sim
        .delete("secrets", "default", "s1")
        .await
        .expect("delete secret");
    let n = herald.next();
    assert_eq!(
        (n["kind"].as_str(), n["change"].as_str()),
        (Some("Secret"), Some("deleted")),
        "the Secret watch still runs: {n}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_reload_swaps_within_a_second_rejects_bad_and_removed_files_and_loses_nothing() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let dir = c.dir.path().join("plugins");
    std::fs::create_dir(&dir).expect("mkdir");
    let gate = dir.join("gate.wasm");
    std::fs::copy(herald_e2e::wasm("diff"), &gate).expect("copy diff");
    let config = c.config(&format!(
        "cluster: p\nwatch:\n  - {{ version: v1, kind: ConfigMap, plugins: [gate] }}\nplugins:\n  dir: {}\n  config:\n    gate: {{}}\n",
        dir.display()
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");

    // A steady stream of creates, each object asking (by annotation) to be
    // routed to `x`: the diff plugin ignores that, the route plugin obeys.
    let sim = c.sim.clone();
    let created = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = created.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let halt = stop.clone();
    let writer = tokio::spawn(async move {
        let mut i = 0;
        while !halt.load(std::sync::atomic::Ordering::Relaxed) {
            let name = format!("cm-{i:04}");
            let mut cm = herald_sim::fixtures::config_map("default", &name, &[("k", "v")]);
            cm["metadata"]["annotations"] = serde_json::json!({ "herald.io/route": "x" });
            sim.create("configmaps", cm).await.expect("create");
            log.lock().unwrap().push((name, std::time::Instant::now()));
            i += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Good: a new version (the route plugin) is copied over the old one.
    let swapped = std::time::Instant::now();
    std::fs::copy(herald_e2e::wasm("route"), &gate).expect("copy route");
    assert!(
        wait_metric(
            &c,
            "herald_reloads_total{what=\"plugins\",result=\"ok\"}",
            1.0
        )
        .await,
        "the new plugin was not loaded"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Bad: not a component. Rejected; the route version keeps serving.
    std::fs::write(&gate, b"not wasm").expect("write garbage");
    assert!(
        wait_metric(
            &c,
            "herald_reloads_total{what=\"plugins\",result=\"error\"}",
            1.0
        )
        .await,
        "the bad plugin was not rejected"
    );
    let errors = metric(
        &c,
        "herald_reloads_total{what=\"plugins\",result=\"error\"}",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Removed: the config still names it, so the loaded version stays.
    std::fs::remove_file(&gate).expect("remove");
    assert!(
        wait_metric(
            &c,
            "herald_reloads_total{what=\"plugins\",result=\"error\"}",
            errors + 1.0
        )
        .await,
        "the removal was not noticed"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("writer");

    let created = created.lock().unwrap().clone();
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < created.len() {
        let n = herald
            .next_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} of {} notified", seen.len(), created.len()));
        let name = n["name"].as_str().expect("name").to_string();
        let routed = n["routes"] == serde_json::json!(["x"]);
        assert!(
            seen.insert(name.clone(), routed).is_none(),
            "{name} notified twice"
        );
    }
    assert!(
        herald.next_within(Duration::from_millis(300)).is_none(),
        "nothing extra"
    );
    let mut late_unrouted = Vec::new();
    let mut first_routed = None;
    for (name, at) in &created {
        let routed = seen[name];
        if routed && first_routed.is_none() {
            first_routed = Some(at.duration_since(swapped));
        }
        if !routed && *at > swapped + Duration::from_secs(1) {
            late_unrouted.push(name.clone());
        }
    }
    assert!(
        late_unrouted.is_empty(),
        "created over 1 s after the swap yet run by the old version: {late_unrouted:?}"
    );
    assert!(first_routed.is_some(), "the new version never served");
    let before: Vec<_> = created.iter().filter(|(_, at)| *at < swapped).collect();
    assert!(
        before.iter().all(|(n, _)| !seen[n]),
        "events before the swap ran on the old version"
    );
    assert!(before.len() >= 5, "the stream ran before the swap");
}

/// (uid, resourceVersion) of every acknowledged raw-webhook delivery, and
/// how many times each id was acknowledged.
fn acknowledged(r: &herald_e2e::receiver::Receiver) -> std::collections::BTreeMap<String, usize> {
    let mut ids = std::collections::BTreeMap::new();
    for req in r.requests().iter().filter(|q| q.acknowledged()) {
        *ids.entry(req.json()["id"].as_str().expect("id").to_string())
            .or_insert(0) += 1;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_sink_queues_before_exiting() {
    use herald_e2e::receiver::{Receiver, Reply};
    let c = Cluster::start(Duration::from_millis(200)).await;
    // Down for the first 2 s of traffic, then fine.
    let hook = Receiver::start(|_, since_first| {
        if since_first < Duration::from_secs(2) {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    })
    .await;
    let config = c.config(&format!(
        r#"
watch:
  - {{ version: v1, kind: ConfigMap }}
sinks:
  - name: hook
    type: webhook
    url: {url}
    retry: {{ initialBackoff: 200ms, maxBackoff: 500ms, maxAge: 1m }}
drainTimeout: 20s
"#,
        url = hook.url("/")
    ));
    let mut herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for i in 0..20 {
        c.sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map("default", &format!("d{i}"), &[("k", "v")]),
            )
            .await
            .expect("create");
    }
    assert!(
        hook.wait_for(Duration::from_secs(10), |r| !r.is_empty())
            .await,
        "deliveries started"
    );
    assert_eq!(
        acknowledged(&hook).len(),
        0,
        "still failing when SIGTERM comes"
    );
    let status = herald
        .terminate(Duration::from_secs(25))
        .expect("herald exited within the drain timeout");
    assert!(status.success(), "drained cleanly: {status:?}");
    let ids = acknowledged(&hook);
    assert_eq!(
        ids.len(),
        20,
        "every queued notification delivered before exit"
    );
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fail_over_on_the_lease_without_loss_or_duplicates() {
    use herald_e2e::receiver::Receiver;
    let c = Cluster::start(Duration::from_millis(200)).await;
    let hook = Receiver::ok().await;
    let body = |port: u16| {
        format!(
            r#"kubeconfig: {kc}
metrics:
  listen: 127.0.0.1:{port}
cluster: ha
watch:
  - {{ version: v1, kind: ConfigMap }}
sinks:
  - {{ name: hook, type: webhook, url: "{url}" }}
ha:
  enabled: true
  leaseName: herald-test
  leaseNamespace: default
  leaseDuration: 3s
  grace: 1s
"#,
            kc = c.kubeconfig.display(),
            url = hook.url("/")
        )
    };
    let (pa, pb) = (c.api_port, herald_e2e::free_port());
    let ca = c.dir.path().join("a.yaml");
    let cb = c.dir.path().join("b.yaml");
    std::fs::write(&ca, body(pa)).expect("write");
    std::fs::write(&cb, body(pb)).expect("write");
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    let mut a =
        HeraldProcess::run_with_env(env!("CARGO_BIN_EXE_herald"), &ca, &[("POD_NAME", "a")]);
    assert!(wait_http_ok(&url(pa, "/readyz")).await, "a never ready");
    let mut leading = false;
    for _ in 0..100 {
        if sample(&get_text(&url(pa, "/metrics")).1, "herald_leader") == 1.0 {
            leading = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(leading, "a never became the leader");
    let b = HeraldProcess::run_with_env(env!("CARGO_BIN_EXE_herald"), &cb, &[("POD_NAME", "b")]);
    assert!(wait_http_ok(&url(pb, "/readyz")).await, "b never ready");
    assert_eq!(
        sample(&get_text(&url(pb, "/metrics")).1, "herald_leader"),
        0.0,
        "b stands by"
    );

    // Changes before, during and after the handover.
    let sim = c.sim.clone();
    let writer = tokio::spawn(async move {
        for i in 0..120 {
            let name = format!("f{i:03}");
            sim.create(
                "configmaps",
                herald_sim::fixtures::config_map("default", &name, &[("k", "v")]),
            )
            .await
            .expect("create");
            if i % 3 == 0 {
                let mut cm = sim.get("configmaps", "default", &name).await.expect("get");
                cm["data"]["k"] = serde_json::json!("v2");
                sim.update("configmaps", cm).await.expect("update");
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = a.terminate(Duration::from_secs(20)).expect("a stopped");
    assert!(status.success(), "{status:?}");
    let stopped = std::time::Instant::now();
    let mut took_over = None;
    for _ in 0..100 {
        if sample(&get_text(&url(pb, "/metrics")).1, "herald_leader") == 1.0 {
            took_over = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took_over = took_over.expect("b never took over");
    assert!(
        took_over <= Duration::from_secs(4),
        "failover within the lease duration: {took_over:?}"
    );
    writer.await.expect("writer");

    // Every change in the simulator's log, delivered once by one replica or
    // the other.
    let want: std::collections::BTreeSet<(String, String)> = c
        .sim
        .change_log()
        .into_iter()
        .filter(|e| e.kind == "ConfigMap")
        .map(|e| (e.uid.clone(), e.resource_version.to_string()))
        .collect();
    assert!(want.len() >= 160, "{} changes", want.len());
    assert!(
        hook.wait_for(Duration::from_secs(20), |r| r
            .iter()
            .filter(|q| q.acknowledged())
            .count()
            >= want.len())
            .await,
        "not everything was delivered"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = std::collections::BTreeMap::new();
    for req in hook.requests().iter().filter(|q| q.acknowledged()) {
        let v = req.json();
        let key = (
            v["uid"].as_str().expect("uid").to_string(),
            v["resourceVersion"].as_str().expect("rv").to_string(),
        );
        *got.entry(key).or_insert(0) += 1;
    }
    let dups: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "delivered twice: {dups:?}");
    let missing: Vec<_> = want.iter().filter(|k| !got.contains_key(*k)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_prompt_with_a_pending_watch_and_with_a_queue_blocked_on_a_hanging_sink_which_holds_up_no_query()
 {
    use herald_e2e::receiver::{Receiver, Reply};
    let c = Cluster::start(Duration::from_millis(200)).await;
    let hang = Receiver::start(|_, _| Reply::Hang).await;
    let config = c.config(&format!(
        r#"
stateDir: {state}
watch:
  - {{ version: v1, kind: ConfigMap }}
  - {{ group: example.com, version: v1, kind: Widget }}   # not served: stays pending
sinks:
  - name: stuck
    type: webhook
    url: {url}
    timeout: 30s
    concurrency: 1
    queue: {{ capacity: 2, whenFull: block }}
drainTimeout: 3s
"#,
        state = c.dir.path().join("state").display(),
        url = hang.url("/")
    ));
    // One runtime worker: the pipeline, a task on it, waits for room in the
    // full queue with the worker's other tasks handed to another thread.
    let mut herald = HeraldProcess::run_with_env(
        env!("CARGO_BIN_EXE_herald"),
        &config,
        &[("TOKIO_WORKER_THREADS", "1")],
    );
    // Ready: the first list is done, so the ConfigMaps below are additions.
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for i in 0..10 {
        c.sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map("default", &format!("b{i}"), &[("k", "v")]),
            )
            .await
            .expect("create");
    }
    assert!(
        hang.wait_for(Duration::from_secs(10), |r| !r.is_empty())
            .await,
        "the hanging sink got its first request"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The queue is full (one in flight, two queued, the rest waiting): the
    // query API still answers, the pipeline's wait notwithstanding.
    let asked = std::time::Instant::now();
    let (status, body) = herald_e2e::http_get(&c.api("/api/v1/resources/core/v1/configmaps"))
        .await
        .expect("the query API answers while the pipeline waits for room");
    assert_eq!(status, 200, "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the query API took {:?} while the pipeline waited",
        asked.elapsed()
    );
    let started = std::time::Instant::now();
    let status = herald.terminate(Duration::from_secs(15)).expect(
        "herald exits within the drain timeout, blocked queue and pending watch notwithstanding",
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    // With a state dir, what was not delivered stays in the outbox: not an error.
    assert!(status.success(), "{status:?}");
}

/// `log.level` and `log.format` are set up once, at start: a reload that
/// changes them says they take effect at the next restart, rather than
/// reporting them reloaded while the old level stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_change_in_a_reload_is_reported_as_restart_only() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config("log: {level: info}\nwatch:\n  - { version: v1, kind: ConfigMap }\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("HERALD_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start herald");
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let text = std::fs::read_to_string(&config).expect("read");
    replace(
        &config,
        text.replace("log: {level: info}", "log: {level: debug}")
            .as_bytes(),
    );
    let reloaded = wait_metric(
        &c,
        "herald_reloads_total{what=\"config\",result=\"ok\"}",
        1.0,
    )
    .await;
    let _ = child.kill();
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    let _ = child.wait();
    assert!(reloaded, "the config was not reloaded: {err}");
    assert!(
        err.lines()
            .any(|l| l.contains("takes effect at the next restart") && l.contains("field=\"log\"")),
        "no restart-only warning for log: {err}"
    );
}
