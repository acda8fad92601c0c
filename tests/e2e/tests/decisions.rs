//! The decisions ring over `GET /api/v1/decisions` (issue 18), with the real
//! binary, the simulator and real receivers: a change dropped by a plugin,
//! one deduplicated, one left out by a sink's namespaces, one dead-lettered
//! by a failing plugin and one by a refusing sink each show with the step
//! and reason that decided them; `herald explain` on the same objects tells
//! the same story, and the body it shows is the one the receiver got.

use std::process::Command;
use std::time::Duration;

use herald_e2e::receiver::{Receiver, Reply};
use herald_e2e::{Cluster, HeraldProcess, http_get, plugin_dir, wait_http_ok};
use serde_json::{Value, json};

fn config(c: &Cluster, hook: &Receiver, dl: &Receiver) -> std::path::PathBuf {
    c.config(&format!(
        r#"
cluster: test
stateDir: {state}
dedup: {{ exclude: [/metadata/annotations/heartbeat] }}
watch:
  - version: v1
    kind: Pod
    namespaces: [shop, web]
    plugins: [web-only, boom]
plugins:
  dir: {plugins}
  config:
    web-only: {{ labels: {{ app: web }} }}
    boom: {{ mode: panic, when: boom, message: boom on purpose }}
  policy:
    web-only: {{ file: label_filter.wasm }}
    boom: {{ file: hostile_plugin.wasm, onError: !route dl }}
sinks:
  - name: hook
    type: webhook
    url: {hook}
    namespaces: [shop]
    deadLetter: dl
  - name: dl
    type: webhook
    url: {dl}
"#,
        state = c.dir.path().join("state").display(),
        plugins = plugin_dir().display(),
        hook = hook.url("/hook"),
        dl = dl.url("/dl"),
    ))
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    herald_sim::fixtures::pod(ns, name, &[("app", app)])
}

/// The decisions the API has for `query`, after polling until `n` are there.
async fn decisions(c: &Cluster, query: &str, n: usize) -> Vec<Value> {
    let url = c.api(&format!("/api/v1/decisions?{query}"));
    for _ in 0..200 {
        let (code, body) = http_get(&url).await.expect("decisions");
        assert_eq!(code, 200, "{body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, all) = http_get(&c.api("/api/v1/decisions"))
        .await
        .expect("decisions");
    panic!("fewer than {n} decisions for {query}; all: {all:#}")
}

/// The one decision about `name` whose fate is `fate`.
async fn decision(c: &Cluster, name: &str, fate: &str) -> Value {
    let d = decisions(c, &format!("name={name}&fate={fate}"), 1).await;
    assert_eq!(d.len(), 1, "{d:?}");
    d[0].clone()
}

/// `herald explain --output json` and the text, on `object`.
fn explain(config: &std::path::Path, object: &Value, extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let obj = dir.path().join("object.json");
    std::fs::write(&obj, object.to_string()).expect("write");
    let run = |output: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["explain", "--output", output, "--config"])
            .arg(config)
            .arg(&obj)
            .args(extra)
            .output()
            .expect("run herald explain");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let json: Value = serde_json::from_str(&run("json")).expect("explain's JSON");
    (json["watches"][0].clone(), run("text"))
}

/// The plugins' verdicts and reasons, without their times.
fn verdicts(steps: &Value) -> Vec<(String, String)> {
    steps
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["verdict"].as_str().unwrap_or_default().to_string(),
                        s["reason"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A body as JSON without `time`: explain sees the change now, herald saw
/// it when the simulator sent it.
fn timeless(body: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(body).expect("JSON body");
    v.as_object_mut().map(|o| o.remove("time"));
    v
}

/// Decision and explanation agree: fate, reason, plugin verdicts, routing.
fn same_story(d: &Value, w: &Value, text: &str) {
    assert_eq!(d["fate"], w["fate"], "decision {d}\nexplain {w}");
    assert_eq!(d["reason"], w["reason"], "decision {d}\nexplain {w}");
    assert_eq!(verdicts(&d["plugins"]), verdicts(&w["plugins"]));
    let reason = d["reason"].as_str().unwrap_or_default();
    assert!(
        text.contains(reason),
        "explain's text lacks {reason:?}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fate_shows_in_the_decisions_with_its_step_and_reason_as_explain_tells_it() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let hook = Receiver::start(|req, _| {
        if req.json()["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("reject"))
        {
            Reply::status(400).body("no such team")
        } else {
            Reply::ok()
        }
    })
    .await;
    let dl = Receiver::ok().await;
    let config = config(&c, &hook, &dl);
    let mut herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    // Ready means both namespace scopes listed: a pod created before its
    // scope's first list is quiet (the state dir is new), not news.
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never got ready"
    );
    let sim = &c.sim;
    let mut web = pod("shop", "web-1", "web");
    web["metadata"]["annotations"] = json!({"heartbeat": "0"});
    let web = sim.create("pods", web).await.expect("create");
    let db = sim
        .create("pods", pod("shop", "db-1", "db"))
        .await
        .expect("create");
    let away = sim
        .create("pods", pod("web", "web-2", "web"))
        .await
        .expect("create");
    let boom = sim
        .create("pods", pod("shop", "boom-1", "web"))
        .await
        .expect("create");
    sim.create("pods", pod("shop", "reject-1", "web"))
        .await
        .expect("create");
    assert!(
        hook.wait_for(Duration::from_secs(10), |r| r.len() >= 2)
            .await,
        "hook got web-1 and reject-1"
    );
    // Only the heartbeat changes: dedup leaves it out of the comparison.
    let mut beat = web.clone();
    beat["metadata"]["annotations"]["heartbeat"] = json!("1");
    let beat = sim.update("pods", beat).await.expect("update");
    assert!(
        dl.wait_for(Duration::from_secs(10), |r| r.len() >= 2).await,
        "dl got boom-1 and reject-1"
    );

    // Delivered: each plugin passed, the hook took it at the first attempt.
    let d = decision(&c, "web-1", "delivered").await;
    assert_eq!(
        (d["step"].as_str(), d["reason"].as_str()),
        (Some("delivery"), Some("to hook"))
    );
    assert_eq!(
        verdicts(&d["plugins"]),
        [
            ("pass".into(), String::new()),
            ("pass".into(), String::new())
        ]
    );
    assert_eq!(
        d["sinks"],
        json!([{"sink": "hook", "state": "delivered", "attempts": 1}])
    );
    assert_eq!(
        d["routing"],
        "every sink that is not a dead letter (no route verdict, no watch sinks)"
    );

    // Deduplicated: the heartbeat-only update.
    let d = decision(&c, "web-1", "duplicate").await;
    assert_eq!(d["step"], "dedup");
    assert_eq!(d["change"], "modified");
    assert_eq!(
        d["reason"],
        format!(
            "already notified: dedup holds this state of uid {:?}",
            web["metadata"]["uid"].as_str().unwrap_or_default()
        )
    );
    assert!(d.get("plugins").is_none(), "never reached the plugins: {d}");

    // Dropped by a plugin, with its reason; the next plugin never ran.
    let d = decision(&c, "db-1", "dropped").await;
    assert_eq!(d["step"], "plugin");
    assert_eq!(
        d["reason"],
        "dropped by plugin web-only: label app=db, want web"
    );
    assert_eq!(
        verdicts(&d["plugins"]),
        [("drop".into(), "label app=db, want web".into())]
    );

    // Routed to a sink outside its namespaces: no sink takes it.
    let d = decision(&c, "web-2", "unrouted").await;
    assert_eq!(d["step"], "routing");
    assert_eq!(d["reason"], "no sink takes it");
    assert_eq!(
        d["leftOut"],
        json!([{"sink": "hook", "reason": "namespace \"web\" is not in the sink's namespaces [\"shop\"]"}])
    );

    // Dead-lettered by a failing plugin's onError route; dl delivered it.
    let d = decision(&c, "boom-1", "dead-letter").await;
    assert_eq!(d["step"], "plugin");
    let why = d["reason"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("plugin boom failed (panicked: boom on purpose")
            && why.ends_with("; dead letter to dl"),
        "{why}"
    );
    assert_eq!(d["plugins"][1]["verdict"], "error");
    assert_eq!(
        d["sinks"],
        json!([{"sink": "dl", "state": "delivered", "attempts": 1}])
    );

    // Dead-lettered by a sink that refused it: the delivery step says so.
    let d = decision(&c, "reject-1", "dead-letter").await;
    assert_eq!(d["step"], "delivery");
    assert_eq!(
        d["reason"],
        "sink hook refused it (HTTP 400 Bad Request: no such team); dead letter to dl"
    );
    assert_eq!(d["sinks"][0]["state"], "dead-lettered");
    assert_eq!(d["sinks"][0]["deadLetter"], "dl");
    assert_eq!(
        (
            d["sinks"][1]["sink"].as_str(),
            d["sinks"][1]["state"].as_str()
        ),
        (Some("dl"), Some("delivered"))
    );

    // The filters: by sink, by kind (any case), by uid; bad parameters are 400s.
    let by_dl = decisions(&c, "sink=dl", 2).await;
    let mut names: Vec<&str> = by_dl.iter().filter_map(|d| d["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["boom-1", "reject-1"]);
    assert_eq!(decisions(&c, "kind=pod&namespace=web", 1).await.len(), 1);
    let uid = boom["metadata"]["uid"].as_str().unwrap_or_default();
    assert_eq!(
        decisions(&c, &format!("uid={uid}"), 1).await[0]["name"],
        "boom-1"
    );
    assert_eq!(decisions(&c, "limit=2", 2).await.len(), 2);
    for (query, names) in [
        ("fate=lost", "fate"),
        ("limit=0", "limit"),
        ("namespce=shop", "namespce"),
    ] {
        let (code, body) = http_get(&c.api(&format!("/api/v1/decisions?{query}")))
            .await
            .expect("get");
        assert_eq!(code, 400, "{query}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(names), "{query}: {msg}");
    }
    let (_, metrics) = raw(&c.probe("/metrics")).await;
    assert!(
        metrics.lines().any(|l| l == "herald_decisions_kept 6"),
        "six decisions kept:\n{metrics}"
    );

    // Explain tells the same story, and the body each receiver got.
    let hook_body = hook
        .requests()
        .into_iter()
        .find(|r| r.json()["name"] == "web-1")
        .expect("web-1 at the hook")
        .body;
    let dl_body = dl
        .requests()
        .into_iter()
        .find(|r| r.json()["name"] == "boom-1")
        .expect("boom-1 at dl")
        .body;
    let decided = |name: &'static str, fate: &'static str| decision(&c, name, fate);
    let (d_web, d_db, d_away, d_boom) = (
        decided("web-1", "delivered").await,
        decided("db-1", "dropped").await,
        decided("web-2", "unrouted").await,
        decided("boom-1", "dead-letter").await,
    );
    let d_beat = decided("web-1", "duplicate").await;
    herald.terminate(Duration::from_secs(10));

    let (w, text) = explain(&config, &web, &[]);
    same_story(&d_web, &w, &text);
    assert_eq!(
        timeless(
            w["sinks"][0]["body"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
        ),
        timeless(&hook_body),
        "the body explain shows is the one the hook got"
    );
    let (w, text) = explain(&config, &db, &[]);
    same_story(&d_db, &w, &text);
    let (w, text) = explain(&config, &away, &[]);
    same_story(&d_away, &w, &text);
    assert_eq!(w["left_out"][0][1], d_away["leftOut"][0]["reason"]);
    let (w, text) = explain(&config, &boom, &[]);
    same_story(&d_boom, &w, &text);
    assert_eq!(w["sinks"][0]["sink"], "dl");
    assert_eq!(
        timeless(
            w["sinks"][0]["body"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
        ),
        timeless(&dl_body),
        "the dead letter explain shows is the one dl got"
    );
    // The duplicate, against the state herald recorded.
    let state = c.dir.path().join("state");
    let (w, text) = explain(
        &config,
        &beat,
        &[
            "--old",
            &write_tmp(&c, &web),
            "--state-dir",
            &state.display().to_string(),
        ],
    );
    assert_eq!(w["fate"], "duplicate", "{w}");
    let reason = d_beat["reason"].as_str().unwrap_or_default();
    assert!(
        w["reason"].as_str().is_some_and(|r| r.starts_with(reason)),
        "{w}\n{d_beat}"
    );
    assert!(text.contains(reason), "{text}");
}

/// `v` in a file of the cluster's scratch dir; its path.
fn write_tmp(c: &Cluster, v: &Value) -> String {
    let p = c.dir.path().join("old.json");
    std::fs::write(&p, v.to_string()).expect("write");
    p.display().to_string()
}

/// GET `url` as text: (status line, body).
async fn raw(url: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET /{path} HTTP/1.0\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_the_status_page_are_authorised_like_the_api() {
    use herald_e2e::http_send_as;
    let c = Cluster::start(Duration::from_millis(200)).await;
    c.sim.add_token("team-token", "team", &["teams"]);
    c.sim
        .allow("team", &["list"], "herald.io", "decisions", Some("a"));
    c.sim.add_token("ops-token", "ops", &["ops"]);
    for resource in ["watches", "sinks", "decisions"] {
        c.sim.allow("ops", &["list"], "herald.io", resource, None);
    }
    let config = c.config_with_api(
        "watch:\n  - {version: v1, kind: ConfigMap}\nsinks:\n  - {name: out, type: log}\n",
        "authCacheTTL: 1s",
    );
    let _herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for ns in ["a", "b"] {
        c.sim
            .create(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": format!("cm-{ns}"), "namespace": ns}}),
            )
            .await
            .expect("create");
    }
    let get = |path: &str, token: Option<&'static str>| {
        let url = c.api(path);
        async move {
            let (code, body) = http_send_as("GET", &url, None, token).await.expect("get");
            (code, body)
        }
    };
    // Its own namespace: 200, with only that namespace's decisions.
    let mut seen = Value::Null;
    for _ in 0..200 {
        let (code, body) = get("/api/v1/decisions?namespace=a", Some("team-token")).await;
        assert_eq!(code, 200, "{body}");
        if body["items"].as_array().is_some_and(|i| !i.is_empty()) {
            seen = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = seen["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{seen}");
    assert_eq!(items[0]["name"], "cm-a");
    // Another namespace, or all of them: 403 naming the right.
    let (code, body) = get("/api/v1/decisions?namespace=b", Some("team-token")).await;
    assert_eq!(code, 403, "{body}");
    let said = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("\"team\" cannot list decisions.herald.io in namespace \"b\""),
        "{said}"
    );
    let (code, _) = get("/api/v1/decisions", Some("team-token")).await;
    assert_eq!(code, 403, "every namespace needs a cluster-wide right");
    let (code, body) = get("/api/v1/decisions", Some("ops-token")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    // The page: a known caller allowed to list watches and sinks.
    let (code, _) = get("/", None).await;
    assert_eq!(code, 401);
    let (code, body) = get("/", Some("team-token")).await;
    assert_eq!(code, 403, "{body}");
    let (code, _) = get("/", Some("ops-token")).await;
    assert_eq!(code, 200);
}
