//! `herald run`, the main job, as the real binary against the API-server
//! simulator over loopback.

use std::process::Command;
use std::time::Duration;

use herald_e2e::{Cluster, HeraldProcess, http_get, http_send, plugin_dir, wait_http_ok};

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_watches_filters_prunes_and_notifies_and_serves_queries() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let sim = &c.sim;
    let config = c.config(&format!(
        r#"
cluster: test-cluster
watch:
  - version: v1
    kind: Pod
    namespaces: [shop]
    plugins: [web-only, prune-noise]
plugins:
  dir: {dir}
  config:
    web-only: {{ labels: {{ app: web }} }}
    prune-noise: {{ remove: [/metadata/managedFields, /status] }}
  policy:
    web-only: {{ file: label_filter.wasm, onError: drop }}
    prune-noise: {{ file: prune.wasm }}
"#,
        dir = plugin_dir().display(),
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    // Ready: every watch has finished its first list (`/readyz`; the query
    // API answers before that), so the pods below are additions.
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );

    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "web-1", &[("app", "web")]),
    )
    .await
    .expect("create");
    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "db-1", &[("app", "db")]),
    )
    .await
    .expect("create");
    sim.create(
        "pods",
        herald_sim::fixtures::pod("other", "web-9", &[("app", "web")]),
    )
    .await
    .expect("create");
    let mut web = sim.get("pods", "shop", "web-1").await.expect("get");
    web["metadata"]["labels"]["version"] = json!("2");
    sim.update("pods", web).await.expect("update");
    sim.delete("pods", "shop", "web-1").await.expect("delete");

    let added = herald.next();
    assert_eq!(added["change"], "added");
    assert_eq!(added["cluster"], "test-cluster");
    assert_eq!(added["name"], "web-1");
    assert_eq!(added["namespace"], "shop");
    assert!(added["object"].get("status").is_none(), "pruned: {added}");
    assert!(added["object"]["metadata"].get("managedFields").is_none());
    let modified = herald.next();
    assert_eq!(
        (modified["change"].as_str(), modified["name"].as_str()),
        (Some("modified"), Some("web-1"))
    );
    assert_eq!(modified["object"]["metadata"]["labels"]["version"], "2");
    let deleted = herald.next();
    assert_eq!(
        (deleted["change"].as_str(), deleted["name"].as_str()),
        (Some("deleted"), Some("web-1"))
    );
    // db-1 was dropped by the label filter and web-9 is in another namespace.
    assert!(herald.next_within(Duration::from_millis(500)).is_none());

    let url = c.api("/api/v1/resources/core/v1/pods?namespace=shop");
    let (code, body) = http_get(&url).await.expect("query");
    assert_eq!(code, 200);
    let names: Vec<String> = body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["db-1".to_string()], "{body}");
    drop(herald);
}

#[test]
fn run_rejects_a_bad_config_naming_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        "cluster: x\nwatch:\n  - kind: Pod\n    nmespaces: [a]\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("watch[0]"), "{err}");
    assert!(err.contains("unknown field `nmespaces`"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_cleanly_on_sigterm() {
    let c = Cluster::start(Duration::from_secs(1)).await;
    let config = c.config("watch:\n  - { version: v1, kind: ConfigMap }\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["run", "--config"])
        .arg(&config)
        .env("HERALD_LOG", "warn")
        .spawn()
        .expect("start herald");
    assert!(
        wait_http_ok(&c.api("/api/v1/resources")).await,
        "herald never answered"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            assert!(code.success(), "herald exited with {code}");
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("herald did not stop within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_unready_while_the_api_server_is_silent_and_ready_after() {
    let c = Cluster::start(Duration::from_millis(100)).await;
    let sim = &c.sim;
    let config = c.config(
        "source:\n  stallTimeout: 1s\n  backoff: { min: 100ms, max: 300ms }\n\
         watch:\n  - { version: v1, kind: ConfigMap }\n",
    );
    let _herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let (code, body) = http_get(&c.probe("/healthz")).await.expect("healthz");
    assert_eq!((code, &body["status"]), (200, &json!("ok")));

    // The API server goes away: connections are refused.
    sim.stop().await;
    let mut unready = None;
    for _ in 0..100 {
        let (code, body) = http_get(&c.probe("/readyz")).await.expect("readyz");
        if code == 503 {
            unready = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = unready.expect("/readyz never turned unready during the outage");
    assert_eq!(body["ready"], false);
    assert!(
        body["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("configmap.v1.core") && r.contains("nothing heard")),
        "{body}"
    );

    // It comes back: ready again.
    sim.resume().await.expect("resume");
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "/readyz did not recover"
    );
}

/// A watch added over the admin API gets what a configured one gets: its
/// plugin chain (and sinks) from the config's plugins, in place before its
/// first event; one whose plugin does not load is refused and not added; a
/// config reload keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_added_watch_runs_its_chain() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let sim = &c.sim;
    let body = format!(
        r#"
watch:
  - {{ version: v1, kind: ConfigMap }}
plugins:
  dir: {dir}
  config:
    web-only: {{ labels: {{ app: web }} }}
  policy:
    web-only: {{ file: label_filter.wasm, onError: drop }}
"#,
        dir = plugin_dir().display(),
    );
    let config = c.config(&body);
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never ready"
    );

    let (code, st) = http_send(
        "POST",
        &c.api("/admin/v1/watches"),
        Some(&json!({"version": "v1", "kind": "Pod", "namespaces": ["shop"], "plugins": ["nope"]})),
    )
    .await
    .expect("admin");
    assert_eq!(code, 422, "{st}");
    assert!(
        st["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{st}"
    );
    let (_, watches) = http_get(&c.api("/admin/v1/watches")).await.expect("list");
    assert_eq!(watches.as_array().map(Vec::len), Some(1), "{watches}");

    let (code, st) = http_send(
        "POST",
        &c.api("/admin/v1/watches"),
        Some(&json!({"version": "v1", "kind": "Pod", "namespaces": ["shop"], "plugins": ["web-only"]})),
    )
    .await
    .expect("admin");
    assert_eq!(code, 201, "{st}");
    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "db-1", &[("app", "db")]),
    )
    .await
    .expect("create");
    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "web-1", &[("app", "web")]),
    )
    .await
    .expect("create");
    let n = herald.next();
    assert_eq!(
        (n["change"].as_str(), n["name"].as_str()),
        (Some("added"), Some("web-1")),
        "db-1 is dropped by the watch's chain: {n}"
    );

    // A reload of the config file keeps the admin-added watch.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).expect("read") + "\n# touched\n",
    )
    .expect("touch config");
    tokio::time::sleep(Duration::from_millis(800)).await;
    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "web-2", &[("app", "web")]),
    )
    .await
    .expect("create");
    let n = herald.next();
    assert_eq!(n["name"], "web-2", "{n}");
}
