//! `herald explain`, run as the real binary: each step says why an object
//! ends where it ends, and each sink's request is the one it would send.

use std::process::Command;

use herald_e2e::plugin_dir;
use serde_json::{Value, json};

fn explain(dir: &tempfile::TempDir, object: &Value, extra: &[&str]) -> (i32, String, String) {
    let obj = dir.path().join("object.json");
    std::fs::write(&obj, object.to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("explain")
        .arg("--config")
        .arg(dir.path().join("herald.yaml"))
        .arg(&obj)
        .args(extra)
        .output()
        .expect("run herald");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A config: Pods of `shop` and `web` through label_filter (app=web), a
/// signed webhook for `shop` only, and a log sink.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("signing.key");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("write");
    let config = format!(
        "cluster: test
watch:
  - kind: Pod
    version: v1
    namespaces: [shop, web]
    labelSelector: tier=front
    plugins: [label_filter]
plugins:
  dir: {}
  config:
    label_filter: {{labels: {{app: web}}}}
sinks:
  - name: hook
    type: webhook
    url: http://127.0.0.1:9/hooks
    namespaces: [shop]
    headers: {{x-team: payments}}
    signing: {{secrets: [{{file: {}}}]}}
  - name: out
    type: log
",
        plugin_dir().display(),
        secret.display()
    );
    std::fs::write(dir.path().join("herald.yaml"), config).expect("write");
    dir
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                        "resourceVersion": "7", "labels": {"app": app, "tier": "front"}},
           "status": {"phase": "Running"}})
}

#[test]
fn a_change_dropped_by_a_filter_names_the_plugin_and_its_reason() {
    let dir = setup();
    let (code, out, err) = explain(&dir, &pod("shop", "db-1", "db"), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("plugin label_filter: drop: label app=db, want web"),
        "{out}"
    );
    assert!(
        out.contains("not notified: dropped by plugin label_filter: label app=db, want web"),
        "{out}"
    );
    let (code, out, err) = explain(&dir, &pod("shop", "db-1", "db"), &["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(v["watches"][0]["fate"], "dropped");
    assert_eq!(v["watches"][0]["plugins"][0]["plugin"], "label_filter");
    assert_eq!(
        v["watches"][0]["plugins"][0]["reason"],
        "label app=db, want web"
    );
}

#[test]
fn a_routed_change_shows_each_sinks_exact_request_without_the_signature() {
    let dir = setup();
    let (code, out, err) = explain(&dir, &pod("shop", "web-1", "web"), &["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    let w = &v["watches"][0];
    assert_eq!(w["fate"], "delivered", "{w}");
    assert_eq!(w["plugins"][0]["verdict"], "pass");
    let hook = &w["sinks"][0];
    assert_eq!(hook["sink"], "hook");
    assert_eq!(hook["method"], "POST");
    assert_eq!(hook["url"], "http://127.0.0.1:9/hooks");
    let headers: Vec<(String, String)> =
        serde_json::from_value(hook["headers"].clone()).expect("headers");
    let header = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("x-team"), "payments");
    assert_eq!(header("content-type"), "application/json");
    assert!(header("webhook-id").starts_with("msg_"), "{headers:?}");
    assert!(
        header("webhook-signature").starts_with("<marked"),
        "{headers:?}"
    );
    let body: Value =
        serde_json::from_str(hook["body"].as_str().unwrap_or_default()).expect("the body is JSON");
    assert_eq!(body["name"], "web-1");
    assert_eq!(body["change"], "added");
    assert_eq!(body["id"].as_str(), Some(header("webhook-id").as_str()));
    assert_eq!(body["object"]["status"]["phase"], "Running");
    assert_eq!(w["sinks"][1]["sink"], "out");

    // In `web` the webhook is left out by its namespaces, and says so.
    let (code, out, err) = explain(&dir, &pod("web", "web-2", "web"), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("not hook: namespace \"web\" is not in the sink's namespaces [\"shop\"]"),
        "{out}"
    );
    assert!(out.contains("=> notified: to out"), "{out}");
}

#[test]
fn a_watch_that_does_not_match_says_why() {
    let dir = setup();
    for (object, why) in [
        (
            pod("kube-system", "web-1", "web"),
            "namespace \"kube-system\" is not in namespaces [\"shop\", \"web\"]",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "d", "namespace": "shop"}}),
            "type: the object is apps/v1 Deployment, the watch is for v1 Pod",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "shop", "labels": {"tier": "back"}}}),
            "labelSelector \"tier=front\" does not select labels {\"tier\":\"back\"}",
        ),
    ] {
        let (code, out, err) = explain(&dir, &object, &[]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("watch: no match: {why}")), "{out}");
        assert!(
            out.contains("fate: not notified: no watch sees it"),
            "{out}"
        );
    }
}

#[tokio::test]
async fn dedup_against_a_state_dir_says_already_notified() {
    use herald::change::{ChangeEvent, ChangeType, Gvk};
    let dir = setup();
    let state = dir.path().join("state");
    let object = pod("shop", "web-1", "web");
    {
        // The state dir as `herald run` leaves it after notifying this state.
        let store = herald::state::StateStore::open(&state).expect("state dir");
        let dedup = herald::dedup::Dedup::new(&Default::default()).expect("dedup");
        let ev = ChangeEvent::new(
            ChangeType::Added,
            Gvk {
                group: String::new(),
                version: "v1".into(),
                kind: "Pod".into(),
            },
            object.clone(),
            None,
        )
        .with_watch("pod.v1.core");
        let record =
            herald::state::ObjectRecord::from_event(&ev, dedup.hash(&object)).expect("record");
        store.put_object(record).await.expect("recorded");
    }
    let state_arg = state.to_string_lossy().into_owned();
    let (code, out, err) = explain(&dir, &object, &["--state-dir", &state_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2. dedup: already notified"), "{out}");
    assert!(out.contains("(recorded in the state dir)"), "{out}");
    assert!(
        !out.contains("plugin label_filter"),
        "stops before the plugins: {out}"
    );
    // Another state of the same object is news.
    let mut changed = object.clone();
    changed["status"]["phase"] = json!("Failed");
    let (code, out, err) = explain(&dir, &changed, &["--state-dir", &state_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2. dedup: new state"), "{out}");
    assert!(out.contains("=> notified: to hook, out"), "{out}");
}

/// A plugin listed under `plugins.config` with nothing after its name (YAML
/// null) gets `{}`, as one with no entry does: its `#[serde(default)]`
/// config works, where `null` used to fail its init.
#[test]
fn an_empty_plugin_config_is_an_empty_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "watch:\n  - {{kind: Pod, version: v1, plugins: [noise]}}\nplugins:\n  dir: {}\n  config:\n    noise:\n",
        plugin_dir().display()
    );
    std::fs::write(dir.path().join("herald.yaml"), config).expect("write");
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d", "uid": "u1", "resourceVersion": "1"}});
    let (code, out, err) = explain(&dir, &pod, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("init failed"), "{err}");
    assert!(out.contains("noise"), "the chain ran noise: {out}");
}
