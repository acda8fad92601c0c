//! Issue 20's acceptance: a Secret watched with the shipped `prune` plugin
//! (`secrets: true`) has its password rotated, and no sink shows the old or
//! the new value, in plaintext or base64, in `old`, a patch, a diff or
//! anywhere else in what it sends. The real `herald run` against the
//! API-server simulator, delivering to loopback receivers and stdout.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_e2e::receiver::{Receiver, Request};
use herald_e2e::{Cluster, HeraldProcess, plugin_dir, wait_http_ok};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

const OLD_PASSWORD: &str = "hunter2-old-value";
const NEW_PASSWORD: &str = "s3cret-new-value";
/// A key the rotation deletes: only the previous state has it.
const LEGACY: &str = "legacy-api-key-value";

/// Every form a value may take in a body: plaintext and base64, padded or
/// not (the unpadded text is a prefix of the padded one).
fn forms(plain: &str) -> [String; 2] {
    let b64 = STANDARD.encode(plain);
    [plain.to_string(), b64.trim_end_matches('=').to_string()]
}

/// The Secret in `vault` as `kubectl apply` leaves it: `data` and the
/// last-applied annotation both hold the values.
fn secret(data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(STANDARD.encode(v))))
        .collect();
    let applied = json!({"apiVersion": "v1", "kind": "Secret", "data": data}).to_string();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db", "namespace": "vault", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": applied
        }},
        "data": data
    })
}

/// The MODIFIED notification of `vault/db` in an envelope, wherever the
/// sink puts it.
fn is_rotation(envelope: &Value) -> bool {
    envelope["change"] == "modified" && envelope["kind"] == "Secret" && envelope["name"] == "db"
}

fn body_has_rotation(r: &Request) -> bool {
    let v = r.json();
    is_rotation(&v)
        || is_rotation(&v["data"])
        || v["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(is_rotation))
        || v["blocks"][0]["text"]["text"] == "Secret vault/db modified"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_reaches_no_sink_in_plaintext_or_base64() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let (full, patch, structured, binary, batch, slack) = (
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
    );
    let slack_url = slack.url("/services/T0/B0/secrets");
    let config = c.config(&format!(
        r#"
cluster: secrets-cluster
watch:
  - {{ version: v1, kind: Secret, namespaces: [vault], plugins: [prune, diff], secretData: include }}
plugins:
  dir: {}
  config:
    prune: {{ secrets: true }}
    # diff's own secret handling off: its patch, built inside the chain, is
    # only as safe as the previous state prune left.
    diff: {{ secrets: false, maskRedacted: false }}
  policy:
    # prune is what keeps the values in: it fails closed.
    prune: {{ file: prune.wasm, onError: drop }}
    diff: {{ file: diff.wasm }}
sinks:
  - name: raw-full
    type: webhook
    url: {}
    old: full
  - name: raw-patch
    type: webhook
    url: {}
    old: patch
  - name: ce-structured
    type: webhook
    url: {}
    format: cloudevents
    mode: structured
    old: full
  - name: ce-binary
    type: webhook
    url: {}
    format: cloudevents
    mode: binary
  - name: batch
    type: batch
    url: {}
    interval: 100ms
    old: full
  - name: slack
    type: slack
    webhookUrl: {{ env: SLACK_URL }}
  - name: log
    type: log
    old: full
"#,
        plugin_dir().display(),
        full.url("/full"),
        patch.url("/patch"),
        structured.url("/structured"),
        binary.url("/binary"),
        batch.url("/batch"),
    ));
    let herald = HeraldProcess::run_with_env(BIN, &config, &[("SLACK_URL", slack_url.as_str())]);
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );

    let sim = &c.sim;
    let created = sim
        .create(
            "secrets",
            secret(&[("password", OLD_PASSWORD), ("legacy", LEGACY)]),
        )
        .await
        .expect("create");
    // The rotation: a new password, the legacy key gone.
    let mut rotated = secret(&[("password", NEW_PASSWORD)]);
    rotated["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    sim.update("secrets", rotated).await.expect("rotate");

    // Every sink is told about the rotation.
    let receivers = [
        ("raw-full", &full),
        ("raw-patch", &patch),
        ("ce-structured", &structured),
        ("ce-binary", &binary),
        ("batch", &batch),
        ("slack", &slack),
    ];
    for (name, r) in &receivers {
        assert!(
            r.wait_for(Duration::from_secs(20), |q| q.iter().any(body_has_rotation))
                .await,
            "{name} never got the rotation: {:?}",
            r.requests()
                .iter()
                .map(|q| String::from_utf8_lossy(&q.body).to_string())
                .collect::<Vec<_>>()
        );
    }
    let mut lines = Vec::new();
    while !lines.iter().any(is_rotation) {
        lines.push(herald.next());
    }

    // What the sinks show of the rotation: the keys, never the values.
    let envelope = full
        .requests()
        .iter()
        .map(Request::json)
        .find(is_rotation)
        .expect("raw-full's rotation");
    assert_eq!(
        envelope["object"]["data"],
        json!({"password": "<redacted>"})
    );
    assert_eq!(
        envelope["old"]["data"],
        json!({"password": "<redacted>", "legacy": "<redacted>"}),
        "the previous state is redacted as the object is"
    );
    assert!(
        envelope["object"]["heraldDiff"].is_array(),
        "diff ran after prune: {envelope}"
    );
    let line = lines.iter().find(|l| is_rotation(l)).expect("the log line");
    assert_eq!(line["old"]["data"]["password"], "<redacted>");

    // And nowhere, in any body or line, is a value.
    let mut bodies: Vec<(String, String)> = Vec::new();
    for (name, r) in &receivers {
        for q in r.requests() {
            bodies.push((
                format!("{name} request {}", q.seq),
                String::from_utf8_lossy(&q.body).to_string(),
            ));
        }
    }
    for (i, l) in lines.iter().enumerate() {
        bodies.push((format!("stdout line {i}"), l.to_string()));
    }
    assert!(bodies.len() > receivers.len(), "{bodies:?}");
    for value in [OLD_PASSWORD, NEW_PASSWORD, LEGACY] {
        for form in forms(value) {
            for (whence, body) in &bodies {
                assert!(
                    !body.contains(&form),
                    "{whence} shows {form:?} (of {value:?}): {body}"
                );
            }
        }
    }
}

/// Issue 14's default: a Secret watched with no plugins at all (and no
/// `secretData`) has its values replaced by keyed digests before anything
/// keeps it: the notifications (the log sink, `old` included), the query API
/// and the state dir's file hold no value in plaintext or base64; the keys
/// stay and the rotation is notified, its digest changed. A watch that says
/// `secretData: include` gets the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_leave_by_default_and_flow_when_included() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let state = c.dir.path().join("state");
    let config = c.config(&format!(
        r#"
stateDir: {state}
watch:
  - {{ version: v1, kind: Secret, namespaces: [vault] }}
  - {{ name: open, version: v1, kind: Secret, namespaces: [open], secretData: include }}
sinks:
  - {{ name: out, type: log, old: full }}
"#,
        state = state.display()
    ));
    let herald = HeraldProcess::run(BIN, &config);
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never ready"
    );

    c.sim
        .create(
            "secrets",
            secret(&[("password", OLD_PASSWORD), ("user", LEGACY)]),
        )
        .await
        .expect("create");
    let added = herald.next();
    assert_eq!(
        (added["change"].as_str(), added["name"].as_str()),
        (Some("added"), Some("db"))
    );
    let mut rotated = secret(&[("password", NEW_PASSWORD), ("user", LEGACY)]);
    rotated["metadata"]["resourceVersion"] =
        c.sim.get("secrets", "vault", "db").await.expect("get")["metadata"]["resourceVersion"]
            .clone();
    c.sim.update("secrets", rotated).await.expect("rotate");
    let modified = herald.next();
    assert_eq!(
        modified["change"], "modified",
        "the rotation is notified: {modified}"
    );
    let (new_pw, old_pw) = (
        modified["object"]["data"]["password"]
            .as_str()
            .unwrap_or_default(),
        modified["old"]["data"]["password"]
            .as_str()
            .unwrap_or_default(),
    );
    assert!(new_pw.starts_with("<redacted sha256:"), "{modified}");
    assert!(
        old_pw.starts_with("<redacted sha256:") && old_pw != new_pw,
        "{modified}"
    );
    assert_eq!(
        modified["object"]["data"]["user"], modified["old"]["data"]["user"],
        "an unchanged key keeps its digest"
    );

    let (code, queried) =
        herald_e2e::http_get(&c.api("/api/v1/resources/core/v1/secrets/vault/db"))
            .await
            .expect("query");
    assert_eq!(code, 200, "{queried}");
    let db = std::fs::read(state.join("herald-state.redb")).expect("state file");
    let db = String::from_utf8_lossy(&db);
    for (what, text) in [
        ("added", added.to_string()),
        ("modified", modified.to_string()),
        ("query", queried.to_string()),
        ("state dir", db.to_string()),
    ] {
        for plain in [OLD_PASSWORD, NEW_PASSWORD, LEGACY] {
            for form in forms(plain) {
                assert!(!text.contains(&form), "{what} shows {form:?}");
            }
        }
    }

    // secretData: include — the data as the API server has it.
    let mut open = secret(&[("password", OLD_PASSWORD)]);
    open["metadata"]["namespace"] = json!("open");
    c.sim.create("secrets", open).await.expect("create");
    let n = herald.next();
    assert_eq!(
        n["object"]["data"]["password"],
        STANDARD.encode(OLD_PASSWORD),
        "{n}"
    );
}
