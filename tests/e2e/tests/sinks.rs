//! Sinks end to end (issue 5's acceptance): the real `herald run` against the
//! API-server simulator, delivering to real HTTP receivers on loopback whose
//! answers are scripted (outages, 429 with `Retry-After`, 400, 410, hangs).
//! Every assertion is on what the receivers got and when.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use herald_e2e::receiver::{
    Receiver, Reply, Request, standard_webhooks_signature, verify_signature,
};
use herald_e2e::{Cluster, HeraldProcess, http_get, plugin_dir, wait_http_ok};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// Starts herald on `yaml` and waits until it is ready (initial lists done).
async fn herald(c: &Cluster, yaml: &str, env: &[(&str, &str)]) -> HeraldProcess {
    let config = c.config(yaml);
    let h = HeraldProcess::run_with_env(BIN, &config, env);
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );
    h
}

/// `GET /sinks`, by sink name.
async fn sinks(c: &Cluster) -> BTreeMap<String, Value> {
    let (code, body) = http_get(&c.api("/sinks")).await.expect("GET /sinks");
    assert_eq!(code, 200, "{body}");
    body.as_array()
        .unwrap_or_else(|| panic!("GET /sinks is not a list: {body}"))
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s.clone(),
            )
        })
        .collect()
}

/// The simulator's writes of `kind` in `namespace`, in order, as (uid, rv).
fn writes(c: &Cluster, kind: &str, namespace: &str) -> Vec<(String, String)> {
    c.sim
        .change_log()
        .into_iter()
        .filter(|ch| ch.kind == kind && ch.namespace.as_deref() == Some(namespace))
        .map(|ch| (ch.uid, ch.resource_version.to_string()))
        .collect()
}

fn uid_rv(v: &Value) -> (String, String) {
    (
        v["uid"].as_str().unwrap_or_default().to_string(),
        v["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

// === signatures and CloudEvents ===

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
// base64 of "second-secret-for-rotation".
const SECRET_B: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";
const WRONG: &str = "whsec_d3Jvbmctc2VjcmV0";
const TOLERANCE: Duration = Duration::from_secs(300);

#[test]
fn the_test_verifier_matches_the_standard_webhooks_example() {
    // The worked example of the Standard Webhooks specification.
    let sig = standard_webhooks_signature(
        SECRET_A,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
    )
    .unwrap();
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

/// The `webhook-signature` header holds one valid signature per secret, and
/// the checks fail for a wrong secret or a changed body.
fn assert_signed_by(r: &Request, secrets: &[&str]) {
    let header = r.header("webhook-signature").expect("webhook-signature");
    let sigs: Vec<&str> = header.split(' ').collect();
    assert_eq!(
        sigs.len(),
        secrets.len(),
        "one signature per secret: {header}"
    );
    let id = r.header("webhook-id").expect("webhook-id");
    let ts = r.header("webhook-timestamp").expect("webhook-timestamp");
    for (i, secret) in secrets.iter().enumerate() {
        verify_signature(r, secret, TOLERANCE)
            .unwrap_or_else(|e| panic!("secret {i} on request {}: {e}", r.seq));
        let expected = standard_webhooks_signature(secret, id, ts, &r.body).unwrap();
        assert!(sigs.contains(&expected.as_str()), "secret {i}: {header}");
    }
    assert!(verify_signature(r, WRONG, TOLERANCE).is_err());
    let mut tampered = r.clone();
    let mut body = r.body.to_vec();
    body.push(b' ');
    tampered.body = body.into();
    assert!(verify_signature(&tampered, secrets[0], TOLERANCE).is_err());
}

/// An RFC 3339 time within a minute of the receipt.
fn assert_recent_rfc3339(r: &Request, t: &str) {
    let when = humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
    let skew = r.time.duration_since(when).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60), "{t} vs receipt: {skew:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_for_rotation_and_speak_raw_and_cloudevents() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let (raw, binary, structured) = (
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
    );
    let (token, password) = (c.dir.path().join("token"), c.dir.path().join("password"));
    std::fs::write(&token, "t0ken\n").expect("write token");
    std::fs::write(&password, "pa55:word\n").expect("write password");
    let _herald = herald(
        &c,
        &format!(
            r#"
cluster: sig-cluster
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [shop] }}
sinks:
  - name: raw
    type: webhook
    url: {}
    signing: {{ secrets: [ {{ env: HOOK_SECRET_A }}, {{ env: HOOK_SECRET_B }} ] }}
    metadata: {{ team: payments, tier: 1 }}
  - name: binary
    type: webhook
    url: {}
    format: cloudevents
    mode: binary
    signing: {{ secrets: [ {{ env: HOOK_SECRET_A }} ] }}
    auth: {{ bearerTokenFile: {} }}
  - name: structured
    type: webhook
    url: {}
    format: cloudevents
    mode: structured
    auth: {{ basic: {{ username: {{ env: HOOK_USER }}, password: {{ file: {} }} }} }}
    headers: {{ x-team: payments }}
"#,
            raw.url("/raw"),
            binary.url("/binary"),
            token.display(),
            structured.url("/structured"),
            password.display(),
        ),
        &[
            ("HOOK_SECRET_A", SECRET_A),
            ("HOOK_SECRET_B", SECRET_B),
            ("HOOK_USER", "herald"),
        ],
    )
    .await;

    let sim = &c.sim;
    let created = sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map("shop", "settings", &[("mode", "a")]),
        )
        .await
        .expect("create");
    let uid = str_of(&created, "/metadata/uid").to_string();
    sim.patch_merge(
        "configmaps",
        "shop",
        "settings",
        json!({"data": {"mode": "b", "extra": "x"}}),
    )
    .await
    .expect("patch");
    sim.delete("configmaps", "shop", "settings")
        .await
        .expect("delete");
    let rvs: Vec<String> = writes(&c, "ConfigMap", "shop")
        .into_iter()
        .map(|(_, rv)| rv)
        .collect();
    assert_eq!(rvs.len(), 3);
    let changes = ["added", "modified", "deleted"];

    for r in [&raw, &binary, &structured] {
        assert!(
            r.wait_for(Duration::from_secs(20), |q| q.len() >= 3).await,
            "3 notifications within 20 s, got {}",
            r.count()
        );
    }
    // Nothing more (no retry of an acknowledged delivery).
    tokio::time::sleep(Duration::from_millis(500)).await;

    // raw: herald's envelope, signed with both secrets.
    let got = raw.requests();
    assert_eq!(got.len(), 3);
    let mut ids = BTreeSet::new();
    for (i, r) in got.iter().enumerate() {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/raw"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_signed_by(r, &[SECRET_A, SECRET_B]);
        let b = r.json();
        assert_eq!(b["id"].as_str(), r.header("webhook-id"), "{b}");
        assert!(ids.insert(b["id"].to_string()), "ids differ per change");
        assert_eq!(b["cluster"], "sig-cluster");
        assert_eq!(b["change"], changes[i], "in order: {b}");
        assert_eq!(b["apiVersion"], "v1");
        assert_eq!(b["kind"], "ConfigMap");
        assert_eq!(b["namespace"], "shop");
        assert_eq!(b["name"], "settings");
        assert_eq!(b["uid"], uid.as_str());
        assert_eq!(b["resourceVersion"], rvs[i].as_str());
        assert_eq!(b["object"]["metadata"]["name"], "settings");
        assert_eq!(b["metadata"], json!({"team": "payments", "tier": 1}));
    }
    let added = got[0].json();
    assert_eq!(added["object"]["data"], json!({"mode": "a"}));
    assert!(
        added.get("patch").is_none(),
        "nothing to patch from: {added}"
    );
    let modified = got[1].json();
    assert_eq!(
        modified["object"]["data"],
        json!({"mode": "b", "extra": "x"})
    );
    let patch = modified["patch"].as_array().expect("a JSON Patch");
    for op in [
        json!({"op": "replace", "path": "/data/mode", "value": "b"}),
        json!({"op": "add", "path": "/data/extra", "value": "x"}),
    ] {
        assert!(patch.contains(&op), "{op} in {}", modified["patch"]);
    }

    // CloudEvents, binary mode: attributes in ce-* headers, signed.
    let got = binary.requests();
    assert_eq!(got.len(), 3);
    for (i, r) in got.iter().enumerate() {
        assert_signed_by(r, &[SECRET_A]);
        assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(r.header("ce-specversion"), Some("1.0"));
        assert_eq!(
            r.header("ce-type").map(String::from),
            Some(format!("io.k8s.core.configmap.{}", changes[i]))
        );
        assert_eq!(r.header("ce-source"), Some("sig-cluster"));
        assert_eq!(r.header("ce-subject"), Some("shop/settings"));
        let id = r.header("ce-id").expect("ce-id");
        assert_eq!(Some(id), r.header("webhook-id"));
        let b = r.json();
        assert_eq!(b["id"], id, "the stable id everywhere");
        assert_eq!(b["resourceVersion"], rvs[i].as_str());
        assert_recent_rfc3339(r, r.header("ce-time").expect("ce-time"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    // CloudEvents, structured mode: the whole event in the body, unsigned.
    let got = structured.requests();
    assert_eq!(got.len(), 3);
    for (i, r) in got.iter().enumerate() {
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/cloudevents+json")),
            "{:?}",
            r.headers
        );
        assert!(r.header("ce-id").is_none() && r.header("webhook-signature").is_none());
        // base64("herald:pa55:word")
        assert_eq!(
            r.header("authorization"),
            Some("Basic aGVyYWxkOnBhNTU6d29yZA==")
        );
        assert_eq!(r.header("x-team"), Some("payments"));
        let e = r.json();
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(
            e["type"],
            format!("io.k8s.core.configmap.{}", changes[i]).as_str()
        );
        assert_eq!(e["source"], "sig-cluster");
        assert_eq!(e["subject"], "shop/settings");
        assert!(str_of(&e, "/id").starts_with("msg_"), "{e}");
        assert_eq!(e["id"], e["data"]["id"]);
        assert_recent_rfc3339(r, str_of(&e, "/time"));
        assert_eq!(e["datacontenttype"], "application/json");
        assert_eq!(e["data"]["change"], changes[i]);
        assert_eq!(e["data"]["uid"], uid.as_str());
        assert_eq!(e["data"]["object"]["metadata"]["namespace"], "shop");
    }
}

// === retries ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_then_429_loses_nothing_keeps_order_and_honours_retry_after() {
    const OUTAGE: Duration = Duration::from_secs(30);
    const TOO_MANY: usize = 3;
    let c = Cluster::start(Duration::from_millis(200)).await;
    let after_outage = Arc::new(AtomicUsize::new(0));
    let n = after_outage.clone();
    let receiver = Receiver::start(move |_, since_first| {
        if since_first < OUTAGE {
            return Reply::status(500).body("down for maintenance");
        }
        if n.fetch_add(1, Ordering::SeqCst) < TOO_MANY {
            Reply::status(429).header("retry-after", "2")
        } else {
            Reply::ok()
        }
    })
    .await;
    let _herald = herald(
        &c,
        &format!(
            r#"
cluster: retry-cluster
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [outage] }}
sinks:
  - name: flaky
    type: webhook
    url: {}
    retry: {{ initialBackoff: 200ms, maxBackoff: 2s, maxAge: 5m }}
"#,
            receiver.url("/hook")
        ),
        &[],
    )
    .await;

    // Six objects, five changes each, all written during the outage.
    let sim = &c.sim;
    for round in 0..5 {
        for i in 0..6 {
            let name = format!("cm-{i}");
            match round {
                0 => sim
                    .create(
                        "configmaps",
                        herald_sim::fixtures::config_map("outage", &name, &[("round", "0")]),
                    )
                    .await
                    .map(drop),
                4 => sim.delete("configmaps", "outage", &name).await.map(drop),
                r => sim
                    .patch_merge(
                        "configmaps",
                        "outage",
                        &name,
                        json!({"data": {"round": r.to_string()}}),
                    )
                    .await
                    .map(drop),
            }
            .expect("write");
        }
    }
    let written = Instant::now();
    let log = writes(&c, "ConfigMap", "outage");
    assert_eq!(log.len(), 30);

    let delivered = |q: &[Request]| q.iter().filter(|r| r.acknowledged()).count();
    assert!(
        receiver
            .wait_for(Duration::from_secs(90), |q| delivered(q) >= log.len())
            .await,
        "every event delivered within 90 s; {} of {}",
        delivered(&receiver.requests()),
        log.len()
    );
    // Anything delivered twice would show up now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.requests();
    let first = got.first().expect("requests").at;
    assert!(
        written < first + OUTAGE,
        "the writes happened during the outage"
    );

    // Exactly once by id, and exactly the simulator's writes.
    let acked: Vec<Value> = got
        .iter()
        .filter(|r| r.acknowledged())
        .map(Request::json)
        .collect();
    let ids: BTreeSet<&str> = acked.iter().map(|b| str_of(b, "/id")).collect();
    assert_eq!(ids.len(), acked.len(), "a notification delivered twice");
    let mut acked_set: Vec<(String, String)> = acked.iter().map(uid_rv).collect();
    acked_set.sort();
    let mut log_set = log.clone();
    log_set.sort();
    assert_eq!(acked_set, log_set, "delivered = written");

    // Per-object order: each object's deliveries in the order it was written.
    for uid in log.iter().map(|(u, _)| u).collect::<BTreeSet<_>>() {
        let written: Vec<&String> = log
            .iter()
            .filter(|(u, _)| u == uid)
            .map(|(_, rv)| rv)
            .collect();
        let seen: Vec<(String, String)> =
            acked.iter().map(uid_rv).filter(|(u, _)| u == uid).collect();
        let seen: Vec<&String> = seen.iter().map(|(_, rv)| rv).collect();
        assert_eq!(seen, written, "order of {uid}");
    }

    // Attempts by notification id, in the order they arrived.
    let mut attempts: BTreeMap<String, Vec<&Request>> = BTreeMap::new();
    for r in &got {
        attempts
            .entry(str_of(&r.json(), "/id").to_string())
            .or_default()
            .push(r);
    }
    // After a 429 with `Retry-After: 2`, the same notification came back no
    // sooner than 2 s later.
    let throttled: Vec<&Request> = got.iter().filter(|r| r.status == Some(429)).collect();
    assert_eq!(throttled.len(), TOO_MANY);
    for r in &throttled {
        let id = str_of(&r.json(), "/id").to_string();
        let next = attempts[&id]
            .iter()
            .find(|a| a.seq > r.seq)
            .unwrap_or_else(|| panic!("{id} was not retried after its 429"));
        let gap = next.at - r.at;
        assert!(
            gap >= Duration::from_millis(1950),
            "retried {gap:?} after a 429 with Retry-After: 2"
        );
    }
    // During the outage: exponential backoff between 200 ms and 2 s.
    let failed = got.iter().filter(|r| r.status == Some(500)).count();
    assert!(failed >= 4, "the outage was seen: {failed} answers 500");
    let mut longest = Duration::ZERO;
    for tries in attempts.values() {
        for w in tries.windows(2) {
            if w[0].status != Some(500) {
                continue;
            }
            let gap = w[1].at - w[0].at;
            longest = longest.max(gap);
            assert!(
                gap >= Duration::from_millis(190) && gap <= Duration::from_millis(2600),
                "{gap:?} between two attempts (initialBackoff 200ms, maxBackoff 2s)"
            );
        }
    }
    assert!(
        longest >= Duration::from_secs(1),
        "backoff grew: {longest:?}"
    );
    assert!(
        failed <= 4 * 30,
        "backoff kept the attempts down: {failed} in 30 s over 4 lanes"
    );

    let s = &sinks(&c).await["flaky"];
    assert_eq!(s["delivered"], 30, "{s}");
    assert_eq!(s["deadLettered"], 0, "{s}");
    assert_eq!(
        (s["depth"].as_u64(), s["inFlight"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        s["retries"].as_u64(),
        Some((got.len() - acked.len()) as u64),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_zero_still_backs_off() {
    // A receiver that keeps saying "retry now" (`Retry-After: 0`, or a date
    // in the past) must not get a tight loop of attempts.
    let c = Cluster::start(Duration::from_millis(200)).await;
    let receiver = Receiver::start(|_, since_first| {
        if since_first < Duration::from_secs(2) {
            Reply::status(503).header("retry-after", "0")
        } else {
            Reply::ok()
        }
    })
    .await;
    let _herald = herald(
        &c,
        &format!(
            r#"
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [now] }}
sinks:
  - name: eager
    type: webhook
    url: {}
    retry: {{ initialBackoff: 200ms, maxBackoff: 1s }}
"#,
            receiver.url("/hook")
        ),
        &[("HERALD_LOG", "error")],
    )
    .await;
    c.sim
        .create(
            "configmaps",
            herald_sim::fixtures::config_map("now", "eager", &[]),
        )
        .await
        .expect("create");
    assert!(
        receiver
            .wait_for(Duration::from_secs(20), |q| q
                .iter()
                .any(Request::acknowledged))
            .await,
        "delivered after the 503s"
    );
    let got = receiver.requests();
    assert!(
        got.len() <= 12,
        "{} attempts in about 2 s: Retry-After: 0 turned into a tight loop",
        got.len()
    );
    for w in got.windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_millis(190),
            "{:?} between attempts",
            w[1].at - w[0].at
        );
    }
}

// === Slack ===

/// Checks Block Kit's limits on a message: at most 50 blocks, header text at
/// most 150 characters, section text at most 3,000, at most 10 fields of at
/// most 2,000 each. Returns the header's text.
fn assert_block_kit(m: &Value) -> String {
    let blocks = m["blocks"]
        .as_array()
        .unwrap_or_else(|| panic!("no blocks: {m}"));
    assert!(
        !blocks.is_empty() && blocks.len() <= 50,
        "{} blocks",
        blocks.len()
    );
    assert!(m["text"].is_string(), "a fallback text");
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for b in blocks {
        match b["type"].as_str() {
            Some("header") => assert!(chars(&b["text"]["text"]) <= 150, "header {b}"),
            Some("section") => {
                assert!(
                    chars(&b["text"]["text"]) <= 3000,
                    "section of {} chars",
                    chars(&b["text"]["text"])
                );
                if let Some(fields) = b["fields"].as_array() {
                    assert!(fields.len() <= 10);
                    assert!(fields.iter().all(|f| chars(&f["text"]) <= 2000));
                }
            }
            Some("divider") | Some("context") => {}
            other => panic!("unexpected block type {other:?}"),
        }
    }
    assert_eq!(blocks[0]["type"], "header");
    str_of(&blocks[0], "/text/text").to_string()
}

/// At most `burst` messages plus one a second in any window, with 250 ms of
/// slack for the network and scheduling.
fn assert_rate(got: &[Request], burst: usize) {
    for i in 0..got.len() {
        for j in i..got.len() {
            let window = (got[j].at - got[i].at).as_secs_f64();
            let count = j - i + 1;
            assert!(
                count <= burst + (window + 0.25).floor() as usize,
                "{count} messages within {window:.2} s (requests {i}..={j})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_is_rate_limited_within_block_kit_limits_and_groups() {
    const BURST: usize = 3; // the default `burst`
    let c = Cluster::start(Duration::from_millis(200)).await;
    let ops = Receiver::start(|r, _| {
        if r.seq == 5 {
            Reply::status(429)
                .header("retry-after", "2")
                .body("rate_limited")
        } else {
            Reply::ok().body("ok")
        }
    })
    .await;
    let digest = Receiver::ok().await;
    let (ops_url, digest_url) = (
        ops.url("/services/T0/B0/ops"),
        digest.url("/services/T0/B1/digest"),
    );
    let _herald = herald(
        &c,
        r#"
cluster: slack-cluster
watch:
  - { version: v1, kind: ConfigMap, namespaces: [chat] }
sinks:
  - name: ops
    type: slack
    webhookUrl: { env: SLACK_OPS_URL }
  - name: digest
    type: slack
    webhookUrl: { env: SLACK_DIGEST_URL }
    groupWindow: 2s
"#,
        &[
            ("SLACK_OPS_URL", ops_url.as_str()),
            ("SLACK_DIGEST_URL", digest_url.as_str()),
        ],
    )
    .await;

    // A big ConfigMap whose update changes every one of 3,000 keys (a diff
    // of far more than 100 KB), then 28 small ones: 30 changes in a moment.
    let sim = &c.sim;
    let started = Instant::now();
    let keys: Vec<String> = (0..3000).map(|i| format!("key-{i:04}")).collect();
    let old: Vec<(&str, String)> = keys.iter().map(|k| (k.as_str(), "x".repeat(30))).collect();
    let data: Vec<(&str, &str)> = old.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sim.create(
        "configmaps",
        herald_sim::fixtures::config_map("chat", "big", &data),
    )
    .await
    .expect("create big");
    let new: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (k.clone(), json!("y".repeat(30))))
        .collect();
    // Every value changes: the diff holds both sides of 3,000 keys.
    assert!(2 * Value::Object(new.clone()).to_string().len() > 100_000);
    sim.patch_merge("configmaps", "chat", "big", json!({"data": new}))
        .await
        .expect("update big");
    let mut titles = BTreeSet::from([
        "ConfigMap chat/big added".to_string(),
        "ConfigMap chat/big modified".to_string(),
    ]);
    for i in 0..28 {
        let name = format!("cm-{i:02}");
        sim.create(
            "configmaps",
            herald_sim::fixtures::config_map("chat", &name, &[("i", "1")]),
        )
        .await
        .expect("create");
        titles.insert(format!("ConfigMap chat/{name} added"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "written in a moment"
    );

    // One message a change at `ops`, plus the one answered 429.
    assert!(
        ops.wait_for(Duration::from_secs(60), |q| q
            .iter()
            .filter(|r| r.acknowledged())
            .count()
            >= 30)
            .await,
        "30 messages within 60 s; got {}",
        ops.count()
    );
    let got = ops.requests();
    assert_eq!(got.len(), 31);
    let mut seen = BTreeSet::new();
    for r in &got {
        assert_eq!(r.header("content-type"), Some("application/json"));
        let title = assert_block_kit(&r.json());
        if r.acknowledged() {
            assert!(seen.insert(title.clone()), "{title} twice");
        }
    }
    assert_eq!(seen, titles);
    let big = got
        .iter()
        .map(Request::json)
        .find(|m| m["blocks"][0]["text"]["text"] == "ConfigMap chat/big modified")
        .expect("the big diff's message");
    let text = big.to_string();
    assert!(text.contains("/data/key-"), "the diff is shown");
    assert!(
        text.contains("more changed fields not shown"),
        "the cut is said"
    );

    assert_rate(&got, BURST);
    let span = got[got.len() - 1].at - got[0].at;
    assert!(span >= Duration::from_secs(26), "31 messages over {span:?}");
    // The 429: the same message again, no sooner than `Retry-After: 2`.
    let (limited, next) = (&got[5], &got[6]);
    assert_eq!(limited.status, Some(429));
    assert_eq!(
        limited.body, next.body,
        "the refused message is the one retried"
    );
    assert!(
        next.at - limited.at >= Duration::from_millis(1950),
        "retried {:?} after 429 with Retry-After: 2",
        next.at - limited.at
    );

    // `digest` groups the changes of 2 s windows into one message each.
    let count_of = |title: &str| -> usize {
        title
            .strip_suffix(" changes in slack-cluster")
            .map_or(1, |n| n.parse().expect("a count"))
    };
    assert!(
        digest
            .wait_for(Duration::from_secs(30), |q| q
                .iter()
                .map(|r| count_of(&assert_block_kit(&r.json())))
                .sum::<usize>()
                >= 30)
            .await,
        "every change in some digest message"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = digest.requests();
    let counts: Vec<usize> = got
        .iter()
        .map(|r| count_of(&assert_block_kit(&r.json())))
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 30, "{counts:?}");
    assert!(counts.iter().any(|&n| n >= 2), "grouped: {counts:?}");
    assert!(got.len() < 30, "fewer messages than changes: {counts:?}");
    assert_rate(&got, BURST);
}

// === batch ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_arrive_in_bounded_batches_none_lost_none_twice() {
    const EVENTS: usize = 10_000;
    let c = Cluster::start_with(
        herald_sim::Simulator::builder()
            .bookmark_interval(Duration::from_millis(200))
            .history_retention(100_000),
    )
    .await;
    let (counted, sized) = (Receiver::ok().await, Receiver::ok().await);
    let _herald = herald(
        &c,
        &format!(
            r#"
cluster: batch-cluster
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [bulk] }}
sinks:
  - name: inventory
    type: batch
    url: {}
    maxObjects: 100
    interval: 200ms
    metadata: {{ source: herald-e2e }}
  - name: sized
    type: batch
    url: {}
    maxObjects: 1000
    maxBytes: 16KiB
    interval: 200ms
"#,
            counted.url("/ingest"),
            sized.url("/ingest"),
        ),
        &[("HERALD_LOG", "error")],
    )
    .await;

    let started = Instant::now();
    for i in 0..EVENTS {
        c.sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map("bulk", &format!("cm-{i:05}"), &[("i", "x")]),
            )
            .await
            .expect("create");
        if i % 500 == 499 {
            tokio::task::yield_now().await;
        }
    }
    let items = |q: &[Request]| -> usize {
        q.iter()
            .map(|r| {
                r.header("herald-batch-size")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0)
            })
            .sum()
    };
    for r in [&counted, &sized] {
        assert!(
            r.wait_for(Duration::from_secs(60), |q| items(q) >= EVENTS)
                .await,
            "{EVENTS} events within 60 s; got {}",
            items(&r.requests())
        );
    }
    eprintln!(
        "batch: {EVENTS} events delivered twice over in {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut log = writes(&c, "ConfigMap", "bulk");
    log.sort();
    assert_eq!(log.len(), EVENTS);
    for (name, r, max_objects) in [("inventory", &counted, 100), ("sized", &sized, 1000)] {
        let got = r.requests();
        let mut seen = Vec::with_capacity(EVENTS);
        let mut largest = 0;
        for req in &got {
            assert!(req.acknowledged());
            let b = req.json();
            assert_eq!(b["cluster"], "batch-cluster", "{name}");
            let batch = b["items"].as_array().expect("items");
            assert!(
                !batch.is_empty() && batch.len() <= max_objects,
                "{name}: {} items",
                batch.len()
            );
            assert_eq!(
                req.header("herald-batch-size"),
                Some(batch.len().to_string().as_str())
            );
            largest = largest.max(batch.len());
            for it in batch {
                assert_eq!(it["change"], "added");
                assert_eq!(it["cluster"], "batch-cluster");
                seen.push(uid_rv(it));
            }
            if name == "inventory" {
                assert_eq!(b["metadata"], json!({"source": "herald-e2e"}));
            } else {
                assert!(
                    req.body.len() <= 16 * 1024,
                    "{name}: a body of {} bytes",
                    req.body.len()
                );
            }
        }
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(n, seen.len(), "{name}: {} delivered twice", n - seen.len());
        assert_eq!(seen, log, "{name}: delivered = written");
        match name {
            "inventory" => assert_eq!(largest, 100, "batches fill up to maxObjects"),
            _ => assert!(largest > 10, "batches fill up to maxBytes: {largest}"),
        }
        eprintln!("batch: {name}: {} requests", got.len());
    }
}

// === isolation ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_sink_does_not_delay_another() {
    const CHANGES: usize = 12;
    let c = Cluster::start(Duration::from_millis(200)).await;
    let stuck = Receiver::start(|_, _| Reply::Hang).await;
    let prompt = Receiver::ok().await;
    let _herald = herald(
        &c,
        &format!(
            r#"
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [iso] }}
sinks:
  - name: stuck
    type: webhook
    url: {}
    timeout: 30s
  - name: prompt
    type: webhook
    url: {}
"#,
            stuck.url("/never"),
            prompt.url("/now"),
        ),
        &[],
    )
    .await;

    let mut written = BTreeMap::new();
    for i in 0..CHANGES {
        let at = Instant::now();
        let o = c
            .sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map("iso", &format!("cm-{i}"), &[]),
            )
            .await
            .expect("create");
        written.insert(str_of(&o, "/metadata/resourceVersion").to_string(), at);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        prompt
            .wait_for(Duration::from_secs(10), |q| q.len() >= CHANGES)
            .await,
        "prompt got {} of {CHANGES}",
        prompt.count()
    );
    let stuck_first = stuck
        .requests()
        .first()
        .map(|r| r.at)
        .expect("the stuck sink was tried");
    for r in prompt.requests() {
        let b = r.json();
        let at = written[str_of(&b, "/resourceVersion")];
        assert!(
            r.at - at <= Duration::from_secs(2),
            "{} arrived {:?} after its write",
            b["name"],
            r.at - at
        );
    }
    // Deliveries went on while the stuck sink's requests were hanging.
    assert!(stuck_first < prompt.requests()[CHANGES - 1].at);
    let hung = stuck.requests();
    assert!(
        !hung.is_empty() && hung.len() <= 4,
        "one hanging request a lane: {}",
        hung.len()
    );
    assert!(hung.iter().all(|r| r.status.is_none()));

    let s = sinks(&c).await;
    assert_eq!(s["prompt"]["delivered"], CHANGES, "{}", s["prompt"]);
    let st = &s["stuck"];
    assert_eq!(st["delivered"], 0, "{st}");
    assert_eq!(
        st["depth"].as_u64().unwrap_or(0) + st["inFlight"].as_u64().unwrap_or(0),
        CHANGES as u64,
        "{st}"
    );
}

// === 4xx and 410 ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_dead_lettered_and_a_410_disables_the_sink() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let refuse =
        Receiver::start(|_, _| Reply::status(400).body("bad payload: missing field spec.owner"))
            .await;
    let gone =
        Receiver::start(|_, _| Reply::status(410).body("endpoint removed by its owner")).await;
    let dead = Receiver::ok().await;
    let herald = herald(
        &c,
        &format!(
            r#"
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [dl] }}
sinks:
  - name: refuse
    type: webhook
    url: {}
    concurrency: 1
    retry: {{ initialBackoff: 100ms, maxBackoff: 1s }}
    deadLetter: dead-log
  - name: gone
    type: webhook
    url: {}
    concurrency: 1
    deadLetter: dead-batch
  - name: dead-log
    type: log
  - name: dead-batch
    type: batch
    url: {}
    interval: 100ms
"#,
            refuse.url("/r"),
            gone.url("/g"),
            dead.url("/dead"),
        ),
        &[("HERALD_LOG", "error")],
    )
    .await;
    let dead_items = |q: &[Request]| -> Vec<Value> {
        q.iter()
            .flat_map(|r| r.json()["items"].as_array().cloned().unwrap_or_default())
            .collect()
    };

    let create = |name: &'static str| {
        let sim = c.sim.clone();
        async move {
            sim.create(
                "configmaps",
                herald_sim::fixtures::config_map("dl", name, &[]),
            )
            .await
            .expect("create");
        }
    };
    create("first").await;

    // 400: to the dead letter (here the log) with the response body, once.
    let line = herald.next();
    assert_eq!(line["name"], "first", "{line}");
    assert_eq!(line["deadLetter"]["sink"], "refuse", "{line}");
    let reason = str_of(&line, "/deadLetter/reason");
    assert!(
        reason.contains("400") && reason.contains("bad payload: missing field spec.owner"),
        "{reason}"
    );
    assert!(
        refuse
            .wait_for(Duration::from_secs(5), |q| q.len() == 1)
            .await
    );
    assert_eq!(refuse.requests()[0].json()["id"], line["deadLetter"]["id"]);

    // 410: to the dead letter (here a batch endpoint), and the sink is disabled.
    assert!(
        dead.wait_for(Duration::from_secs(10), |q| !dead_items(q).is_empty())
            .await,
        "the 410'd notification reached the dead-letter batch sink"
    );
    let item = &dead_items(&dead.requests())[0];
    assert_eq!(
        (item["name"].as_str(), item["deadLetter"]["sink"].as_str()),
        (Some("first"), Some("gone"))
    );
    let reason = str_of(item, "/deadLetter/reason");
    assert!(
        reason.contains("410") && reason.contains("endpoint removed by its owner"),
        "{reason}"
    );
    let s = sinks(&c).await;
    assert_eq!(s["gone"]["disabled"], true, "{}", s["gone"]);
    assert!(str_of(&s["gone"], "/lastError").contains("410"));
    assert_eq!(s["refuse"]["disabled"], false, "{}", s["refuse"]);

    // Later events: refused once each; the disabled sink is not even tried.
    create("second").await;
    create("third").await;
    let mut names = BTreeSet::new();
    for _ in 0..2 {
        let line = herald.next();
        assert_eq!(line["deadLetter"]["sink"], "refuse", "{line}");
        names.insert(line["name"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(names, BTreeSet::from(["second".into(), "third".into()]));
    assert!(
        dead.wait_for(Duration::from_secs(10), |q| dead_items(q).len() >= 3)
            .await,
        "later notifications of the disabled sink are dead letters"
    );
    for item in &dead_items(&dead.requests())[1..] {
        assert_eq!(item["deadLetter"]["sink"], "gone");
        assert!(
            str_of(item, "/deadLetter/reason").contains("disabled"),
            "{item}"
        );
    }
    // Room for retries that must not happen.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(refuse.count(), 3, "a 400 is not retried");
    assert_eq!(gone.count(), 1, "a disabled sink is not tried");
    assert_eq!(dead_items(&dead.requests()).len(), 3);
    assert!(herald.next_within(Duration::from_millis(100)).is_none());
    let s = sinks(&c).await;
    for (sink, field, n) in [
        ("refuse", "deadLettered", 3),
        ("refuse", "retries", 0),
        ("gone", "deadLettered", 3),
        ("dead-log", "delivered", 3),
        ("dead-batch", "delivered", 3),
    ] {
        assert_eq!(s[sink][field], n, "{sink}.{field}: {}", s[sink]);
    }
}

// === routing ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sinks_route_verdicts_and_sink_namespaces_decide_who_gets_what() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let (narrow, wide) = (Receiver::ok().await, Receiver::ok().await);
    let _herald = herald(
        &c,
        &format!(
            r#"
cluster: route-cluster
watch:
  - {{ version: v1, kind: ConfigMap, sinks: [narrow], plugins: [router] }}
  - {{ version: v1, kind: Secret }}
plugins:
  dir: {}
  config:
    router: {{}}
  policy:
    router: {{ file: route.wasm }}
sinks:
  - name: narrow
    type: webhook
    url: {}
    namespaces: [alpha, beta]
  - name: wide
    type: webhook
    url: {}
"#,
            plugin_dir().display(),
            narrow.url("/n"),
            wide.url("/w"),
        ),
        &[],
    )
    .await;

    let cm = |ns: &str, name: &str, route: Option<&str>| {
        let mut o = herald_sim::fixtures::config_map(ns, name, &[]);
        if let Some(r) = route {
            o["metadata"]["annotations"] = json!({"herald.io/route": r});
        }
        o
    };
    let secret = |ns: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": name, "namespace": ns}, "data": {}})
    };
    let sim = &c.sim;
    // ConfigMaps: the watch's sinks (narrow), unless a route verdict names
    // others; narrow's namespaces apply last either way.
    sim.create("configmaps", cm("alpha", "a", None))
        .await
        .expect("create");
    sim.create("configmaps", cm("gamma", "c", None))
        .await
        .expect("create");
    sim.create("configmaps", cm("alpha", "routed", Some("wide")))
        .await
        .expect("create");
    sim.create("configmaps", cm("gamma", "routed-narrow", Some("narrow")))
        .await
        .expect("create");
    // Secrets: no watch sinks, so every sink, narrow filtering by namespace.
    for (ns, name) in [("alpha", "s1"), ("gamma", "s2"), ("beta", "s3")] {
        sim.create("secrets", secret(ns, name))
            .await
            .expect("create");
    }

    let expect_narrow = ["ConfigMap alpha/a", "Secret alpha/s1", "Secret beta/s3"];
    let expect_wide = [
        "ConfigMap alpha/routed",
        "Secret alpha/s1",
        "Secret beta/s3",
        "Secret gamma/s2",
    ];
    let keys = |r: &Receiver| -> Vec<String> {
        let mut k: Vec<String> = r
            .requests()
            .iter()
            .map(|q| {
                let b = q.json();
                format!(
                    "{} {}/{}",
                    str_of(&b, "/kind"),
                    str_of(&b, "/namespace"),
                    str_of(&b, "/name")
                )
            })
            .collect();
        k.sort();
        k
    };
    for (r, n) in [(&narrow, expect_narrow.len()), (&wide, expect_wide.len())] {
        assert!(
            r.wait_for(Duration::from_secs(20), |q| q.len() >= n).await,
            "{n} notifications"
        );
    }
    // Room for anything that should not come.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(keys(&narrow), expect_narrow);
    assert_eq!(keys(&wide), expect_wide);
    let routed = wide
        .requests()
        .iter()
        .map(Request::json)
        .find(|b| b["name"] == "routed")
        .expect("routed");
    assert_eq!(routed["routes"], json!(["wide"]), "{routed}");
}

// === Spill ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_spills_to_the_outbox_and_never_stalls_another_sink() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    // Hangs for its first 4 s (herald's timeout is 1 s), then answers.
    let slow = Receiver::start(|_, since_first| {
        if since_first < Duration::from_secs(4) {
            Reply::Hang
        } else {
            Reply::ok()
        }
    })
    .await;
    let fast = Receiver::ok().await;
    let state = c.dir.path().join("state");
    let _herald = herald(
        &c,
        &format!(
            r#"
stateDir: {state}
watch:
  - {{ version: v1, kind: ConfigMap, namespaces: [spill] }}
sinks:
  - name: slow
    type: webhook
    url: {slow}
    timeout: 1s
    concurrency: 1
    queue: {{ capacity: 4, whenFull: spill }}
    retry: {{ initialBackoff: 100ms, maxBackoff: 500ms, maxAge: 5m }}
  - name: fast
    type: webhook
    url: {fast}
"#,
            state = state.display(),
            slow = slow.url("/"),
            fast = fast.url("/")
        ),
        &[("HERALD_LOG", "error")],
    )
    .await;
    let mut uids = Vec::new();
    for i in 0..40 {
        let cm = c
            .sim
            .create(
                "configmaps",
                herald_sim::fixtures::config_map("spill", &format!("s{i:02}"), &[("k", "v")]),
            )
            .await
            .expect("create");
        uids.push(cm["metadata"]["uid"].as_str().expect("uid").to_string());
        let mut cm = cm;
        cm["data"]["k"] = json!("v2");
        c.sim.update("configmaps", cm).await.expect("update");
    }
    // The fast sink gets all 80 promptly, although the slow one's queue of
    // 4 is full.
    assert!(
        fast.wait_for(Duration::from_secs(3), |r| r
            .iter()
            .filter(|q| q.acknowledged())
            .count()
            >= 80)
            .await,
        "the fast sink was held up: {} of 80",
        fast.count()
    );
    let (_, sinks) = http_get(&c.api("/sinks")).await.expect("/sinks");
    let slow_status = sinks
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "slow"))
        .cloned()
        .expect("slow sink status");
    assert!(
        slow_status["spilled"].as_u64().unwrap_or(0) > 0,
        "nothing spilled: {slow_status}"
    );
    // Once the slow receiver answers, everything arrives, once, in per-object order.
    assert!(
        slow.wait_for(Duration::from_secs(30), |r| {
            r.iter()
                .filter(|q| q.acknowledged())
                .filter_map(|q| q.json()["id"].as_str().map(String::from))
                .collect::<BTreeSet<_>>()
                .len()
                >= 80
        })
        .await,
        "the spilled notifications never arrived"
    );
    let mut per_object: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for q in slow.requests().iter().filter(|q| q.acknowledged()) {
        let v = q.json();
        if ids.insert(v["id"].as_str().expect("id").to_string()) {
            per_object
                .entry(v["uid"].as_str().expect("uid").to_string())
                .or_default()
                .push(
                    v["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse().ok())
                        .expect("rv"),
                );
        }
    }
    assert_eq!(ids.len(), 80);
    for (uid, rvs) in &per_object {
        assert!(
            rvs.windows(2).all(|w| w[0] < w[1]),
            "{uid} out of order: {rvs:?}"
        );
    }
}
