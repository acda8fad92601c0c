//! Request-level faults and access: injected 500/429 answers, the bearer token, and
//! stop/resume on the same port.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::Value;

use crate::common::{self, RawWatch, client, request};

#[tokio::test]
async fn fail_next_answers_with_status_and_retry_after() {
    let sim = common::start().await;
    sim.fail_next(2, 429);
    for _ in 0..2 {
        let (code, headers, body) = request(&sim, "GET", "/api/v1/pods", None, "").await;
        assert_eq!(code, 429);
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let s: Value = serde_json::from_slice(&body).expect("status");
        assert_eq!(
            (
                s["kind"].as_str(),
                s["status"].as_str(),
                s["reason"].as_str()
            ),
            (Some("Status"), Some("Failure"), Some("TooManyRequests"))
        );
        assert_eq!(s["details"]["retryAfterSeconds"], 1);
    }
    let (code, _, _) = request(&sim, "GET", "/api/v1/pods", None, "").await;
    assert_eq!(code, 200);

    sim.fail_next(1, 500);
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    match api.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (500, "InternalError")),
        other => panic!("expected a 500 Status, got {other:?}"),
    }
    assert!(api.list(&Default::default()).await.is_ok());
}

#[tokio::test]
async fn token_can_be_required() {
    let sim = herald_sim::Simulator::builder()
        .require_token(true)
        .token("s3cret")
        .start()
        .await
        .expect("start");
    let (code, _, body) = request(&sim, "GET", "/api/v1/namespaces", None, "").await;
    assert_eq!(code, 401);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("status")["reason"],
        "Unauthorized"
    );
    // The kubeconfig carries the token.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).expect("write");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let names: Vec<String> = namespaces
        .list(&Default::default())
        .await
        .expect("authorised list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

#[tokio::test]
async fn restart_closes_connections_and_serves_the_same_state() {
    let sim = common::start().await;
    sim.create(
        "configmaps",
        herald_sim::fixtures::config_map("default", "keep", &[]),
    )
    .await
    .expect("create");
    let mut w = RawWatch::open(&sim, "/api/v1/configmaps?watch=true&resourceVersion=1").await;
    let addr = sim.addr();
    sim.stop().await;
    w.read_for(Duration::from_millis(300)).await;
    assert!(w.eof, "open connections are closed");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens while stopped"
    );
    assert!(
        sim.wait_for_watches(|n| n == 0, Duration::from_secs(2))
            .await
    );
    sim.resume().await.expect("resume");
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    assert!(api.get("keep").await.is_ok());
}
