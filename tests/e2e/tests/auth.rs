//! Issue 14's acceptance for the APIs: the query and admin APIs answer only
//! what the API server would allow the caller (delegated TokenReview and
//! SubjectAccessReview, against the simulator's rules), decisions are
//! cached for `authCacheTTL`, and metrics and probes need no token on their
//! own listener. The real `herald run` over loopback.

use std::time::{Duration, Instant};

use herald_e2e::{Cluster, HeraldProcess, certs, http_get, http_send_as, wait_http_ok};
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

fn https_client(dir: &std::path::Path, ca: &str, identity: Option<&str>) -> reqwest::Client {
    let pem = |f: String| std::fs::read(dir.join(f)).expect("pem");
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&pem(format!("{ca}.crt"))).expect("ca"),
        )
        .pool_max_idle_per_host(0);
    if let Some(name) = identity {
        let mut both = pem(format!("{name}.crt"));
        both.extend(pem(format!("{name}.key")));
        b = b.identity(reqwest::Identity::from_pem(&both).expect("identity"));
    }
    b.build().expect("client")
}

/// HTTPS with a client CA: a client certificate (CN user, O groups) is a
/// caller like a token's; the server certificate is replaced on disk and
/// served from the next handshake on, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_client_certificates_and_reloads_the_server_certificate() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    c.sim
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cm-a", "namespace": "a"}}),
        )
        .await
        .expect("create");
    c.sim
        .allow("cert-user", &["list"], "", "configmaps", Some("a"));
    let dir = c.dir.path().join("tls");
    std::fs::create_dir_all(&dir).expect("tls dir");
    let server_ext = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
    certs::issue(&dir, "ca", "server", "/CN=herald", server_ext);
    certs::issue(
        &dir,
        "ca",
        "client",
        "/CN=cert-user/O=readers",
        "extendedKeyUsage=clientAuth\n",
    );
    let config = c.config_with_api(
        "watch:\n  - {version: v1, kind: ConfigMap}\n",
        &format!(
            "tls: {{certFile: {d}/server.crt, keyFile: {d}/server.key, clientCAFile: {d}/ca.crt}}",
            d = dir.display()
        ),
    );
    let _herald = HeraldProcess::run(BIN, &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let url = format!(
        "https://127.0.0.1:{}/api/v1/resources/core/v1/configmaps?namespace=a",
        c.api_port
    );

    let with_cert = https_client(&dir, "ca", Some("client"));
    let resp = with_cert
        .get(&url)
        .send()
        .await
        .expect("https with a client certificate");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    assert_eq!(body["items"][0]["metadata"]["name"], "cm-a");
    let b_url = url.replace("namespace=a", "namespace=b");
    let resp = with_cert.get(&b_url).send().await.expect("https");
    assert_eq!(
        resp.status(),
        403,
        "the certificate's user has no rights in b"
    );
    let anonymous = https_client(&dir, "ca", None);
    let resp = anonymous
        .get(&url)
        .send()
        .await
        .expect("https without credentials");
    assert_eq!(resp.status(), 401);
    assert!(
        http_get(&url.replace("https", "http"))
            .await
            .map(|r| r.0)
            .unwrap_or(0)
            != 200,
        "plain HTTP to the HTTPS port gets no answer"
    );

    // A new certificate from another CA: clients that trust only it connect
    // once herald has read the new files (checked at most every second).
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).expect("dir");
    certs::issue(&fresh, "ca2", "server", "/CN=herald-renewed", server_ext);
    for f in ["server.key", "server.crt"] {
        let tmp = dir.join(format!("{f}.tmp"));
        std::fs::copy(fresh.join(f), &tmp).expect("copy");
        std::fs::rename(&tmp, dir.join(f)).expect("swap");
    }
    let trusts_new = https_client(&fresh, "ca2", None);
    let swapped = Instant::now();
    loop {
        match trusts_new.get(&url).send().await {
            Ok(r) => {
                assert_eq!(r.status(), 401, "served with the renewed certificate");
                break;
            }
            Err(e) => assert!(
                swapped.elapsed() < Duration::from_secs(5),
                "the renewed certificate is not served after 5 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The listener's limits: a client that sends its headers too slowly is
/// cut off, an admin body over `maxBody` is a 413, a list's `limit` is
/// capped at `maxListLimit` (the rest follows a continue token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_cuts_slow_clients_and_caps_bodies_and_pages() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = Cluster::start(Duration::from_millis(200)).await;
    for i in 0..5 {
        c.sim
            .create(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": format!("cm-{i}"), "namespace": "a"}}),
            )
            .await
            .expect("create");
    }
    let config = c.config_with_api(
        "watch:\n  - {version: v1, kind: ConfigMap}\n",
        "auth: none\nlimits: {headerTimeout: 500ms, maxBody: 1KiB, maxListLimit: 2}",
    );
    let _herald = HeraldProcess::run(BIN, &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");

    // Half a request line, then nothing: closed after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", c.api_port))
        .await
        .expect("connect");
    slow.write_all(b"GET /api/v1/resources HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a slow client kept its connection for 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut after {:?}",
        started.elapsed()
    );

    let big = json!({"version": "v1", "kind": "Pod", "labelSelector": "x".repeat(4096)});
    let (code, body) = http_send_as("POST", &c.api("/admin/v1/watches"), Some(&big), None)
        .await
        .expect("post");
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["error"]["reason"], "RequestEntityTooLarge", "{body}");

    let (code, page) =
        http_get(&c.api("/api/v1/resources/core/v1/configmaps?namespace=a&limit=1000"))
            .await
            .expect("list");
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    assert!(page["metadata"]["continue"].is_string(), "{page}");
    let (code, body) =
        http_get(&c.api("/api/v1/resources/core/v1/configmaps?namespace=a&resourceVersion=0"))
            .await
            .expect("list");
    assert_eq!(code, 400, "an unknown parameter is named: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("resourceVersion")),
        "{body}"
    );
}
