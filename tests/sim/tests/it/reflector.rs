//! A kube-rs watcher + reflector on Pods converges to the simulator's state through
//! writes and every injected fault: cut watches, a connection closed mid-chunk,
//! compaction during a watch (410 then relist), failing requests and a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use herald_sim::check::same_state;
use herald_sim::{Sim, fixtures};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::common::{self, client, eventually};

/// Retries quickly so fault recovery takes milliseconds, not client-go's seconds.
struct Quick;

impl Iterator for Quick {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }
}

impl Backoff for Quick {
    fn reset(&mut self) {}
}

async fn sim_state(sim: &Sim) -> BTreeMap<String, String> {
    sim.list("pods", "")
        .await
        .expect("list")
        .iter()
        .map(|p| {
            (
                format!(
                    "{}/{}",
                    p["metadata"]["namespace"].as_str().unwrap_or_default(),
                    p["metadata"]["name"].as_str().unwrap_or_default()
                ),
                p["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn cache_state(reader: &Store<Pod>) -> BTreeMap<String, String> {
    reader
        .state()
        .iter()
        .map(|p| {
            (
                format!(
                    "{}/{}",
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default()
                ),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn converge(sim: &Sim, reader: &Store<Pod>, step: &str) {
    eventually(step, Duration::from_secs(10), || async {
        same_state(&sim_state(sim).await, &cache_state(reader))
    })
    .await;
}

fn pod(ns: &str, name: &str) -> serde_json::Value {
    fixtures::pod(ns, name, &[("app", "web")])
}

fn lists_since(sim: &Sim, mark: usize) -> usize {
    sim.requests()[mark..]
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/pods?") && !r.is_watch())
        .count()
}

fn watches_since(sim: &Sim, mark: usize) -> usize {
    sim.requests()[mark..]
        .iter()
        .filter(|r| r.is_watch())
        .count()
}

#[tokio::test]
async fn reflector_converges_through_writes_and_faults() {
    let sim = common::start().await;
    for i in 0..20 {
        let ns = if i % 2 == 0 { "default" } else { "kube-system" };
        sim.create("pods", pod(ns, &format!("p{i:02}")))
            .await
            .expect("seed");
    }
    let client = client(&sim).await;
    let api: Api<Pod> = Api::all(client);
    let (reader, writer) = reflector::store::<Pod>();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let errs = errors.clone();
    let stream = watcher(api, watcher::Config::default())
        .backoff(Quick)
        .reflect(writer);
    let task = tokio::spawn(async move {
        stream
            .for_each(|ev| {
                if let Err(e) = ev {
                    errs.lock().expect("lock").push(format!("{e:?}"));
                }
                async {}
            })
            .await;
    });
    converge(&sim, &reader, "initial list").await;
    assert!(
        sim.wait_for_watches(|n| n == 1, Duration::from_secs(5))
            .await
    );

    // Plain writes.
    for i in 0..5 {
        sim.patch_merge(
            "pods",
            "default",
            &format!("p{:02}", i * 2),
            json!({"metadata": {"labels": {"v": "2"}}}),
        )
        .await
        .expect("patch");
    }
    for i in [1, 3, 5] {
        sim.delete("pods", "kube-system", &format!("p{i:02}"))
            .await
            .expect("delete");
    }
    for i in 20..23 {
        sim.create("pods", pod("default", &format!("p{i:02}")))
            .await
            .expect("create");
    }
    converge(&sim, &reader, "after writes").await;

    // Cut: the watcher re-watches from its last resourceVersion.
    let mark = sim.request_count();
    sim.cut_watches();
    sim.create("pods", pod("default", "after-cut"))
        .await
        .expect("create");
    converge(&sim, &reader, "after cut_watches").await;
    assert!(watches_since(&sim, mark) >= 1, "re-watched after the cut");
    assert_eq!(lists_since(&sim, mark), 0, "a clean cut needs no relist");

    // Closed mid-chunk: half an event, then the connection is gone.
    assert!(
        sim.wait_for_watches(|n| n == 1, Duration::from_secs(5))
            .await
    );
    sim.close_mid_chunk();
    sim.patch_merge(
        "pods",
        "default",
        "after-cut",
        json!({"metadata": {"labels": {"v": "3"}}}),
    )
    .await
    .expect("patch");
    converge(&sim, &reader, "after close_mid_chunk").await;

    // Compaction while the watch is stalled: it resumes with 410 Expired, and the
    // watcher relists.
    assert!(
        sim.wait_for_watches(|n| n == 1, Duration::from_secs(5))
            .await
    );
    let mark = sim.request_count();
    sim.stall_watches(true);
    sim.create("pods", pod("default", "during-stall"))
        .await
        .expect("create");
    sim.delete("pods", "default", "p00").await.expect("delete");
    sim.compact();
    sim.stall_watches(false);
    converge(&sim, &reader, "after compact").await;
    assert!(lists_since(&sim, mark) >= 1, "relisted after 410");
    assert!(
        errors
            .lock()
            .expect("lock")
            .iter()
            .any(|e| e.contains("410")),
        "the watcher saw 410: {:?}",
        errors.lock().expect("lock")
    );

    // Five failing requests: the re-watch fails, backs off, and recovers.
    let errors_before = errors.lock().expect("lock").len();
    sim.fail_next(5, 500);
    sim.cut_watches();
    sim.create("pods", pod("default", "after-500"))
        .await
        .expect("create");
    converge(&sim, &reader, "after fail_next(5, 500)").await;
    let new_errors = errors.lock().expect("lock")[errors_before..].to_vec();
    assert!(
        new_errors.iter().filter(|e| e.contains("500")).count() >= 1,
        "{new_errors:?}"
    );

    // Restart: every connection closes, the same port serves the same state.
    let addr = sim.addr();
    sim.restart().await.expect("restart");
    assert_eq!(sim.addr(), addr);
    sim.create("pods", pod("default", "after-restart"))
        .await
        .expect("create");
    sim.delete("pods", "default", "p02").await.expect("delete");
    converge(&sim, &reader, "after restart").await;

    task.abort();
}

#[tokio::test]
async fn watcher_pages_a_large_initial_list() {
    let sim = common::start().await;
    sim.seed_pods("default", 1_200).await.expect("seed");
    let api: Api<Pod> = Api::all(client(&sim).await);
    let mut stream = watcher(api, watcher::Config::default().page_size(500)).boxed();
    let mut applied = 0;
    while let Some(ev) = stream.next().await {
        match ev.expect("no errors") {
            watcher::Event::InitApply(_) => applied += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(applied, 1_200);
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/pods?") && r.path.contains("limit=500"))
        .count();
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn streaming_list_and_metadata_watch() {
    let sim = common::start().await;
    for i in 0..3 {
        sim.create("pods", pod("default", &format!("s{i}")))
            .await
            .expect("create");
    }
    let client = client(&sim).await;
    // sendInitialEvents: synthetic ADDED, then a bookmark marking their end.
    let api: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher(api, watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("in time")
    {
        match ev.expect("no errors") {
            watcher::Event::InitApply(p) => names.push(p.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, ["s0", "s1", "s2"]);
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path.contains("sendInitialEvents=true"))
    );

    // Metadata-only watches get PartialObjectMetadata.
    let api: Api<PartialObjectMeta<Pod>> = Api::namespaced(client, "default");
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut seen = 0;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("in time")
    {
        match ev.expect("no errors") {
            watcher::Event::InitApply(m) => {
                assert!(m.metadata.name.is_some_and(|n| n.starts_with('s')));
                seen += 1;
            }
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, 3);
}
