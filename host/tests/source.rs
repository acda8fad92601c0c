//! The source, cache and query/admin APIs against the API-server simulator, over real
//! loopback sockets: change events in order with their previous state, convergence
//! through every injected fault, CRDs installed after start, and the HTTP APIs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use herald::api::{WatchControl, admin_router, query_router};
use herald::change::{ChangeEvent, ChangeType};
use herald::source::{
    self, InitialList, RetryBackoff, SourceSettings, Sources, WatchSpec, WatchState, WatchStatus,
};
use herald_sim::{ResourceType, Sim, Simulator, fixtures};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

// === harness ===

/// Every wait in this file gives up after this long.
const WAIT: Duration = Duration::from_secs(15);

async fn start_sim() -> Sim {
    Simulator::builder()
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("simulator starts")
}

/// Fast settings: quick retries and discovery; stalls noticed after 1.5 s.
fn settings() -> SourceSettings {
    SourceSettings {
        stall_timeout: Duration::from_millis(1500),
        discovery_interval: Duration::from_millis(200),
        backoff: Some(RetryBackoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        }),
        ..SourceSettings::default()
    }
}

struct Harness {
    sim: Sim,
    sources: Sources,
    rx: mpsc::Receiver<ChangeEvent>,
    _dir: tempfile::TempDir,
}

/// Sources talking to `sim` through a client built from the kubeconfig it writes.
async fn harness(sim: Sim, settings: SourceSettings) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).expect("kubeconfig");
    let client = source::client(Some(&path)).await.expect("client");
    let (tx, rx) = mpsc::channel(100_000);
    let sources = Sources::new(client, settings, tx);
    Harness {
        sim,
        sources,
        rx,
        _dir: dir,
    }
}

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    herald_sim::check::eventually(what, WAIT, check).await
}

async fn ready(sources: &Sources) {
    eventually("every watch ready", || async {
        if sources.ready()
            && sources
                .list()
                .iter()
                .all(|w| w.state == WatchState::Running)
        {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                sources
                    .list()
                    .iter()
                    .map(|w| (&w.id, w.state, w.ready))
                    .collect::<Vec<_>>()
            ))
        }
    })
    .await;
}

fn status(sources: &Sources, id: &str) -> WatchStatus {
    sources
        .status(id)
        .unwrap_or_else(|| panic!("watch {id} exists"))
}

/// Receives events until `done` holds for what was received, or panics.
async fn recv_until(
    rx: &mut mpsc::Receiver<ChangeEvent>,
    mut done: impl FnMut(&[ChangeEvent]) -> bool,
) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(&out) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => out.push(ev),
            Ok(None) => panic!("change stream closed"),
            Err(_) => panic!("timed out; got {:?}", summary(&out)),
        }
    }
    out
}

/// Everything received so far, without waiting.
fn drain(rx: &mut mpsc::Receiver<ChangeEvent>) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

fn rv(v: &Value) -> u64 {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn key(v: &Value) -> String {
    format!(
        "{}/{}",
        v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

fn summary(evs: &[ChangeEvent]) -> Vec<String> {
    evs.iter()
        .map(|e| {
            format!(
                "{} {} {}@{}",
                e.change,
                e.gvk.kind,
                key(&e.object),
                rv(&e.object)
            )
        })
        .collect()
}

/// `namespace/name → resourceVersion` of a type in the simulator.
async fn sim_state(sim: &Sim, resource: &str) -> BTreeMap<String, u64> {
    sim.list(resource, "")
        .await
        .expect("sim list")
        .iter()
        .map(|o| (key(o), rv(o)))
        .collect()
}

/// The same from herald's cache.
fn cache_state(sources: &Sources, watch: &str) -> BTreeMap<String, u64> {
    let t = sources.cache().get(watch).expect("cached type");
    t.filter(|_| true)
        .iter()
        .map(|o| {
            let v = o.to_value().expect("json");
            (key(&v), rv(&v))
        })
        .collect()
}

async fn converge(h: &Harness, resource: &str, watch: &str, step: &str) {
    eventually(step, || async {
        herald_sim::check::same_state(
            &sim_state(&h.sim, resource).await,
            &cache_state(&h.sources, watch),
        )
    })
    .await;
}

fn deployment(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "example/c:1"}]}}}
    })
}

fn widget(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": name, "namespace": ns}, "spec": {"size": 1}})
}

// === HTTP ===

async fn serve(router: axum::Router) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(herald::api::serve(listener, router, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, bytes) = http_raw(addr, method, path, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The status and the body bytes, as sent.
async fn http_raw(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_string())))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, bytes)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    http(addr, "GET", path, None).await
}

fn item_keys(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| a.iter().map(key).collect())
        .unwrap_or_default()
}

// === tests ===

/// Creates, updates and deletes of Pods, Deployments, ConfigMaps and a custom resource
/// reach the stream exactly as the simulator's change log has them, per object in
/// order, with the previous state on modified and deleted events.
#[tokio::test]
async fn changes_reach_the_stream_in_order_with_old_state() {
    let sim = start_sim().await;
    sim.add_resource(
        ResourceType::new("example.com", "v1", "Widget", "widgets").short_names(&["wd"]),
    );
    let mut h = harness(sim, settings()).await;
    // Kind, short name, plural and a spec without version resolve alike.
    for spec in [
        WatchSpec::new("core", "v1", "Pod"),
        WatchSpec::new("apps", "v1", "deploy"),
        WatchSpec::new("", "v1", "configmaps"),
        WatchSpec::new("example.com", "", "Widget"),
    ] {
        let s = h.sources.add(spec).await.expect("add");
        assert_eq!(s.state, WatchState::Running, "{s:?}");
    }
    let ids: Vec<String> = h.sources.list().into_iter().map(|w| w.id).collect();
    assert_eq!(
        ids,
        [
            "configmaps.v1.core",
            "deploy.v1.apps",
            "pod.v1.core",
            "widget.example.com"
        ]
    );
    assert_eq!(
        status(&h.sources, "deploy.v1.apps")
            .resource
            .expect("resolved")
            .kind,
        "Deployment"
    );
    ready(&h.sources).await;
    let mark = h.sim.change_log().len();

    let sim = &h.sim;
    for i in 0..2 {
        let n = format!("o{i}");
        sim.create("pods", fixtures::pod("default", &n, &[("app", "web")]))
            .await
            .expect("pod");
        sim.create("deployments", deployment("default", &n))
            .await
            .expect("deploy");
        sim.create(
            "configmaps",
            fixtures::config_map("default", &n, &[("k", "v")]),
        )
        .await
        .expect("cm");
        sim.create("widgets", widget("default", &n))
            .await
            .expect("widget");
    }
    for round in 0..2 {
        for res in ["pods", "deployments", "configmaps", "widgets"] {
            for i in 0..2 {
                sim.patch_merge(
                    res,
                    "default",
                    &format!("o{i}"),
                    json!({"metadata": {"labels": {"round": round.to_string()}}}),
                )
                .await
                .expect("patch");
            }
        }
    }
    for res in ["pods", "deployments", "configmaps", "widgets"] {
        sim.delete(res, "default", "o1").await.expect("delete");
    }

    let kinds = ["Pod", "Deployment", "ConfigMap", "Widget"];
    let log: Vec<_> = sim.change_log()[mark..]
        .iter()
        .filter(|c| kinds.contains(&c.kind.as_str()))
        .cloned()
        .collect();
    assert_eq!(log.len(), 4 * (2 + 4 + 1));
    let events = recv_until(&mut h.rx, |evs| evs.len() >= log.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(drain(&mut h.rx).is_empty(), "no extra events");

    // Per object: the same changes at the same resourceVersions, in order.
    let mut want: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for c in &log {
        want.entry(c.uid.clone()).or_default().push((
            c.change_type.as_str().to_ascii_lowercase(),
            c.resource_version,
        ));
    }
    let mut got: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let mut last: HashMap<String, Value> = HashMap::new();
    for e in &events {
        assert!(kinds.contains(&e.gvk.kind.as_str()), "{:?}", e.gvk);
        assert!(!e.watch.is_empty());
        assert_eq!(
            e.object["kind"],
            e.gvk.kind.as_str(),
            "objects carry their kind"
        );
        let uid = e.uid().to_string();
        got.entry(uid.clone())
            .or_default()
            .push((e.change.to_string(), rv(&e.object)));
        match e.change {
            ChangeType::Added => assert!(e.old.is_none()),
            ChangeType::Modified | ChangeType::Deleted => {
                let old = e.old.as_ref().expect("old state");
                let prev = last.get(&uid).expect("seen before");
                assert_eq!(
                    rv(old),
                    rv(prev),
                    "old is the previous state of {}",
                    key(&e.object)
                );
            }
        }
        last.insert(uid, e.object.clone().into_value());
    }
    assert_eq!(got, want);
    let widget_events: Vec<_> = events.iter().filter(|e| e.gvk.kind == "Widget").collect();
    assert_eq!(widget_events[0].gvk.group, "example.com");
    assert_eq!(widget_events[0].watch, "widget.example.com");
}

/// The cache converges to the simulator after writes and every fault, the change
/// stream replayed over the starting state gives the same result (no change missed),
/// and deletes that happened while herald could not watch are reported.
#[tokio::test]
async fn store_converges_through_faults_and_no_change_is_missed() {
    let sim = start_sim().await;
    for i in 0..20 {
        let ns = if i % 2 == 0 { "default" } else { "kube-system" };
        sim.create(
            "pods",
            fixtures::pod(ns, &format!("p{i:02}"), &[("app", "web")]),
        )
        .await
        .expect("seed");
    }
    let mut h = harness(sim, settings()).await;
    h.sources
        .add(WatchSpec::new("", "v1", "pods"))
        .await
        .expect("add");
    ready(&h.sources).await;
    let id = "pods.v1.core";
    converge(&h, "pods", id, "initial list").await;
    // The first list is silent; replaying the stream over this state must end where
    // the simulator ends.
    let mut model = sim_state(&h.sim, "pods").await;
    let mut events: Vec<ChangeEvent> = Vec::new();
    let pod = |n: &str| fixtures::pod("default", n, &[("app", "web")]);
    let lists = |sim: &Sim, mark: usize| {
        sim.requests()[mark..]
            .iter()
            .filter(|r| r.path.starts_with("/api/v1/pods?") && !r.is_watch())
            .count()
    };

    // Plain writes.
    for i in 0..5 {
        h.sim
            .patch_merge(
                "pods",
                "default",
                &format!("p{:02}", i * 2),
                json!({"metadata": {"labels": {"v": "2"}}}),
            )
            .await
            .expect("patch");
    }
    for i in [1, 3, 5] {
        h.sim
            .delete("pods", "kube-system", &format!("p{i:02}"))
            .await
            .expect("delete");
    }
    for i in 20..23 {
        h.sim
            .create("pods", pod(&format!("p{i:02}")))
            .await
            .expect("create");
    }
    converge(&h, "pods", id, "after writes").await;

    // A cut watch resumes from its resourceVersion; a delete during the cut is replayed.
    let mark = h.sim.request_count();
    h.sim.cut_watches();
    h.sim
        .delete("pods", "default", "p20")
        .await
        .expect("delete");
    h.sim
        .create("pods", pod("after-cut"))
        .await
        .expect("create");
    converge(&h, "pods", id, "after cut_watches").await;
    assert_eq!(lists(&h.sim, mark), 0, "a clean cut needs no relist");

    // Compaction during a watch: the watch, held back a moment, resumes from a
    // resourceVersion that is gone, gets 410 Gone, and the watcher relists.
    let mark = h.sim.request_count();
    h.sim.stall_watches(true);
    h.sim
        .create("pods", pod("after-compact"))
        .await
        .expect("create");
    h.sim
        .delete("pods", "default", "p21")
        .await
        .expect("delete");
    h.sim.compact();
    h.sim.stall_watches(false);
    converge(&h, "pods", id, "after compact").await;
    assert!(lists(&h.sim, mark) >= 1, "relisted after 410");

    // Stalled: the watch hears nothing, not even bookmarks; it is restarted (a relist)
    // and picks up writes made meanwhile.
    let restarts = status(&h.sources, id).scopes[0].restarts;
    h.sim.stall_watches(true);
    h.sim
        .create("pods", pod("during-stall"))
        .await
        .expect("create");
    h.sim
        .delete("pods", "default", "p00")
        .await
        .expect("delete");
    eventually("stalled watch restarted", || async {
        let s = status(&h.sources, id).scopes[0].clone();
        if s.restarts > restarts {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    converge(&h, "pods", id, "during stall (relisted)").await;
    h.sim.stall_watches(false);
    h.sim
        .create("pods", pod("after-stall"))
        .await
        .expect("create");
    converge(&h, "pods", id, "after stall").await;

    // Five failing requests: retried with backoff, then recovered.
    let errors = status(&h.sources, id).scopes[0].errors;
    h.sim.fail_next(5, 500);
    h.sim.cut_watches();
    h.sim
        .create("pods", pod("after-500"))
        .await
        .expect("create");
    converge(&h, "pods", id, "after fail_next(5, 500)").await;
    let s = status(&h.sources, id).scopes[0].clone();
    assert!(s.errors > errors, "{s:?}");
    assert!(
        s.last_error.as_deref().is_some_and(|e| e.contains("500")),
        "{s:?}"
    );

    // Restart: every connection closes; the same port serves the same state.
    h.sim.restart().await.expect("restart");
    h.sim
        .create("pods", pod("after-restart"))
        .await
        .expect("create");
    h.sim
        .delete("pods", "default", "p02")
        .await
        .expect("delete");
    converge(&h, "pods", id, "after restart").await;

    // Down while a pod is deleted and history compacted: on return the watch gets
    // 410, relists, and reports the delete with the pod's last state.
    events.extend(drain(&mut h.rx));
    let last = h.sim.get("pods", "default", "p04").await.expect("p04");
    h.sim.stop().await;
    h.sim
        .delete("pods", "default", "p04")
        .await
        .expect("delete while down");
    h.sim.compact();
    h.sim.resume().await.expect("resume");
    converge(&h, "pods", id, "after delete while down").await;
    let later = recv_until(&mut h.rx, |evs| {
        evs.iter().any(|e| key(&e.object) == "default/p04")
    })
    .await;
    let gone = later
        .iter()
        .find(|e| key(&e.object) == "default/p04")
        .expect("p04 event");
    assert_eq!(gone.change, ChangeType::Deleted);
    assert_eq!(rv(&gone.object), rv(&last), "the last state we had");
    assert_eq!(gone.old.as_deref().map(rv), Some(rv(&last)));
    events.extend(later);

    // Replay the stream over the starting state.
    tokio::time::sleep(Duration::from_millis(300)).await;
    events.extend(drain(&mut h.rx));
    let mut per_object: HashMap<String, u64> = HashMap::new();
    for e in &events {
        let k = key(&e.object);
        match e.change {
            ChangeType::Added | ChangeType::Modified => {
                model.insert(k.clone(), rv(&e.object));
            }
            ChangeType::Deleted => {
                model.remove(&k);
            }
        }
        // Per object, resourceVersions only go forward (a delete found by a relist
        // carries the last state we had, which is still after what we reported).
        let r = rv(&e.object);
        let prev = per_object.insert(format!("{k}#{}", e.uid()), r);
        let forward = match e.change {
            ChangeType::Deleted => prev.is_none_or(|p| p <= r),
            _ => prev.is_none_or(|p| p < r),
        };
        assert!(forward, "{k}: {prev:?} then {r} in {:?}", summary(&events));
    }
    assert_eq!(
        model,
        sim_state(&h.sim, "pods").await,
        "the stream replays to the simulator's state"
    );
}

/// A watch of a type that is not served yet is pending, starts when its CRD is
/// created (the periodic discovery refresh), and waits again when the CRD goes.
#[tokio::test]
async fn crd_created_after_start_is_picked_up() {
    let sim = start_sim().await;
    let mut h = harness(sim, settings()).await;
    let mut spec = WatchSpec::new("example.com", "v1", "gadgets");
    spec.name = Some("gadgets".into());
    let s = h.sources.add(spec).await.expect("add is not fatal");
    assert_eq!(s.state, WatchState::Pending);
    assert!(
        s.reason
            .as_deref()
            .is_some_and(|r| r.contains("example.com")),
        "{s:?}"
    );
    assert!(h.sources.ready(), "pending watches do not hold readiness");

    h.sim
        .create(
            "customresourcedefinitions",
            fixtures::crd("example.com", "v1", "Gadget", "gadgets", true),
        )
        .await
        .expect("crd");
    // Created before the next discovery refresh sees the type: the watch starts
    // after herald did, so its first list reports g0 as added.
    h.sim
        .create("gadgets", json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g0", "namespace": "default"}}))
        .await
        .expect("gadget");
    eventually("watch running", || async {
        let s = status(&h.sources, "gadgets");
        if s.state == WatchState::Running && s.ready {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    h.sim
        .create("gadgets", json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1", "namespace": "default"}}))
        .await
        .expect("gadget");
    let evs = recv_until(&mut h.rx, |evs| evs.len() >= 2).await;
    let got: Vec<(ChangeType, &str)> = evs.iter().map(|e| (e.change, e.name())).collect();
    assert_eq!(got, [(ChangeType::Added, "g0"), (ChangeType::Added, "g1")]);
    assert_eq!(evs[0].gvk.kind, "Gadget");

    h.sim
        .delete("customresourcedefinitions", "", "gadgets.example.com")
        .await
        .expect("delete crd");
    eventually("watch pending again", || async {
        let s = status(&h.sources, "gadgets");
        if s.state == WatchState::Pending {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert!(h.sources.cache().get("gadgets").is_none());
}

/// The cache keeps the JSON the server sent: the query API answers an object with the
/// simulator's own bytes and a list with the simulator's items, fields herald knows
/// nothing about included; change events carry the whole object and, from the store,
/// its previous state.
#[tokio::test]
async fn the_cache_keeps_the_servers_json() {
    let sim = start_sim().await;
    sim.seed_pods("default", 40).await.expect("seed");
    let odd = json!({"metadata": {"name": "odd", "namespace": "default", "labels": {"a": "1"}},
                     "data": {"k": "é \"q\"\n\u{1}", "n": "1.50"},
                     "futureField": {"x": [1, 2.5, -3, null, true, {}], "y": []}});
    sim.create("configmaps", odd).await.expect("cm");
    let mut h = harness(sim, settings()).await;
    for kind in ["Pod", "ConfigMap"] {
        h.sources
            .add(WatchSpec::new("", "v1", kind))
            .await
            .expect("add");
    }
    ready(&h.sources).await;
    let (addr, _stop) = serve(query_router(h.sources.cache(), 5000)).await;

    for (ours, theirs) in [
        (
            "/api/v1/resources/core/v1/pods/default/pod-00007",
            "/api/v1/namespaces/default/pods/pod-00007",
        ),
        (
            "/api/v1/resources/core/v1/configmaps/default/odd",
            "/api/v1/namespaces/default/configmaps/odd",
        ),
    ] {
        let (code, got) = http_raw(addr, "GET", ours, None).await;
        assert_eq!(code, 200);
        let (code, want) = http_raw(h.sim.addr(), "GET", theirs, None).await;
        assert_eq!(code, 200);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{ours}"
        );
    }
    let (_, got) = get(
        addr,
        "/api/v1/resources/core/v1/pods?namespace=default&labelSelector=shard%3D3",
    )
    .await;
    let (_, want) = get(
        h.sim.addr(),
        "/api/v1/namespaces/default/pods?labelSelector=shard%3D3",
    )
    .await;
    // List items come without apiVersion and kind from the server; the cache gives
    // every object both, whichever path it took.
    let mut got = got["items"].as_array().cloned().unwrap_or_default();
    for item in &mut got {
        let typed = item.as_object_mut().expect("object");
        assert_eq!(typed.remove("apiVersion"), Some(json!("v1")));
        assert_eq!(typed.remove("kind"), Some(json!("Pod")));
    }
    assert_eq!(got.len(), 4);
    assert!(
        Value::Array(got) == want["items"],
        "items differ from the simulator's LIST"
    );

    drain(&mut h.rx);
    let before = h
        .sim
        .get("configmaps", "default", "odd")
        .await
        .expect("get");
    let after = h
        .sim
        .patch_merge(
            "configmaps",
            "default",
            "odd",
            json!({"futureField": {"y": [1]}}),
        )
        .await
        .expect("patch");
    let evs = recv_until(&mut h.rx, |evs| evs.iter().any(|e| e.name() == "odd")).await;
    let e = evs.iter().find(|e| e.name() == "odd").expect("modified");
    assert_eq!(e.change, ChangeType::Modified);
    assert_eq!(e.object, after);
    assert_eq!(e.old.as_deref(), Some(&before));
}

/// The query API over 10k pods answers what the simulator's own LIST answers, pages
/// return each object once, and errors name what is wrong.
#[tokio::test]
async fn query_api_matches_the_simulator_over_10k_pods() {
    let sim = start_sim().await;
    sim.seed_pods("default", 6_000).await.expect("seed");
    sim.seed_pods("other", 4_000).await.expect("seed");
    let h = harness(sim, settings()).await;
    h.sources
        .add(WatchSpec::new("", "v1", "Pod"))
        .await
        .expect("add");
    ready(&h.sources).await;
    let (addr, _stop) = serve(query_router(h.sources.cache(), 5000)).await;
    let kube_client = {
        let kc = kube::config::Kubeconfig::from_yaml(&h.sim.kubeconfig_yaml()).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(cfg).expect("client")
    };
    let pods_ar = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
    };

    let (code, index) = get(addr, "/api/v1/resources").await;
    assert_eq!(code, 200);
    assert_eq!(index[0]["objects"], 10_000);
    assert_eq!(index[0]["path"], "/api/v1/resources/core/v1/pods");

    for (selector, namespace) in [
        ("shard=3", None),
        ("app=seed,shard in (1,7)", None),
        ("shard notin (0,1,2,3,4,5,6,7),app", Some("other")),
    ] {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(kube_client.clone(), ns, &pods_ar),
            None => Api::all_with(kube_client.clone(), &pods_ar),
        };
        let want: BTreeSet<(String, String)> = api
            .list(&ListParams::default().labels(selector))
            .await
            .expect("sim list")
            .items
            .iter()
            .map(|o| {
                let v = serde_json::to_value(o).expect("json");
                (
                    key(&v),
                    v["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        let mut path = format!(
            "/api/v1/resources/core/v1/pods?labelSelector={}",
            urlencode(selector)
        );
        if let Some(ns) = namespace {
            path.push_str(&format!("&namespace={ns}"));
        }
        let (code, list) = get(addr, &path).await;
        assert_eq!(code, 200, "{list}");
        assert_eq!(list["kind"], "PodList");
        let got: BTreeSet<(String, String)> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|v| {
                (
                    key(v),
                    v["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "selector {selector}");
    }

    // Pages of 300 over 2,000 pods, with writes between pages: no object twice, and
    // every object present throughout is returned.
    let base = "/api/v1/resources/core/v1/pods?labelSelector=shard%20in%20(1,2)&limit=300";
    let (_, first) = get(addr, base).await;
    let mut seen: Vec<String> = item_keys(&first);
    assert_eq!(seen.len(), 300);
    assert_eq!(first["metadata"]["remainingItemCount"], 1_700);
    h.sim
        .delete("pods", "default", "pod-00001")
        .await
        .expect("delete a returned pod");
    h.sim
        .create(
            "pods",
            fixtures::pod("default", "pod-zzzzz", &[("shard", "1")]),
        )
        .await
        .expect("create");
    let mut token = first["metadata"]["continue"].as_str().map(str::to_string);
    let mut pages = 1;
    while let Some(t) = token {
        let (code, page) = get(addr, &format!("{base}&continue={t}")).await;
        assert_eq!(code, 200, "{page}");
        seen.extend(item_keys(&page));
        token = page["metadata"]["continue"].as_str().map(str::to_string);
        pages += 1;
    }
    assert!(pages >= 7, "{pages} pages");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no object twice");
    for i in 2..10_000 {
        let (ns, n) = if i < 6_000 {
            ("default", i)
        } else {
            ("other", i - 6_000)
        };
        if n % 10 == 1 || n % 10 == 2 {
            assert!(
                unique.contains(&format!("{ns}/pod-{n:05}")),
                "{ns}/pod-{n:05} missing"
            );
        }
    }

    // Field selectors, get, and errors.
    let (code, list) = get(
        addr,
        "/api/v1/resources/core/v1/pods?fieldSelector=metadata.name%3Dpod-00003",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(item_keys(&list), ["default/pod-00003", "other/pod-00003"]);
    let (_, list) = get(addr, "/api/v1/resources/core/v1/pods?fieldSelector=metadata.name%3Dpod-00003,metadata.namespace!%3Ddefault").await;
    assert_eq!(item_keys(&list), ["other/pod-00003"]);
    let (code, pod) = get(addr, "/api/v1/resources/core/v1/pods/other/pod-00042").await;
    assert_eq!(code, 200);
    assert_eq!(key(&pod), "other/pod-00042");
    assert_eq!(pod["kind"], "Pod");
    let (code, err) = get(addr, "/api/v1/resources/core/v1/pods/other/nope").await;
    assert_eq!(
        (code, err["error"]["reason"].as_str()),
        (404, Some("NotFound"))
    );
    let (code, err) = get(addr, "/api/v1/resources/apps/v1/deployments").await;
    assert_eq!(code, 404);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("apps/v1/deployments")),
        "{err}"
    );
    let (code, err) = get(
        addr,
        "/api/v1/resources/core/v1/pods?labelSelector=shard%20in%20(1",
    )
    .await;
    assert_eq!(code, 400, "{err}");
    let (code, _) = get(
        addr,
        "/api/v1/resources/core/v1/pods?fieldSelector=status.phase%3DRunning",
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = get(addr, "/api/v1/resources/core/v1/pods?continue=bogus").await;
    assert_eq!(code, 400);
}

fn urlencode(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c.to_string(),
            c => format!("%{:02X}", c as u32),
        })
        .collect()
}

/// A Deployment's ReplicaSets and Pods, a Service's Pods and EndpointSlices.
#[tokio::test]
async fn relations_from_the_cache() {
    let sim = start_sim().await;
    let dep = sim
        .create("deployments", deployment("default", "web"))
        .await
        .expect("deploy");
    let owner = |kind: &str, o: &Value| json!([{"apiVersion": "apps/v1", "kind": kind, "name": o["metadata"]["name"], "uid": o["metadata"]["uid"], "controller": true}]);
    let rs = sim
        .create("replicasets", json!({"metadata": {"name": "web-1", "namespace": "default", "ownerReferences": owner("Deployment", &dep)},
            "spec": {"selector": {"matchLabels": {"app": "web"}}}}))
        .await
        .expect("rs");
    sim.create("replicasets", json!({"metadata": {"name": "other-1", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "other"}}}}))
        .await
        .expect("rs");
    for n in ["web-1-a", "web-1-b"] {
        let mut p = fixtures::pod("default", n, &[("app", "web")]);
        p["metadata"]["ownerReferences"] = owner("ReplicaSet", &rs);
        sim.create("pods", p).await.expect("pod");
    }
    let mut stray = fixtures::pod("default", "stray", &[("app", "web")]);
    stray["metadata"]["ownerReferences"] = json!([]);
    sim.create("pods", stray).await.expect("pod");
    sim.create(
        "pods",
        fixtures::pod("other", "web-elsewhere", &[("app", "web")]),
    )
    .await
    .expect("pod");
    sim.create("services", json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}}}))
        .await
        .expect("svc");
    for (n, svc) in [("web-x1", "web"), ("db-x1", "db")] {
        sim.create("endpointslices", json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": n, "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": []}))
            .await
            .expect("slice");
    }
    let h = harness(sim, settings()).await;
    let (addr, _stop) = serve(query_router(h.sources.cache(), 5000)).await;
    h.sources
        .add(WatchSpec::new("apps", "v1", "Deployment"))
        .await
        .expect("add");
    h.sources
        .add(WatchSpec::new("core", "v1", "Service"))
        .await
        .expect("add");
    ready(&h.sources).await;
    let (code, err) = get(
        addr,
        "/api/v1/resources/apps/v1/deployments/default/web/replicasets",
    )
    .await;
    assert_eq!(code, 404, "ReplicaSets are not watched yet");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ReplicaSet")),
        "{err}"
    );

    for (g, v, k) in [
        ("apps", "v1", "ReplicaSet"),
        ("", "v1", "Pod"),
        ("discovery.k8s.io", "v1", "EndpointSlice"),
    ] {
        h.sources.add(WatchSpec::new(g, v, k)).await.expect("add");
    }
    ready(&h.sources).await;
    let base = "/api/v1/resources";
    let (code, list) = get(
        addr,
        &format!("{base}/apps/v1/deployments/default/web/replicasets"),
    )
    .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "ReplicaSetList");
    assert_eq!(item_keys(&list), ["default/web-1"]);
    let (_, list) = get(
        addr,
        &format!("{base}/apps/v1/deployments/default/web/pods"),
    )
    .await;
    assert_eq!(item_keys(&list), ["default/web-1-a", "default/web-1-b"]);
    let (_, list) = get(addr, &format!("{base}/core/v1/services/default/web/pods")).await;
    assert_eq!(
        item_keys(&list),
        ["default/stray", "default/web-1-a", "default/web-1-b"]
    );
    let (_, list) = get(
        addr,
        &format!("{base}/core/v1/services/default/web/endpointslices"),
    )
    .await;
    assert_eq!(item_keys(&list), ["default/web-x1"]);
    let (code, err) = get(
        addr,
        &format!("{base}/apps/v1/deployments/default/web/services"),
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("replicasets, pods")),
        "{err}"
    );
    let (code, _) = get(
        addr,
        &format!("{base}/apps/v1/deployments/default/nope/pods"),
    )
    .await;
    assert_eq!(code, 404);
}

/// Watches are added, listed and removed over the admin API; the query API follows.
#[tokio::test]
async fn admin_api_adds_lists_and_removes_watches() {
    let sim = start_sim().await;
    sim.create("configmaps", fixtures::config_map("default", "c1", &[]))
        .await
        .expect("cm");
    let h = harness(sim, settings()).await;
    let (control, mut requests) = WatchControl::channel(h.sources.clone());
    let owner = h.sources.clone();
    tokio::spawn(async move {
        while let Some(r) = requests.recv().await {
            r.apply_to(&owner).await;
        }
    });
    let router = query_router(h.sources.cache(), 5000).merge(admin_router(control));
    let (addr, _stop) = serve(router).await;
    let w = "/admin/v1/watches";

    let (code, st) = http(
        addr,
        "POST",
        w,
        Some(r#"{"group":"core","version":"v1","kind":"ConfigMap","name":"cms"}"#),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    assert_eq!(st["state"], "running");
    assert_eq!(st["resource"]["plural"], "configmaps");
    eventually("ready over the admin API", || async {
        let (_, st) = get(addr, &format!("{w}/cms")).await;
        if st["ready"] == true && st["scopes"][0]["lastSeen"].is_string() {
            Ok(())
        } else {
            Err(st.to_string())
        }
    })
    .await;
    let (code, list) = get(addr, "/api/v1/resources/core/v1/configmaps").await;
    assert_eq!(
        (code, item_keys(&list)),
        (200, vec!["default/c1".to_string()])
    );

    let (code, err) = http(
        addr,
        "POST",
        w,
        Some(r#"{"kind":"ConfigMap","version":"v1","name":"cms"}"#),
    )
    .await;
    assert_eq!(code, 409, "{err}");
    let (code, err) = http(
        addr,
        "POST",
        w,
        Some(r#"{"kind":"ConfigMap","lables":"x"}"#),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("lables")),
        "{err}"
    );
    let (code, err) = http(
        addr,
        "POST",
        w,
        Some(r#"{"kind":"ConfigMap","labelSelector":"a in (b"}"#),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("labelSelector")),
        "{err}"
    );
    let (code, err) = http(
        addr,
        "POST",
        w,
        Some(r#"{"kind":"Namespace","namespaces":["a"]}"#),
    )
    .await;
    assert_eq!(code, 422, "cluster-scoped with namespaces: {err}");
    let (code, st) = http(
        addr,
        "POST",
        w,
        Some(r#"{"group":"nowhere.example","kind":"Thing"}"#),
    )
    .await;
    assert_eq!(code, 202, "{st}");
    assert_eq!(st["state"], "pending");

    let (_, list) = get(addr, w).await;
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["cms", "thing.nowhere.example"]);

    let (code, spec) = http(addr, "DELETE", &format!("{w}/cms"), None).await;
    assert_eq!(code, 200);
    assert_eq!(spec["kind"], "ConfigMap");
    let (code, err) = get(addr, "/api/v1/resources/core/v1/configmaps").await;
    assert_eq!(code, 404, "{err}");
    let (code, _) = http(addr, "DELETE", &format!("{w}/cms"), None).await;
    assert_eq!(code, 404);
}

/// Namespaces, ignoreNamespaces and labelSelector reach the server; `events` picks
/// what is emitted while the cache keeps everything watched.
#[tokio::test]
async fn namespaces_selectors_and_event_types() {
    let sim = start_sim().await;
    let mut h = harness(sim, settings()).await;
    let mut a: WatchSpec = serde_json::from_value(json!({
        "name": "cm-a", "kind": "ConfigMap", "version": "v1",
        "namespaces": ["a", "b"], "ignoreNamespaces": ["b"], "labelSelector": "team=x",
        "events": ["added", "deleted"]
    }))
    .expect("spec");
    h.sources.add(a.clone()).await.expect("add");
    a.name = Some("cm-all".into());
    a.namespaces.clear();
    a.ignore_namespaces = vec!["kube-system".into()];
    a.label_selector = None;
    a.events = vec![ChangeType::Modified];
    h.sources.add(a).await.expect("add");
    ready(&h.sources).await;

    let cm = |ns: &str, n: &str, team: &str| {
        let mut c = fixtures::config_map(ns, n, &[]);
        c["metadata"]["labels"] = json!({"team": team});
        c
    };
    for (ns, n, team) in [
        ("a", "ax", "x"),
        ("a", "ay", "y"),
        ("b", "bx", "x"),
        ("kube-system", "kx", "x"),
        ("default", "dx", "x"),
    ] {
        h.sim
            .create("configmaps", cm(ns, n, team))
            .await
            .expect("create");
    }
    for (ns, n) in [("a", "ax"), ("kube-system", "kx"), ("default", "dx")] {
        h.sim
            .patch_merge("configmaps", ns, n, json!({"data": {"k": "2"}}))
            .await
            .expect("patch");
    }
    h.sim.delete("configmaps", "a", "ax").await.expect("delete");
    h.sim.delete("configmaps", "a", "ay").await.expect("delete");

    let evs = recv_until(&mut h.rx, |evs| evs.len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut all: Vec<String> = evs
        .iter()
        .chain(drain(&mut h.rx).iter())
        .map(|e| format!("{} {} {}", e.watch, e.change, key(&e.object)))
        .collect();
    all.sort();
    assert_eq!(
        all,
        [
            "cm-a added a/ax",
            "cm-a deleted a/ax",
            "cm-all modified a/ax",
            "cm-all modified default/dx"
        ]
    );
    let cached: Vec<String> = cache_state(&h.sources, "cm-a").into_keys().collect();
    assert_eq!(cached, Vec::<String>::new(), "ax deleted, ay not team=x");
    let cached: Vec<String> = cache_state(&h.sources, "cm-all").into_keys().collect();
    assert_eq!(cached, ["b/bx", "default/dx"]);
    let paths: Vec<String> = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.is_watch())
        .map(|r| r.path)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/api/v1/namespaces/a/configmaps?")
                && p.contains("labelSelector=team%3Dx")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("/namespaces/b/")),
        "b is ignored: {paths:?}"
    );
    assert!(
        paths.iter().all(|p| p.contains("allowWatchBookmarks=true")),
        "bookmarks requested: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("/api/v1/configmaps?")
            && p.contains("fieldSelector=metadata.namespace%21%3Dkube-system")),
        "{paths:?}"
    );
}

/// With `initialList: notify` the first list reports what exists.
#[tokio::test]
async fn initial_list_can_notify() {
    let sim = start_sim().await;
    for n in ["c1", "c2"] {
        sim.create("configmaps", fixtures::config_map("default", n, &[]))
            .await
            .expect("cm");
    }
    let mut h = harness(
        sim,
        SourceSettings {
            initial_list: InitialList::Notify,
            ..settings()
        },
    )
    .await;
    let mut spec = WatchSpec::new("", "v1", "ConfigMap");
    spec.namespaces = vec!["default".into()];
    h.sources.add(spec).await.expect("add");
    let evs = recv_until(&mut h.rx, |evs| evs.len() >= 2).await;
    let got: Vec<String> = evs
        .iter()
        .map(|e| format!("{} {}", e.change, key(&e.object)))
        .collect();
    assert_eq!(got, ["added default/c1", "added default/c2"]);
}

/// The client carries the kubeconfig's bearer token; a missing kubeconfig says which.
#[tokio::test]
async fn client_from_kubeconfig_with_token() {
    let sim = Simulator::builder()
        .require_token(true)
        .start()
        .await
        .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).expect("kubeconfig");
    let client = source::client(Some(&path)).await.expect("client");
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(
        api.list(&ListParams::default())
            .await
            .expect("authorised")
            .items
            .len()
            >= 4
    );
    let Err(err) = source::client(Some(&dir.path().join("missing"))).await else {
        panic!("a missing kubeconfig is an error");
    };
    assert!(
        matches!(err, source::Error::ReadKubeconfig { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing"), "{err}");
}
