//! The real-apiserver tier: the `herald` binary against a real kube-apiserver
//! v1.28.7 with etcd (`../shared/k8s`), where the simulator could be kinder than
//! the real thing. Objects are written with kube-rs, as any client would.
//!
//! Most tests share one API server and work in namespaces (and API groups) of
//! their own; the tests that restart the API server start their own. Where a
//! scenario matters to herald's design it also runs against the simulator
//! (`*_on_both`), so the two are held to the same behaviour.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use herald_e2e::k8s::{self, RealApiServer};
use herald_e2e::{HeraldProcess, free_port, http_get, http_send_as, wait_http_ok};
use serde_json::{Value, json};

/// A name no other test (or earlier run on the same server) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch dir, a port for herald's API, and the kubeconfig herald uses.
struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    metrics_port: u16,
    kubeconfig: PathBuf,
}

impl Setup {
    fn new(kubeconfig: &Path) -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            metrics_port: free_port(),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    /// Writes `herald.yaml`: this kubeconfig and API address (no auth), then `body`.
    fn config(&self, body: &str) -> PathBuf {
        self.config_with_auth(body, "none")
    }

    /// As [`Setup::config`], with `api.auth: auth` (`authCacheTTL: 1s`).
    fn config_with_auth(&self, body: &str, auth: &str) -> PathBuf {
        let path = self.dir.path().join("herald.yaml");
        let text = format!(
            "kubeconfig: {}\napi:\n  listen: 127.0.0.1:{}\n  auth: {auth}\n  authCacheTTL: 1s\nmetrics:\n  listen: 127.0.0.1:{}\n{body}",
            self.kubeconfig.display(),
            self.port,
            self.metrics_port,
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `herald.yaml` with a state dir, watching the ConfigMaps of `ns`.
    fn state_dir_config(&self, ns: &str) -> PathBuf {
        self.config(&format!(
            "stateDir: {}\nwatch:\n  - {{version: v1, kind: ConfigMap, namespaces: [{ns}]}}\n",
            self.state_dir().display()
        ))
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn probe(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.metrics_port)
    }

    fn start(&self, config: &Path) -> HeraldProcess {
        HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), config)
    }

    async fn wait_ready(&self) {
        assert!(
            wait_http_ok(&self.probe("/healthz")).await,
            "herald's API never answered"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(&self.probe("/readyz"))
            .await
            .map(|(c, _)| c)
            .unwrap_or(0)
            != 200
        {
            assert!(Instant::now() < deadline, "herald not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first scope of the only watch, from the admin API.
    async fn scope(&self) -> Value {
        let (code, body) = http_get(&self.api("/admin/v1/watches"))
            .await
            .expect("admin API");
        assert_eq!(code, 200, "{body}");
        body[0]["scopes"][0].clone()
    }
}

/// `(change, name)` of a notification.
fn what(n: &Value) -> (String, String) {
    (
        n["change"].as_str().unwrap_or_default().to_string(),
        n["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// Notifications until one satisfies `last` (included); panics after 60 s.
fn until(herald: &HeraldProcess, last: impl Fn(&Value) -> bool) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = herald
            .next_within(left)
            .unwrap_or_else(|| panic!("no matching notification within 60 s; got {got:?}"));
        got.push(what(&n));
        if last(&n) {
            return got;
        }
    }
}

/// Notifications until every one of `want` has come (in any order: deletions
/// found by a restart's catch-up may follow new changes); then nothing more
/// for 2 s. Asserts that exactly `want` came.
fn exactly(herald: &HeraldProcess, want: &[(&str, &str)], why: &str) {
    let mut want: Vec<(String, String)> = want.iter().map(|(c, n)| pair(c, n)).collect();
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while !want.iter().all(|w| got.contains(w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match herald.next_within(left) {
            Some(n) => got.push(what(&n)),
            None => panic!("{why}: not all of {want:?} within 60 s; got {got:?}"),
        }
    }
    while let Some(n) = herald.next_within(Duration::from_secs(2)) {
        got.push(what(&n));
    }
    assert_eq!(sorted(got), want, "{why}");
}

fn is(change: &'static str, name: String) -> impl Fn(&Value) -> bool {
    move |n| n["change"] == change && n["name"] == name.as_str()
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

fn pair(change: &str, name: &str) -> (String, String) {
    (change.to_string(), name.to_string())
}

// === 1: a CRD created after start ===

/// A watch that starts after herald did (here: its CRD appears) reports its
/// first list: a custom resource created before discovery sees the type is
/// notified as added, not first as modified. The type going away makes the
/// watch wait again, and coming back notifies again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_created_after_start_reports_objects_made_before_discovery_saw_it() {
    let k8s = RealApiServer::shared();
    let client = k8s.client().await;
    let ns = unique("crd");
    k8s::namespace(&client, &ns).await;
    let group = format!("{ns}.herald.test");
    let setup = Setup::new(&k8s.kubeconfig);
    let config = setup.config(&format!(
        r#"
source: {{discoveryInterval: 3s}}
watch:
  - {{group: {group}, version: v1, kind: Widget, namespaces: [{ns}]}}
"#
    ));
    let herald = setup.start(&config);
    setup.wait_ready().await;

    k8s::create_crd(&client, &group, "Widget", "widgets").await;
    // At once: the next discovery run is up to 3 s away.
    let widgets = k8s::resource(&group, "v1", "Widget", "widgets");
    k8s::create(
        &client,
        &widgets,
        Some(&ns),
        json!({"metadata": {"name": "w1"}, "spec": {"size": 1}}),
    )
    .await;
    let got = until(&herald, |_| true);
    assert_eq!(got, [pair("added", "w1")], "first notification of w1");

    k8s::merge(
        &client,
        &widgets,
        Some(&ns),
        "w1",
        json!({"spec": {"size": 2}}),
    )
    .await;
    assert_eq!(until(&herald, |_| true), [pair("modified", "w1")]);

    // The CRD goes: its objects go with it; the watch waits for the type again.
    k8s::delete_crd(&client, &group, "widgets").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, watches) = http_get(&setup.api("/admin/v1/watches"))
            .await
            .expect("admin");
        if watches[0]["state"] == "pending" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watch never pending again: {watches}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And comes back: a new widget is news again, from the first list.
    k8s::create_crd(&client, &group, "Widget", "widgets").await;
    k8s::create(
        &client,
        &widgets,
        Some(&ns),
        json!({"metadata": {"name": "w2"}}),
    )
    .await;
    let got = until(&herald, is("added", "w2".into()));
    assert!(
        got.iter()
            .all(|(c, n)| n == "w1" && c == "deleted" || n == "w2"),
        "only w1's deletion may come first: {got:?}"
    );
}

// === 2: restart with a state dir and a silent first list ===

/// With a state dir and `initialList: silent`, a restart reports what changed
/// while herald was down (a modification, a deletion) and nothing about the
/// objects that were there at the first start and did not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_state_dir_reports_no_unchanged_object_as_added() {
    let k8s = RealApiServer::shared();
    let client = k8s.client().await;
    let ns = unique("restart");
    k8s::namespace(&client, &ns).await;
    let cms = k8s::configmaps();
    for name in ["a", "b", "c"] {
        k8s::create(&client, &cms, Some(&ns), k8s::configmap(name, "1")).await;
    }
    let setup = Setup::new(&k8s.kubeconfig);
    let config = setup.state_dir_config(&ns);
    let mut herald = setup.start(&config);
    setup.wait_ready().await;
    k8s::create(&client, &cms, Some(&ns), k8s::configmap("d", "1")).await;
    assert_eq!(until(&herald, |_| true), [pair("added", "d")]);
    let status = herald.terminate(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    // While herald is down.
    k8s::merge(&client, &cms, Some(&ns), "b", json!({"data": {"v": "2"}})).await;
    k8s::delete(&client, &cms, Some(&ns), "c").await;

    let herald = setup.start(&config);
    setup.wait_ready().await;
    k8s::create(&client, &cms, Some(&ns), k8s::configmap("e", "1")).await;
    exactly(
        &herald,
        &[("added", "e"), ("deleted", "c"), ("modified", "b")],
        "a and d did not change: nothing about them",
    );
}

// === 3: no RBAC rights ===

/// A watch whose list is forbidden retries with a backoff that grows across
/// attempts (kube's resets at every list attempt), and `/readyz` names the
/// watch and the API server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_list_backs_off_and_readyz_names_the_reason() {
    let k8s = RealApiServer::shared();
    forbidden_list_backs_off(&k8s.kubeconfig_limited(), "default").await;
}

/// The same against the simulator, with RBAC's 403 for the type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_list_backs_off_on_the_simulator_too() {
    let sim = herald_sim::Simulator::builder().start().await.expect("sim");
    sim.forbid("configmaps", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    forbidden_list_backs_off(&kubeconfig, "default").await;
}

async fn forbidden_list_backs_off(kubeconfig: &Path, ns: &str) {
    let setup = Setup::new(kubeconfig);
    let config = setup.config(&format!(
        r#"
source: {{backoff: {{min: 100ms, max: 1600ms}}}}
watch:
  - {{version: v1, kind: ConfigMap, namespaces: [{ns}]}}
"#
    ));
    let _herald = setup.start(&config);
    assert!(wait_http_ok(&setup.probe("/healthz")).await);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let scope = setup.scope().await;
    let errors = scope["errors"].as_u64().unwrap_or(0);
    // Delays 0.1, 0.2, 0.4, 0.8, 1.6, 1.6, … s: about 9 attempts in 8 s; a
    // backoff that starts over at every attempt makes about 80.
    assert!(
        (3..=13).contains(&errors),
        "{errors} failed lists in {:?}: {scope}",
        started.elapsed()
    );
    let (code, body) = http_get(&setup.probe("/readyz")).await.expect("readyz");
    assert_eq!(code, 503, "{body}");
    let reasons = body["reasons"].to_string();
    assert!(
        reasons.contains("configmap.v1.core")
            && reasons.contains("Forbidden (403)")
            && reasons.contains("cannot list resource \\\"configmaps\\\""),
        "{body}"
    );
}

// === 4: an API server restart ===

/// After an API server restart the resumed watch gets 410 (the new server's
/// watch cache starts at the current revision) and relists at once, not after
/// the backoff the outage grew; the change made right after the restart is
/// notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_apiserver_restart_herald_relists_at_once() {
    let k8s = RealApiServer::start().expect("own API server");
    let client = k8s.client().await;
    let ns = unique("relist");
    k8s::namespace(&client, &ns).await;
    let args = std::sync::Mutex::new(Vec::new());
    relists_at_once(
        &k8s.kubeconfig,
        &ns,
        || async {
            *args.lock().expect("lock") = k8s.stop_apiserver();
        },
        || async {
            let a = args.lock().expect("lock").clone();
            k8s.start_apiserver_again(&a);
        },
    )
    .await;
}

/// The same against the simulator, whose restart now drops its watch history
/// as a real API server's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_simulator_restart_herald_relists_at_once() {
    let sim = herald_sim::Simulator::builder().start().await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    relists_at_once(
        &kubeconfig,
        "default",
        || sim.stop(),
        || async {
            sim.compact();
            sim.resume().await.expect("resume");
        },
    )
    .await;
}

async fn relists_at_once<S, SF, R, RF>(kubeconfig: &Path, ns: &str, stop: S, restart: R)
where
    S: FnOnce() -> SF,
    SF: std::future::Future<Output = ()>,
    R: FnOnce() -> RF,
    RF: std::future::Future<Output = ()>,
{
    let client = k8s::client_for(kubeconfig).await;
    let cms = k8s::configmaps();
    k8s::create(&client, &cms, Some(ns), k8s::configmap("x", "1")).await;
    let setup = Setup::new(kubeconfig);
    let config = setup.config(&format!(
        r#"
source: {{backoff: {{min: 1s, max: 8s}}}}
watch:
  - {{version: v1, kind: ConfigMap, namespaces: [{ns}]}}
"#
    ));
    let herald = setup.start(&config);
    setup.wait_ready().await;
    k8s::create(&client, &cms, Some(ns), k8s::configmap("y", "1")).await;
    assert_eq!(until(&herald, |_| true), [pair("added", "y")]);
    let lists = setup.scope().await["lists"].as_u64().unwrap_or(0);

    // A write elsewhere moves the API server past herald's resourceVersion, as
    // a real cluster's constant writes do: after the restart herald's is older
    // than the new watch cache.
    k8s::create(
        &client,
        &cms,
        Some("kube-system"),
        k8s::configmap(&unique("elsewhere"), "1"),
    )
    .await;
    // Down long enough for the backoff to reach its 8 s cap.
    stop().await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    restart().await;
    let client = k8s::client_for(kubeconfig).await;
    k8s::merge(&client, &cms, Some(ns), "x", json!({"data": {"v": "2"}})).await;

    // The moment herald hears 410, and the moment it starts the relist.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut gone_at = None;
    let relisted_at = loop {
        let scope = setup.scope().await;
        let now = Instant::now();
        let err = scope["lastError"].as_str().unwrap_or_default();
        if gone_at.is_none() && err.contains("too old resource version") {
            gone_at = Some(now);
        }
        if scope["lists"].as_u64().unwrap_or(0) > lists {
            break now;
        }
        assert!(Instant::now() < deadline, "no relist within 60 s: {scope}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let gone_at = gone_at.unwrap_or(relisted_at);
    assert!(
        relisted_at.duration_since(gone_at) < Duration::from_millis(1500),
        "relisted {:?} after the 410",
        relisted_at.duration_since(gone_at)
    );
    assert_eq!(until(&herald, |_| true), [pair("modified", "x")]);
}

/// herald restarts with a state dir while changes happen and the API server
/// restarts too: resuming the stream from the checkpoint gets 410, the list
/// takes over, and the latest states are reported once, nothing unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_across_an_apiserver_restart_reports_the_latest_states() {
    let k8s = RealApiServer::start().expect("own API server");
    let client = k8s.client().await;
    let ns = unique("resume");
    k8s::namespace(&client, &ns).await;
    let cms = k8s::configmaps();
    for name in ["a", "b"] {
        k8s::create(&client, &cms, Some(&ns), k8s::configmap(name, "1")).await;
    }
    let setup = Setup::new(&k8s.kubeconfig);
    let config = setup.state_dir_config(&ns);
    let mut herald = setup.start(&config);
    setup.wait_ready().await;
    k8s::create(&client, &cms, Some(&ns), k8s::configmap("c", "1")).await;
    assert_eq!(until(&herald, |_| true), [pair("added", "c")]);
    assert!(herald.terminate(Duration::from_secs(30)).is_some());

    k8s::merge(&client, &cms, Some(&ns), "a", json!({"data": {"v": "2"}})).await;
    k8s::merge(&client, &cms, Some(&ns), "a", json!({"data": {"v": "3"}})).await;
    k8s::delete(&client, &cms, Some(&ns), "b").await;
    let args = k8s.stop_apiserver();
    k8s.start_apiserver_again(&args);
    let client = k8s.client().await;

    let herald = setup.start(&config);
    setup.wait_ready().await;
    k8s::create(&client, &cms, Some(&ns), k8s::configmap("d", "1")).await;
    exactly(
        &herald,
        &[("added", "d"), ("deleted", "b"), ("modified", "a")],
        "the history is gone with the restart: a's latest state once, c unchanged",
    );
}

// === auth and the query API ===

/// The same binary authenticates with a client certificate from the kubeconfig.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_kubeconfig_works() {
    let k8s = RealApiServer::shared();
    let client = k8s.client().await;
    let ns = unique("cert");
    k8s::namespace(&client, &ns).await;
    let setup = Setup::new(&k8s.kubeconfig_cert());
    let config = setup.config(&format!(
        "watch:\n  - {{version: v1, kind: ConfigMap, namespaces: [{ns}]}}\n"
    ));
    let herald = setup.start(&config);
    setup.wait_ready().await;
    k8s::create(
        &client,
        &k8s::configmaps(),
        Some(&ns),
        k8s::configmap("c1", "1"),
    )
    .await;
    assert_eq!(until(&herald, |_| true), [pair("added", "c1")]);
}

/// The query API answers what the API server answers: the same objects (names
/// and resourceVersions) for a namespace, a label selector and pages, and an
/// object's bytes as the API server's own GET gives them, listed or watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_answers_as_the_apiserver_does() {
    let k8s = RealApiServer::shared();
    let client = k8s.client().await;
    let ns = unique("query");
    k8s::namespace(&client, &ns).await;
    let cms = k8s::configmaps();
    for i in 0..7 {
        let tier = if i % 2 == 0 { "web" } else { "db" };
        k8s::create(
            &client,
            &cms,
            Some(&ns),
            json!({"metadata": {"name": format!("cm-{i}"), "labels": {"tier": tier}}, "data": {"i": i.to_string()}}),
        )
        .await;
    }
    let setup = Setup::new(&k8s.kubeconfig);
    let config = setup.config("watch:\n  - {version: v1, kind: ConfigMap}\n");
    let _herald = setup.start(&config);
    setup.wait_ready().await;

    let names_rvs = |items: &[Value]| {
        let mut v: Vec<(String, String)> = items
            .iter()
            .map(|o| {
                (
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let want_all = names_rvs(&k8s::list(&client, &cms, Some(&ns)).await);
    assert_eq!(want_all.len(), 7);
    let (code, got) = http_get(&setup.api(&format!(
        "/api/v1/resources/core/v1/configmaps?namespace={ns}"
    )))
    .await
    .expect("query");
    assert_eq!(code, 200, "{got}");
    assert_eq!(names_rvs(got["items"].as_array().expect("items")), want_all);

    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), &ns, &cms);
    let web: Vec<Value> = api
        .list(&kube::api::ListParams::default().labels("tier=web"))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect();
    let (_, got) = http_get(&setup.api(&format!(
        "/api/v1/resources/core/v1/configmaps?namespace={ns}&labelSelector=tier%3Dweb"
    )))
    .await
    .expect("query");
    assert_eq!(
        names_rvs(got["items"].as_array().expect("items")),
        names_rvs(&web)
    );

    // Pages of 3 add up to the whole list.
    let mut paged = Vec::new();
    let mut cont = String::new();
    loop {
        let (code, page) = http_get(&setup.api(&format!(
            "/api/v1/resources/core/v1/configmaps?namespace={ns}&limit=3&continue={cont}"
        )))
        .await
        .expect("page");
        assert_eq!(code, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        paged.extend(items.iter().cloned());
        match page["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    assert_eq!(names_rvs(&paged), want_all);

    // One object: the API server's own fields.
    let (code, one) =
        http_get(&setup.api(&format!("/api/v1/resources/core/v1/configmaps/{ns}/cm-3")))
            .await
            .expect("get");
    assert_eq!(code, 200, "{one}");
    let want: kube::api::DynamicObject = api.get("cm-3").await.expect("get");
    assert_eq!(one["data"], want.data["data"]);
    assert_eq!(
        one["metadata"]["uid"].as_str(),
        want.metadata.uid.as_deref()
    );

    // Byte for byte what the API server answers, for an object herald
    // listed (its list item came without `kind` and `apiVersion`) and for
    // one it was sent by its watch.
    k8s::create(
        &client,
        &cms,
        Some(&ns),
        json!({"metadata": {"name": "cm-late", "labels": {"tier": "web"}}, "data": {"i": "late"}}),
    )
    .await;
    for name in ["cm-3", "cm-late"] {
        let url = setup.api(&format!("/api/v1/resources/core/v1/configmaps/{ns}/{name}"));
        assert!(wait_http_ok(&url).await, "{name} in the cache");
        let (code, ours) = herald_e2e::http_get_bytes(&url).await.expect("get");
        assert_eq!(code, 200, "{name}: {}", String::from_utf8_lossy(&ours));
        let request = kube::core::Request::new(format!("/api/v1/namespaces/{ns}/configmaps"))
            .get(name, &kube::api::GetParams::default())
            .expect("request");
        let theirs = client.request_text(request).await.expect("get");
        assert_eq!(String::from_utf8_lossy(&ours), theirs.trim_end(), "{name}");
    }
}

// === issue 14: the API answers only what the API server allows ===

/// `GET url` as `token` until the status is `want`, for at most `within`.
async fn status_becomes(url: &str, token: Option<&str>, want: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = http_send_as("GET", url, None, token)
            .await
            .expect("request");
        if code == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: still {code}, not {want}, after {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With delegated auth against a real API server: static and ServiceAccount
/// tokens are reviewed by it, RBAC decides, a RoleBinding made or removed
/// takes effect within the cache TTL (1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_what_rbac_allows_the_caller() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::api::{Api, DeleteParams, PostParams};

    let k8s = RealApiServer::shared();
    let client = k8s.client().await;
    let (ns, other) = (unique("auth"), unique("auth-b"));
    for n in [&ns, &other] {
        k8s::namespace(&client, n).await;
        k8s::create(
            &client,
            &k8s::configmaps(),
            Some(n),
            k8s::configmap("cm", "v"),
        )
        .await;
    }
    // The API server's static token of user "limited" (no rights yet).
    let tokens = std::fs::read_to_string(k8s.dir.join("tokens.csv")).expect("tokens.csv");
    let limited = tokens
        .lines()
        .find(|l| l.contains(",limited,"))
        .and_then(|l| l.split(',').next())
        .expect("limited token")
        .to_string();
    let setup = Setup::new(&k8s.kubeconfig);
    let config = setup.config_with_auth(
        &format!("watch:\n  - {{version: v1, kind: ConfigMap, namespaces: [{ns}, {other}]}}\n"),
        "delegated",
    );
    let _herald = setup.start(&config);
    setup.wait_ready().await;
    let list = |n: &str| {
        setup.api(&format!(
            "/api/v1/resources/core/v1/configmaps?namespace={n}"
        ))
    };

    status_becomes(&list(&ns), None, 401, Duration::ZERO).await;
    status_becomes(&list(&ns), Some("not-a-token"), 401, Duration::ZERO).await;
    let body = status_becomes(&list(&ns), Some(&limited), 403, Duration::ZERO).await;
    let said = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("\"limited\" cannot list configmaps"),
        "{body}"
    );

    // RBAC grants list in `ns`: allowed there within the TTL, still not in `other`.
    let role = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("cm-reader".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding = |subject: Subject| RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("cm-reader-{}", subject.name.replace(':', "-"))),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "cm-reader".into(),
        },
        subjects: Some(vec![subject]),
    };
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), &ns);
    let limited_binding = binding(Subject {
        kind: "User".into(),
        name: "limited".into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    });
    bindings
        .create(&PostParams::default(), &limited_binding)
        .await
        .expect("rolebinding");
    let body = status_becomes(&list(&ns), Some(&limited), 200, Duration::from_secs(5)).await;
    assert_eq!(body["items"][0]["metadata"]["name"], "cm", "{body}");
    status_becomes(&list(&other), Some(&limited), 403, Duration::ZERO).await;
    let secrets = setup.api(&format!("/api/v1/resources/core/v1/secrets?namespace={ns}"));
    status_becomes(&secrets, Some(&limited), 403, Duration::ZERO).await;
    let admin = setup.api("/admin/v1/watches");
    let (code, body) = http_send_as(
        "POST",
        &admin,
        Some(&json!({"version": "v1", "kind": "Pod"})),
        Some(&limited),
    )
    .await
    .expect("post");
    assert_eq!(code, 403, "{body}");

    // A ServiceAccount's token (TokenRequest) is reviewed too.
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
    let sa = ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some("dashboard".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await.expect("sa");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sa_token = sas
        .create_token_request("dashboard", &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token")
        .token
        .expect("a token");
    let body = status_becomes(&list(&ns), Some(&sa_token), 403, Duration::ZERO).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("system:serviceaccount:{ns}:dashboard"))),
        "{body}"
    );
    bindings
        .create(
            &PostParams::default(),
            &binding(Subject {
                kind: "ServiceAccount".into(),
                name: "dashboard".into(),
                api_group: None,
                namespace: Some(ns.clone()),
            }),
        )
        .await
        .expect("sa rolebinding");
    status_becomes(&list(&ns), Some(&sa_token), 200, Duration::from_secs(5)).await;

    // Revoked: refused again within the TTL.
    bindings
        .delete("cm-reader-limited", &DeleteParams::default())
        .await
        .expect("delete rolebinding");
    status_becomes(&list(&ns), Some(&limited), 403, Duration::from_secs(5)).await;
}
