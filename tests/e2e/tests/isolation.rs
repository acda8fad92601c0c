//! One bad plugin harms only its own watch (issue 15, item 1; issue 16,
//! "every core"): the real binary, the simulator, a loopback webhook
//! receiver. A plugin that loops until its deadline delays no other watch,
//! its circuit breaker suspends it (metric and log line) and resumes it
//! after a successful trial; several chain workers keep each object's
//! changes in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use herald_e2e::logged::{LoggedHerald as Herald, metric, wait_metric};
use herald_e2e::receiver::{Receiver, Request};
use herald_e2e::{Cluster, plugin_dir, wait_http_ok};
use serde_json::{Value, json};

const NS: &str = "iso";

/// The acknowledged notifications, as JSON, in arrival order.
fn notifications(hook: &Receiver) -> Vec<(Request, Value)> {
    hook.requests()
        .into_iter()
        .filter(Request::acknowledged)
        .map(|r| {
            let v = r.json();
            (r, v)
        })
        .collect()
}

/// Sets `metadata.annotations.step` of Deployment `web` and returns when
/// its notification arrived, after the update call began.
async fn step_deployment(c: &Cluster, hook: &Receiver, step: usize) -> Duration {
    let mut d = c.sim.get("deployments", NS, "web").await.expect("get");
    d["metadata"]["annotations"] = json!({"step": step.to_string()});
    let began = Instant::now();
    let d = c.sim.update("deployments", d).await.expect("update");
    let rv = d["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let got = hook
        .wait_for(Duration::from_secs(20), |r| {
            r.iter().any(|q| q.json()["resourceVersion"] == rv.as_str())
        })
        .await;
    assert!(got, "the Deployment's step {step} was not notified");
    let at = hook
        .requests()
        .into_iter()
        .find(|q| q.json()["resourceVersion"] == rv.as_str())
        .map(|q| q.at)
        .expect("request");
    at.saturating_duration_since(began)
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_delays_only_its_own_watch_and_is_suspended_then_resumed() {
    let c = Cluster::start(Duration::from_millis(500)).await;
    let hook = Receiver::ok().await;
    let config = c.config(&format!(
        r#"
cluster: iso
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [{NS}], plugins: [looper] }}
  - {{ group: apps, version: v1, kind: Deployment, namespaces: [{NS}], plugins: [fine] }}
sinks:
  - name: hook
    type: webhook
    url: {url}
plugins:
  dir: {dir}
  config:
    looper: {{ mode: loop, when: bad }}
    fine: {{ mode: pass }}
  policy:
    looper: {{ file: hostile_plugin.wasm, onError: pass, deadline: 100ms }}
    fine: {{ file: hostile_plugin.wasm }}
  breaker: {{ failures: 5, backoff: 1s, maxBackoff: 2s }}
pipeline:
  workers: 2
"#,
        url = hook.url("/"),
        dir = plugin_dir().display(),
    ));
    let herald = Herald::start(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    c.sim
        .create("deployments", deployment())
        .await
        .expect("create");
    assert!(
        hook.wait_for(Duration::from_secs(20), |r| r.len() == 1)
            .await,
        "the Deployment's creation"
    );

    // Baseline: the Deployment's changes while the ConfigMap watch is idle.
    let mut baseline = Vec::new();
    for step in 0..5 {
        baseline.push(step_deployment(&c, &hook, step).await);
    }
    baseline.sort();
    let base = baseline[baseline.len() / 2];

    // 30 ConfigMaps the plugin loops on, then a change of the Deployment.
    for i in 0..30 {
        c.sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map(NS, &format!("bad-{i:02}"), &[("v", "1")]),
            )
            .await
            .expect("create");
    }
    let during = step_deployment(&c, &hook, 100).await;
    eprintln!(
        "isolation: Deployment notified after {during:?} during the storm, {base:?} before (median of {baseline:?})"
    );
    assert!(
        during < base + Duration::from_millis(50),
        "the Deployment's notification took {during:?} behind the looping plugin, {base:?} without (baseline {baseline:?})"
    );
    // onError: pass: every ConfigMap is notified, and the Deployment's
    // change overtook some of them (the looping watch was still busy).
    assert!(
        hook.wait_for(Duration::from_secs(30), |r| {
            r.iter().filter(|q| q.json()["kind"] == "ConfigMap").count() == 30
        })
        .await,
        "every ConfigMap passes (onError: pass)"
    );
    let got = notifications(&hook);
    let deploy_at = got
        .iter()
        .position(|(_, v)| {
            v["kind"] == "Deployment" && v["object"]["metadata"]["annotations"]["step"] == "100"
        })
        .expect("the Deployment's change");
    let last_cm = got
        .iter()
        .rposition(|(_, v)| v["kind"] == "ConfigMap")
        .expect("ConfigMaps");
    assert!(
        deploy_at < last_cm,
        "the Deployment's change came after every ConfigMap"
    );

    // The breaker opened: the gauge, one loud line naming plugin and watch,
    // and far fewer failed calls than events.
    wait_metric(&c, "herald_plugin_suspended", r#"plugin="looper""#, 1.0).await;
    assert_eq!(
        metric(&c, "herald_plugin_suspended", r#"plugin="fine""#).await,
        None,
        "a plugin that never failed has no breaker reading"
    );
    let opened = herald.wait_line("plugin suspended", 1).await;
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(opened[0]["level"], "WARN");
    assert_eq!(opened[0]["fields"]["plugin"], "looper");
    assert_eq!(opened[0]["fields"]["watch"], "configmap.v1.core");
    assert!(
        opened[0]["fields"]["message"].as_str().is_some_and(|m| m
            .contains("5 failed calls in a row")
            && m.contains("onError policy (pass)")),
        "{}",
        opened[0]
    );
    let errors = metric(
        &c,
        "herald_plugin_errors_total",
        r#"plugin="looper",watch="configmap.v1.core""#,
    )
    .await
    .unwrap_or(0.0);
    assert!(
        (5.0..=6.0).contains(&errors),
        "{errors} failed calls: the breaker should stop calling after 5 (one more may be running on the other worker)"
    );

    // After the backoff, a trial: a ConfigMap it still loops on suspends it
    // again (for twice as long) ...
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map(NS, "bad-trial", &[("v", "1")]),
        )
        .await
        .expect("create");
    let again = herald.wait_line("plugin still failing", 1).await;
    assert_eq!(again[0]["level"], "WARN");
    assert_eq!(again[0]["fields"]["plugin"], "looper");
    assert_eq!(again[0]["fields"]["backoff"], "2s");
    assert_eq!(
        metric(&c, "herald_plugin_suspended", r#"plugin="looper""#).await,
        Some(1.0)
    );
    // ... and once it works again (a ConfigMap it does not loop on), the
    // trial succeeds and it resumes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map(NS, "good-1", &[("v", "1")]),
        )
        .await
        .expect("create");
    let resumed = herald.wait_line("plugin resumed", 1).await;
    assert_eq!(resumed[0]["level"], "INFO");
    assert_eq!(resumed[0]["fields"]["plugin"], "looper");
    assert_eq!(resumed[0]["fields"]["watch"], "configmap.v1.core");
    wait_metric(&c, "herald_plugin_suspended", r#"plugin="looper""#, 0.0).await;
    // Called again: a bad one fails (and is counted) but alone does not
    // suspend it.
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map(NS, "bad-after", &[("v", "1")]),
        )
        .await
        .expect("create");
    wait_metric(
        &c,
        "herald_plugin_errors_total",
        r#"plugin="looper",watch="configmap.v1.core""#,
        errors + 2.0,
    )
    .await;
    assert_eq!(
        metric(&c, "herald_plugin_suspended", r#"plugin="looper""#).await,
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_workers_each_object_is_notified_in_order() {
    let c = Cluster::start(Duration::from_millis(500)).await;
    let hook = Receiver::ok().await;
    let state = c.dir.path().join("state");
    let config = c.config(&format!(
        r#"
cluster: iso
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [{NS}], plugins: [stamp] }}
sinks:
  - name: hook
    type: webhook
    url: {url}
plugins:
  dir: {dir}
  config:
    stamp: {{ mode: pass }}
  policy:
    stamp: {{ file: hostile_plugin.wasm }}
pipeline:
  workers: 4
stateDir: {state}
"#,
        url = hook.url("/"),
        dir = plugin_dir().display(),
        state = state.display(),
    ));
    let _herald = Herald::start(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    const OBJECTS: usize = 6;
    const UPDATES: usize = 60;
    for i in 0..OBJECTS {
        c.sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map(NS, &format!("o{i}"), &[("v", "0")]),
            )
            .await
            .expect("create");
    }
    // Interleaved across the objects, as fast as the simulator takes them.
    for k in 1..=UPDATES {
        for i in 0..OBJECTS {
            let mut cm = c
                .sim
                .get("configmaps", NS, &format!("o{i}"))
                .await
                .expect("get");
            cm["data"]["v"] = json!(k.to_string());
            c.sim.update("configmaps", cm).await.expect("update");
        }
    }
    let want = OBJECTS * (UPDATES + 1);
    assert!(
        hook.wait_for(Duration::from_secs(60), |r| r
            .iter()
            .filter(|q| q.acknowledged())
            .count()
            >= want)
            .await,
        "{} of {want} notifications",
        hook.count()
    );
    let mut per_object: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, v) in notifications(&hook) {
        let rv: u64 = v["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("numeric resourceVersion");
        per_object
            .entry(v["name"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(rv);
    }
    assert_eq!(per_object.len(), OBJECTS, "{per_object:?}");
    for (name, rvs) in &per_object {
        assert_eq!(rvs.len(), UPDATES + 1, "{name}: {rvs:?}");
        assert!(
            rvs.windows(2).all(|w| w[0] < w[1]),
            "{name}: resourceVersions out of order: {rvs:?}"
        );
    }
}
