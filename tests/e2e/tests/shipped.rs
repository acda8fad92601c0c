//! The shipped plugins through the real `herald run`, against the API-server
//! simulator: one herald process, one watch per plugin (each in a namespace
//! of its own), notifications read from the log sink.

use std::time::Duration;

use herald_e2e::{Cluster, HeraldProcess, plugin_dir, wait_http_ok};
use serde_json::{Value, json};

fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    herald_sim::fixtures::pod(ns, name, labels)
}

/// Notifications until `n` arrived or a quiet second passed.
fn collect(herald: &HeraldProcess, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        match herald.next_within(Duration::from_secs(10)) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    // Anything more would be a notification that should not exist.
    while let Some(v) = herald.next_within(Duration::from_millis(700)) {
        out.push(v);
    }
    out
}

fn find<'a>(got: &'a [Value], ns: &str, name: &str, change: &str) -> Vec<&'a Value> {
    got.iter()
        .filter(|v| v["namespace"] == ns && v["name"] == name && v["change"] == change)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_plugins_filter_prune_noise_diff_and_route_in_the_host() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let sim = &c.sim;
    let config = c.config(&format!(
        r#"
cluster: shipped
watch:
  - {{ name: f, version: v1, kind: Pod, namespaces: [f], plugins: [filter] }}
  - {{ name: p, version: v1, kind: Pod, namespaces: [p], plugins: [prune] }}
  - {{ name: ps, version: v1, kind: Secret, namespaces: [p], plugins: [prune], secretData: include }}
  - {{ name: n, version: v1, kind: Pod, namespaces: [n], plugins: [noise] }}
  - {{ name: d, version: v1, kind: Pod, namespaces: [d], plugins: [diff] }}
  - {{ name: r, version: v1, kind: Pod, namespaces: [r], plugins: [route] }}
plugins:
  dir: {dir}
  config:
    filter: {{ labelSelector: "tier=frontend", changes: [added, deleted] }}
    prune: {{ remove: [metadata.managedFields, "/spec/containers/*/env"], secrets: true }}
    noise: {{}}
    diff: {{ ignore: [/metadata/resourceVersion, /metadata/managedFields, /metadata/generation, /status] }}
    route:
      rules:
        - {{ match: {{ labels: "team=pay" }}, sinks: [pay-hook] }}
      defaultSinks: [ops]
"#,
        dir = plugin_dir().display(),
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    // Ready: every watch has finished its first list (`/readyz`; the query
    // API can answer before each namespace's watch has). A pod created
    // before its own watch's first list is in that list: the state herald
    // starts from, not an addition (a cold CI run lost f/front and p/pruned
    // that way when this waited on the query API).
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );

    // filter: tier=frontend, added and deleted only.
    sim.create("pods", pod("f", "front", &[("tier", "frontend")]))
        .await
        .expect("create");
    sim.create("pods", pod("f", "back", &[("tier", "backend")]))
        .await
        .expect("create");
    sim.patch_merge(
        "pods",
        "f",
        "front",
        json!({"metadata": {"labels": {"x": "1"}}}),
    )
    .await
    .expect("patch");
    // prune: managedFields and env gone; a Secret's values redacted, keys kept.
    sim.create("pods", pod("p", "pruned", &[]))
        .await
        .expect("create");
    sim.create(
        "secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "p"},
               "data": {"password": "aHVudGVyMg=="}}),
    )
    .await
    .expect("create");
    // noise: a status-only change is dropped, a label change is not.
    sim.create("pods", pod("n", "noisy", &[]))
        .await
        .expect("create");
    let mut noisy = sim.get("pods", "n", "noisy").await.expect("get");
    noisy["status"]["phase"] = json!("Succeeded");
    sim.update_status("pods", noisy).await.expect("status");
    sim.patch_merge(
        "pods",
        "n",
        "noisy",
        json!({"metadata": {"labels": {"real": "change"}}}),
    )
    .await
    .expect("patch");
    // diff: the patch of the label change is attached.
    sim.create("pods", pod("d", "diffed", &[("v", "1")]))
        .await
        .expect("create");
    sim.patch_merge(
        "pods",
        "d",
        "diffed",
        json!({"metadata": {"labels": {"v": "2"}}}),
    )
    .await
    .expect("patch");
    // route: by label, else the default sinks.
    sim.create("pods", pod("r", "pay", &[("team", "pay")]))
        .await
        .expect("create");
    sim.create("pods", pod("r", "other", &[("team", "web")]))
        .await
        .expect("create");

    // Expected: f/front added; p/pruned added; p/creds added; n/noisy added
    // and modified (label); d/diffed added and modified; r/pay, r/other added.
    let got = collect(&herald, 9);
    let summary: Vec<String> = got
        .iter()
        .map(|v| format!("{} {}/{}", v["change"], v["namespace"], v["name"]))
        .collect();
    assert_eq!(got.len(), 9, "{summary:#?}");

    assert_eq!(find(&got, "f", "front", "added").len(), 1, "{summary:#?}");
    assert!(
        find(&got, "f", "back", "added").is_empty(),
        "filter let a backend pod through"
    );
    assert!(
        find(&got, "f", "front", "modified").is_empty(),
        "filter let a modified through"
    );

    let pruned = find(&got, "p", "pruned", "added")[0];
    assert!(pruned["object"]["metadata"].get("managedFields").is_none());
    assert!(
        pruned["object"]["spec"]["containers"][0]
            .get("env")
            .is_none()
    );
    assert!(
        pruned["object"]["spec"]["containers"][0]
            .get("image")
            .is_some()
    );
    let secret = find(&got, "p", "creds", "added")[0];
    assert_eq!(secret["object"]["data"]["password"], "<redacted>");

    assert_eq!(find(&got, "n", "noisy", "added").len(), 1);
    let modified = find(&got, "n", "noisy", "modified");
    assert_eq!(
        modified.len(),
        1,
        "the status-only change must be dropped: {summary:#?}"
    );
    assert_eq!(
        modified[0]["object"]["metadata"]["labels"]["real"],
        "change"
    );

    let diffed = find(&got, "d", "diffed", "modified")[0];
    assert_eq!(
        diffed["object"]["heraldDiff"],
        json!([{"op": "replace", "path": "/metadata/labels/v", "value": "2"}]),
        "{diffed}"
    );

    assert_eq!(
        find(&got, "r", "pay", "added")[0]["routes"],
        json!(["pay-hook"])
    );
    assert_eq!(
        find(&got, "r", "other", "added")[0]["routes"],
        json!(["ops"])
    );
}

#[test]
fn every_shipped_plugin_is_at_most_200_kb() {
    for name in ["filter", "prune", "noise", "diff", "route", "label_filter"] {
        let path = herald_e2e::wasm(name);
        let size = std::fs::metadata(&path).expect("metadata").len();
        assert!(
            size <= 200_000,
            "{} is {size} bytes, over the 200 KB budget",
            path.display()
        );
    }
}
