//! Label and field selectors on LIST and WATCH, including the real server's rule that
//! an object that stops matching is sent as DELETED and one that starts as ADDED.

use std::time::Duration;

use herald_sim::Sim;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::common::{self, RawWatch, client, get_json, summary};

fn pod(ns: &str, name: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"containers": [{"name": "c", "image": "i"}]}})
}

async fn seed(sim: &Sim) {
    sim.create(
        "pods",
        pod("ns1", "a", json!({"app": "web", "tier": "front"})),
    )
    .await
    .expect("a");
    sim.create("pods", pod("ns1", "b", json!({"app": "db"})))
        .await
        .expect("b");
    sim.create(
        "pods",
        pod("ns1", "c", json!({"app": "web", "tier": "back"})),
    )
    .await
    .expect("c");
    sim.create("pods", pod("ns1", "d", json!({})))
        .await
        .expect("d");
    sim.create("pods", pod("ns2", "e", json!({"app": "web"})))
        .await
        .expect("e");
}

#[tokio::test]
async fn selectors_filter_lists() {
    let sim = common::start().await;
    seed(&sim).await;
    let api: Api<Pod> = Api::all(client(&sim).await);
    let names = |lp: ListParams| {
        let api = api.clone();
        async move {
            api.list(&lp)
                .await
                .expect("list")
                .items
                .into_iter()
                .map(|p| p.metadata.name.unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    let l = |s: &str| ListParams::default().labels(s);
    let f = |s: &str| ListParams::default().fields(s);
    assert_eq!(names(l("app=web")).await, ["a", "c", "e"]);
    assert_eq!(names(l("app==web,tier=front")).await, ["a"]);
    assert_eq!(names(l("app!=web")).await, ["b", "d"]);
    assert_eq!(
        names(l("app in (web,db),tier!=back")).await,
        ["a", "b", "e"]
    );
    assert_eq!(names(l("app notin (web)")).await, ["b", "d"]);
    assert_eq!(names(l("tier")).await, ["a", "c"]);
    assert_eq!(names(l("!tier")).await, ["b", "d", "e"]);
    assert_eq!(names(f("metadata.name=a")).await, ["a"]);
    assert_eq!(names(f("metadata.namespace!=ns1")).await, ["e"]);
    assert_eq!(
        names(f("metadata.namespace==ns1,metadata.name!=a").labels("app")).await,
        ["b", "c"]
    );
    assert_eq!(names(f("status.phase=Pending")).await.len(), 5);
    // Paginated and filtered: the limit counts matches.
    let page = api.list(&l("app=web").limit(2)).await.expect("page");
    assert_eq!(page.items.len(), 2);
    assert!(page.metadata.continue_.is_some());
    assert_eq!(
        page.metadata.remaining_item_count, None,
        "not given for filtered lists"
    );

    let (code, status) = get_json(&sim, "/api/v1/pods?labelSelector=app%20in%20(web").await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, status) = get_json(&sim, "/api/v1/pods?fieldSelector=spec.nothing%3Dx").await;
    assert_eq!(code, 400);
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("field label not supported"))
    );
}

#[tokio::test]
async fn watch_sends_deleted_and_added_as_objects_leave_and_enter_a_selector() {
    let sim = common::start().await;
    seed(&sim).await;
    let rv = sim.resource_version();
    let mut w = RawWatch::open(
        &sim,
        &format!(
            "/api/v1/namespaces/ns1/pods?watch=true&labelSelector=app%3Dweb&resourceVersion={rv}"
        ),
    )
    .await;
    sim.patch_merge(
        "pods",
        "ns1",
        "b",
        json!({"metadata": {"labels": {"app": "web"}}}),
    )
    .await
    .expect("b enters");
    let a_left = sim
        .patch_merge(
            "pods",
            "ns1",
            "a",
            json!({"metadata": {"labels": {"app": "other"}}}),
        )
        .await
        .expect("a leaves");
    sim.patch_merge(
        "pods",
        "ns1",
        "c",
        json!({"metadata": {"annotations": {"x": "1"}}}),
    )
    .await
    .expect("c changes");
    sim.create("pods", pod("ns1", "f", json!({"app": "web"})))
        .await
        .expect("f");
    sim.create("pods", pod("ns1", "g", json!({"app": "db"})))
        .await
        .expect("g, not matching");
    sim.create("pods", pod("ns2", "h", json!({"app": "web"})))
        .await
        .expect("h, other namespace");
    sim.delete("pods", "ns1", "c").await.expect("delete c");
    let events = w.events(5, Duration::from_secs(5), false).await;
    let want: Vec<(String, String)> = [
        ("ADDED", "b"),
        ("DELETED", "a"),
        ("MODIFIED", "c"),
        ("ADDED", "f"),
        ("DELETED", "c"),
    ]
    .iter()
    .map(|(t, n)| (t.to_string(), n.to_string()))
    .collect();
    assert_eq!(summary(&events), want);
    // The DELETED for `a` carries its last matching state at the new resourceVersion.
    assert_eq!(events[1]["object"]["metadata"]["labels"]["app"], "web");
    assert_eq!(
        events[1]["object"]["metadata"]["resourceVersion"],
        a_left["metadata"]["resourceVersion"]
    );
    assert_eq!(events[0]["object"]["kind"], "Pod");
    assert!(
        w.events(1, Duration::from_millis(300), false)
            .await
            .is_empty(),
        "nothing else"
    );
}

#[tokio::test]
async fn watch_with_field_selector_sees_one_object() {
    let sim = common::start().await;
    seed(&sim).await;
    let mut w = RawWatch::open(&sim, "/api/v1/pods?watch=1&fieldSelector=metadata.name%3Da").await;
    let initial = w.events(1, Duration::from_secs(5), false).await;
    assert_eq!(summary(&initial), [("ADDED".to_string(), "a".to_string())]);
    sim.patch_merge(
        "pods",
        "ns1",
        "b",
        json!({"metadata": {"labels": {"z": "1"}}}),
    )
    .await
    .expect("b");
    sim.patch_merge(
        "pods",
        "ns1",
        "a",
        json!({"metadata": {"labels": {"z": "1"}}}),
    )
    .await
    .expect("a");
    sim.delete("pods", "ns1", "a").await.expect("delete a");
    let events = w.events(2, Duration::from_secs(5), false).await;
    assert_eq!(
        summary(&events),
        [
            ("MODIFIED".to_string(), "a".to_string()),
            ("DELETED".to_string(), "a".to_string())
        ]
    );
}
