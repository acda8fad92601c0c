//! Issue 14's acceptance for the APIs: the query and admin APIs answer only
//! what the API server would allow the caller (delegated TokenReview and
//! SubjectAccessReview, against the simulator's rules), decisions are
//! cached for `authCacheTTL`, and metrics and probes need no token on their
//! own listener. The real `herald run` over loopback.

use std::time::{Duration, Instant};

use herald_e2e::{Cluster, HeraldProcess, http_get, http_send_as, wait_http_ok};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// `GET url` as `token`; the status and the error reason, if any.
async fn get_as(url: &str, token: Option<&str>) -> (u16, String) {
    let (code, body) = http_send_as("GET", url, None, token)
        .await
        .expect("request");
    let said = body["error"]["message"].as_str().unwrap_or_default();
    (code, said.to_string())
}

fn access_reviews(c: &Cluster) -> usize {
    c.sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("subjectaccessreviews"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apis_answer_only_what_the_api_server_allows_the_caller() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    for (ns, name) in [("a", "cm-a"), ("b", "cm-b")] {
        c.sim
            .create(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}}),
            )
            .await
            .expect("create configmap");
    }
    c.sim.add_token("reader-token", "reader", &["readers"]);
    c.sim
        .allow("reader", &["list", "get"], "", "configmaps", Some("a"));
    c.sim.add_token("admin-token", "ops", &["ops"]);
    c.sim.allow(
        "ops",
        &["list", "get", "create", "delete"],
        "herald.io",
        "watches",
        None,
    );
    let config = c.config_with_api(
        "watch:\n  - {version: v1, kind: ConfigMap}\n  - {version: v1, kind: Secret}\nsinks:\n  - {name: out, type: log}\n",
        "authCacheTTL: 1s",
    );
    let _herald = HeraldProcess::run(BIN, &config);
    // Probes and metrics: their own port, no token.
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let (code, _) = http_get(&c.probe("/metrics")).await.expect("metrics");
    assert_eq!(code, 200, "/metrics needs no token");

    let list_a = c.api("/api/v1/resources/core/v1/configmaps?namespace=a");
    let list_b = c.api("/api/v1/resources/core/v1/configmaps?namespace=b");
    // No credentials: 401 saying what to send.
    let (code, said) = get_as(&list_a, None).await;
    assert_eq!(code, 401, "{said}");
    assert!(said.contains("bearer token"), "{said}");
    // A token the API server does not know: 401.
    let (code, said) = get_as(&list_a, Some("forged")).await;
    assert_eq!(code, 401, "{said}");
    assert!(said.contains("does not accept this token"), "{said}");

    // Allowed in `a`: 200 with the object.
    let (code, body) = http_send_as("GET", &list_a, None, Some("reader-token"))
        .await
        .expect("list a");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"][0]["metadata"]["name"], "cm-a");
    let (code, _) = get_as(
        &c.api("/api/v1/resources/core/v1/configmaps/a/cm-a"),
        Some("reader-token"),
    )
    .await;
    assert_eq!(code, 200);
    // Not in `b`, not across namespaces, not Secrets: 403 naming the permission.
    let (code, said) = get_as(&list_b, Some("reader-token")).await;
    assert_eq!(code, 403, "{said}");
    assert!(
        said.contains("\"reader\" cannot list configmaps in namespace \"b\""),
        "{said}"
    );
    let (code, _) = get_as(
        &c.api("/api/v1/resources/core/v1/configmaps/b/cm-b"),
        Some("reader-token"),
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = get_as(
        &c.api("/api/v1/resources/core/v1/configmaps"),
        Some("reader-token"),
    )
    .await;
    assert_eq!(
        code, 403,
        "a list of every namespace needs a cluster-wide right"
    );
    let (code, said) = get_as(
        &c.api("/api/v1/resources/core/v1/secrets?namespace=a"),
        Some("reader-token"),
    )
    .await;
    assert_eq!(code, 403, "{said}");
    assert!(said.contains("cannot list secrets"), "{said}");

    let (code, _) = get_as(&c.api("/metrics"), Some("reader-token")).await;
    assert_eq!(code, 404, "metrics are not on the API port");

    // A repeated query is answered from the cached decision: no review.
    let before = access_reviews(&c);
    for _ in 0..5 {
        assert_eq!(get_as(&list_a, Some("reader-token")).await.0, 200);
    }
    assert_eq!(access_reviews(&c), before, "cached decisions ask nothing");

    // The admin API: its own permission.
    let watch = json!({"version": "v1", "kind": "Pod"});
    let admin = c.api("/admin/v1/watches");
    let (code, body) = http_send_as("POST", &admin, Some(&watch), Some("reader-token"))
        .await
        .expect("post");
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot create watches.herald.io")),
        "{body}"
    );
    let (code, body) = http_send_as("GET", &admin, None, Some("admin-token"))
        .await
        .expect("list watches");
    assert_eq!(code, 200, "{body}");
    assert!(
        !body
            .as_array()
            .expect("watches")
            .iter()
            .any(|w| w["spec"]["kind"] == "Pod"),
        "a refused POST added no watch: {body}"
    );
    let (code, body) = http_send_as("POST", &admin, Some(&watch), Some("admin-token"))
        .await
        .expect("post");
    assert_eq!(code, 201, "{body}");

    // Revoked: refused within the cache's TTL (1 s), not at once from the cache.
    c.sim.revoke("reader");
    let revoked = Instant::now();
    loop {
        let (code, _) = get_as(&list_a, Some("reader-token")).await;
        if code == 403 {
            break;
        }
        assert_eq!(code, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(3),
            "a revoked permission still works after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
