//! The watch wire protocol: initial state, bookmarks (only when allowed), 410 Expired
//! for a compacted resourceVersion, timeoutSeconds, and stalls that send no bytes.

use std::time::Duration;

use herald_sim::fixtures;
use serde_json::Value;

use crate::common::{self, BOOKMARKS, RawWatch, summary};

fn bookmarks(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "BOOKMARK").collect()
}

#[tokio::test]
async fn bookmarks_when_allowed_and_only_then() {
    let sim = common::start().await;
    let rv = sim.resource_version();
    let mut with = RawWatch::open(
        &sim,
        &format!("/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"),
    )
    .await;
    let mut without = RawWatch::open(
        &sim,
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
    )
    .await;
    with.read_for(BOOKMARKS * 5).await;
    let got = with.take_events();
    let marks = bookmarks(&got);
    assert!(
        marks.len() >= 3,
        "expected a bookmark every {BOOKMARKS:?}: {got:?}"
    );
    let obj = &marks[0]["object"];
    assert_eq!(obj["kind"], "Pod");
    assert_eq!(obj["apiVersion"], "v1");
    assert_eq!(obj["metadata"]["resourceVersion"], rv.to_string());
    let keys: Vec<&String> = obj.as_object().expect("object").keys().collect();
    assert_eq!(
        keys.len(),
        3,
        "a bookmark carries only kind, apiVersion, metadata: {obj}"
    );
    assert_eq!(obj["metadata"].as_object().map(|m| m.len()), Some(1));

    // A write to another type moves the bookmark's resourceVersion too.
    sim.create(
        "configmaps",
        fixtures::config_map("default", "cm", &[("a", "b")]),
    )
    .await
    .expect("cm");
    with.read_for(BOOKMARKS * 3).await;
    let later = with.take_events();
    let last = bookmarks(&later)
        .last()
        .map(|b| b["object"]["metadata"]["resourceVersion"].clone());
    assert_eq!(last, Some(Value::from(sim.resource_version().to_string())));

    without.read_for(Duration::from_millis(50)).await;
    assert!(
        without.take_events().is_empty(),
        "no bookmarks unless allowed"
    );
}

#[tokio::test]
async fn initial_state_then_changes() {
    let sim = common::start().await;
    sim.create("pods", fixtures::pod("default", "one", &[]))
        .await
        .expect("one");
    for rv in ["", "0"] {
        let mut w = RawWatch::open(
            &sim,
            &format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"),
        )
        .await;
        let ev = w.events(1, Duration::from_secs(5), false).await;
        assert_eq!(
            summary(&ev),
            [("ADDED".to_string(), "one".to_string())],
            "resourceVersion={rv:?}"
        );
    }
}

#[tokio::test]
async fn compacted_resource_version_gets_410_then_the_stream_ends() {
    let sim = common::start().await;
    sim.create("pods", fixtures::pod("default", "one", &[]))
        .await
        .expect("one");
    let old = sim.resource_version();
    sim.create("pods", fixtures::pod("default", "two", &[]))
        .await
        .expect("two");
    sim.compact();
    let mut w = RawWatch::open(
        &sim,
        &format!("/api/v1/pods?watch=true&resourceVersion={old}"),
    )
    .await;
    let ev = w.events(1, Duration::from_secs(5), true).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "ERROR");
    let status = &ev[0]["object"];
    assert_eq!(
        (
            status["kind"].as_str(),
            status["code"].as_u64(),
            status["reason"].as_str()
        ),
        (Some("Status"), Some(410), Some("Expired"))
    );
    w.read_for(Duration::from_millis(300)).await;
    assert!(w.ended, "the stream ends after the error");
    // The current resourceVersion is still fine.
    let now = sim.resource_version();
    let mut ok = RawWatch::open(
        &sim,
        &format!("/api/v1/pods?watch=true&resourceVersion={now}"),
    )
    .await;
    sim.create("pods", fixtures::pod("default", "three", &[]))
        .await
        .expect("three");
    assert_eq!(
        summary(&ok.events(1, Duration::from_secs(5), false).await),
        [("ADDED".to_string(), "three".to_string())]
    );
}

#[tokio::test]
async fn slow_watch_that_falls_out_of_history_gets_410() {
    let sim = herald_sim::Simulator::builder()
        .history_retention(5)
        .start()
        .await
        .expect("start");
    let rv = sim.resource_version();
    sim.stall_watches(true);
    let mut w = RawWatch::send(
        &sim,
        &format!("/api/v1/configmaps?watch=true&resourceVersion={rv}"),
    )
    .await;
    for i in 0..10 {
        sim.create(
            "configmaps",
            fixtures::config_map("default", &format!("c{i}"), &[]),
        )
        .await
        .expect("cm");
    }
    sim.stall_watches(false);
    assert!(w.wait_headers(Duration::from_secs(5)).await);
    let ev = w.events(1, Duration::from_secs(5), true).await;
    assert_eq!(
        ev.first().map(|e| e["object"]["code"].clone()),
        Some(Value::from(410))
    );
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream_cleanly() {
    let sim = common::start().await;
    let started = std::time::Instant::now();
    let mut w = RawWatch::open(
        &sim,
        "/api/v1/pods?watch=true&timeoutSeconds=1&resourceVersion=1",
    )
    .await;
    w.read_for(Duration::from_secs(3)).await;
    assert!(w.ended, "terminating chunk sent");
    assert!(started.elapsed() < Duration::from_millis(2_900));
    assert!(
        sim.wait_for_watches(|n| n == 0, Duration::from_secs(2))
            .await
    );
}

#[tokio::test]
async fn stalled_watches_send_no_bytes_at_all() {
    let sim = common::start().await;
    let rv = sim.resource_version();
    let mut w = RawWatch::open(
        &sim,
        &format!("/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"),
    )
    .await;
    w.read_for(BOOKMARKS * 2).await;
    assert!(
        !w.take_events().is_empty(),
        "bookmarks flow before the stall"
    );
    sim.stall_watches(true);
    w.read_for(BOOKMARKS).await; // anything already in flight
    sim.create("pods", fixtures::pod("default", "quiet", &[]))
        .await
        .expect("create");
    let bytes = w.read_for(BOOKMARKS * 6).await;
    assert_eq!(
        bytes, 0,
        "a stalled watch sends nothing, not even bookmarks"
    );
    assert!(!w.eof, "the connection stays open");
    assert_eq!(sim.open_watches(), 1);
    // A new watch gets no response headers while stalled.
    let mut fresh = RawWatch::send(&sim, "/api/v1/pods?watch=true").await;
    assert!(!fresh.wait_headers(BOOKMARKS * 3).await);
    sim.stall_watches(false);
    let ev = w.events(1, Duration::from_secs(5), false).await;
    assert_eq!(summary(&ev), [("ADDED".to_string(), "quiet".to_string())]);
    assert!(fresh.wait_headers(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn close_mid_chunk_writes_half_an_event_then_aborts() {
    let sim = common::start().await;
    let rv = sim.resource_version();
    let mut w = RawWatch::open(
        &sim,
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
    )
    .await;
    sim.close_mid_chunk();
    sim.create("pods", fixtures::pod("default", "cut", &[]))
        .await
        .expect("create");
    w.read_for(Duration::from_secs(2)).await;
    assert!(w.eof, "connection aborted");
    assert!(!w.ended, "no terminating chunk");
    assert!(w.take_events().is_empty(), "no complete event");
    // hyper frames what it is given, so the HTTP chunk is whole but the JSON line is
    // not: the client's line decoder sees half an event, then the connection drop.
    let partial = w.partial_line();
    assert!(
        partial.starts_with("{\"type\":\"ADDED\""),
        "half an event was written: {partial:?}"
    );
    assert!(
        partial.len() > 1000 && partial.len() < 4000,
        "about half of a 6.6 KB event: {}",
        partial.len()
    );
    // Watches opened after the fault are not affected.
    let mut later = RawWatch::open(
        &sim,
        &format!(
            "/api/v1/pods?watch=true&resourceVersion={}",
            sim.resource_version()
        ),
    )
    .await;
    sim.create("pods", fixtures::pod("default", "fine", &[]))
        .await
        .expect("create");
    assert_eq!(
        summary(&later.events(1, Duration::from_secs(5), false).await),
        [("ADDED".to_string(), "fine".to_string())]
    );
}

#[tokio::test]
async fn cut_watches_ends_streams_cleanly() {
    let sim = common::start().await;
    let mut a = RawWatch::open(&sim, "/api/v1/pods?watch=true&resourceVersion=1").await;
    let mut b = RawWatch::open(
        &sim,
        "/apis/apps/v1/deployments?watch=true&resourceVersion=1",
    )
    .await;
    assert!(
        sim.wait_for_watches(|n| n == 2, Duration::from_secs(2))
            .await
    );
    sim.cut_watches();
    a.read_for(Duration::from_millis(300)).await;
    b.read_for(Duration::from_millis(300)).await;
    assert!(a.ended && b.ended);
    assert!(
        sim.wait_for_watches(|n| n == 0, Duration::from_secs(2))
            .await
    );
}

#[tokio::test]
#[ignore = "performance check; run with --ignored --nocapture"]
async fn watch_event_throughput() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher;

    let sim = common::start().await;
    sim.seed_pods("default", 100_000).await.expect("seed");
    let api: kube::Api<ConfigMap> = kube::Api::all(common::client(&sim).await);
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    while let Some(ev) = stream.next().await {
        if matches!(ev.expect("event"), watcher::Event::InitDone) {
            break;
        }
    }
    const N: usize = 20_000;
    let writer = {
        let sim = sim.clone();
        tokio::spawn(async move {
            for i in 0..N {
                sim.create(
                    "configmaps",
                    fixtures::config_map("default", &format!("c{i}"), &[("k", "v")]),
                )
                .await
                .expect("create");
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let mut seen = 0;
    while seen < N {
        if let watcher::Event::Apply(_) = stream.next().await.expect("stream").expect("event") {
            seen += 1;
        }
    }
    writer.await.expect("writer");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{N} watch events through kube-rs with 100k pods stored: {:.0} events/s",
        N as f64 / secs
    );
}
