//! Running plugins as an operator sees them (issue 15, items 11, 15, 17): the
//! real binary, the simulator, loopback webhook receivers. Drop reasons
//! reach the log at info, sampled, and are counted per plugin and watch; a
//! route verdict naming a sink that does not exist is dead-lettered; a
//! plugin-directory change restarts only the chains whose files changed,
//! reports a broken file no watch uses, waits for a file still being
//! copied, and keeps the compiled cache to the current files.

use std::time::Duration;

use herald_e2e::logged::{LoggedHerald, metric, wait_metric};
use herald_e2e::receiver::{Receiver, Request};
use herald_e2e::{Cluster, wait_http_ok};
use herald_sim::fixtures;
use serde_json::{Value, json};

fn acknowledged(hook: &Receiver) -> Vec<Value> {
    hook.requests()
        .into_iter()
        .filter(Request::acknowledged)
        .map(|r| r.json())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_are_logged_at_info_sampled_and_counted_per_plugin_and_watch() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config(&format!(
        "cluster: d\nwatch:\n  - {{ version: v1, kind: ConfigMap, plugins: [web-only] }}\nplugins:\n  dir: {}\n  config:\n    web-only: {{ labels: {{ app: web }} }}\n  policy:\n    web-only: {{ file: label_filter.wasm }}\n",
        herald_e2e::plugin_dir().display()
    ));
    // `debug` is herald's own debug: no wasmtime, cranelift or rustls lines
    // come before (or between) what herald says.
    let herald = LoggedHerald::start_at(env!("CARGO_BIN_EXE_herald"), &config, "debug");
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    for i in 0..20 {
        c.sim
            .create(
                "configmaps",
                fixtures::config_map("shop", &format!("cm-{i:02}"), &[("k", "v")]),
            )
            .await
            .expect("create");
    }
    wait_metric(
        &c,
        "herald_plugin_drops_total",
        r#"plugin="web-only",watch="configmap.v1.core""#,
        20.0,
    )
    .await;
    let lines = herald.wait_line("dropped by plugin", 1).await;
    assert_eq!(lines[0]["level"], "INFO", "{}", lines[0]);
    assert_eq!(lines[0]["fields"]["plugin"], "web-only");
    assert_eq!(lines[0]["fields"]["watch"], "configmap.v1.core");
    assert_eq!(lines[0]["fields"]["object"], "shop/cm-00");
    assert_eq!(lines[0]["fields"]["reason"], "label app missing, want web");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        herald.lines("dropped by plugin").len(),
        1,
        "20 drops within seconds are one line, not 20"
    );
    assert_eq!(
        metric(
            &c,
            "herald_notifications_total",
            r#"watch="configmap.v1.core",fate="dropped""#
        )
        .await,
        Some(20.0)
    );
    let all = herald.all();
    assert!(
        all.iter().any(|l| l["level"] == "DEBUG"),
        "herald's own debug lines are there"
    );
    let foreign: Vec<&Value> = all
        .iter()
        .filter(|l| {
            l["level"] == "DEBUG"
                && !l["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("herald"))
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "debug lines of dependencies at HERALD_LOG=debug: {foreign:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_to_a_sink_that_does_not_exist_is_dead_lettered() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let hook = Receiver::ok().await;
    let dead = Receiver::ok().await;
    let config = c.config(&format!(
        "cluster: r\nwatch:\n  - {{ version: v1, kind: ConfigMap, plugins: [route] }}\nsinks:\n  - {{ name: hook, type: webhook, url: \"{}\" }}\n  - {{ name: dl, type: webhook, url: \"{}\" }}\ndeadLetter: dl\nplugins:\n  dir: {}\n",
        hook.url("/hook"),
        dead.url("/dl"),
        herald_e2e::plugin_dir().display()
    ));
    let herald = LoggedHerald::start(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let routed = |name: &str, to: &str| {
        let mut cm = fixtures::config_map("shop", name, &[("k", "v")]);
        cm["metadata"]["annotations"] = json!({ "herald.io/route": to });
        cm
    };
    c.sim
        .create("configmaps", routed("typo", "hok"))
        .await
        .expect("create");
    c.sim
        .create("configmaps", routed("both", "hook,nowhere"))
        .await
        .expect("create");
    c.sim
        .create("configmaps", routed("fine", "hook"))
        .await
        .expect("create");
    assert!(
        dead.wait_for(Duration::from_secs(10), |r| r.len() >= 2)
            .await,
        "the dead letter got {} notifications",
        dead.count()
    );
    assert!(
        hook.wait_for(Duration::from_secs(10), |r| r.len() >= 2)
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut names: Vec<(String, Value)> = acknowledged(&dead)
        .into_iter()
        .map(|n| (n["name"].as_str().unwrap_or_default().to_string(), n))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["both", "typo"]
    );
    assert_eq!(names[0].1["deadLetter"]["routes"], json!(["nowhere"]));
    assert_eq!(names[1].1["deadLetter"]["routes"], json!(["hok"]));
    assert!(
        names[1].1["deadLetter"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("names a sink that does not exist")),
        "{}",
        names[1].1
    );
    let mut delivered: Vec<String> = acknowledged(&hook)
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["both", "fine"], "existing routes still deliver");
    let errors = herald.lines("a route names a sink that does not exist");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["fields"]["dead_letter"], "dl");
}

/// Copies `from` over `to` the way `cp` may: in two writes, with a pause
/// longer than herald's debounce between them.
fn copy_in_two_writes(from: &std::path::Path, to: &std::path::Path) {
    use std::io::Write;
    let bytes = std::fs::read(from).expect("read");
    let mut f = std::fs::File::create(to).expect("create");
    f.write_all(&bytes[..bytes.len() / 2]).expect("write");
    f.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(400));
    f.write_all(&bytes[bytes.len() / 2..]).expect("write");
}

fn cached(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|e| {
            e.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_change_restarts_only_its_chains_and_is_reported_precisely() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let dir = c.dir.path().join("plugins");
    let cache = c.dir.path().join("cache");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(herald_e2e::wasm("diff"), dir.join("cms.wasm")).expect("copy");
    std::fs::copy(herald_e2e::wasm("diff"), dir.join("pods.wasm")).expect("copy");
    let config = c.config(&format!(
        "cluster: h\nwatch:\n  - {{ version: v1, kind: ConfigMap, plugins: [cms] }}\n  - {{ version: v1, kind: Pod, plugins: [pods] }}\nplugins:\n  dir: {}\n  cacheDir: {}\n",
        dir.display(),
        cache.display()
    ));
    let herald = LoggedHerald::start(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    assert_eq!(
        cached(&cache),
        1,
        "one compiled version for two identical files"
    );

    // A new version of the Pod watch's plugin: only that chain restarts.
    std::fs::copy(herald_e2e::wasm("route"), dir.join("pods.wasm")).expect("copy");
    let reloaded = herald
        .wait_line("plugins reloaded (only these watches' chains restarted)", 1)
        .await;
    assert_eq!(
        reloaded[0]["fields"]["watches"].as_str(),
        Some("[\"pod.v1.core\"]"),
        "{}",
        reloaded[0]
    );
    assert_eq!(cached(&cache), 2, "diff (cms) and route (pods)");

    // A broken file no watch uses is reported, not ignored.
    std::fs::write(dir.join("spare.wasm"), b"\0asm not really").expect("write");
    let spare = herald
        .wait_line(
            "plugin file changed; no watch uses it, and it would not load",
            1,
        )
        .await;
    assert_eq!(spare[0]["level"], "WARN");
    assert!(
        spare[0]["fields"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("spare.wasm")),
        "{}",
        spare[0]
    );
    assert_eq!(
        herald.lines("plugins reloaded").len(),
        1,
        "an unused file restarts nothing"
    );

    // A version copied in two writes: no error for the half-written file,
    // then the whole one loads.
    copy_in_two_writes(&herald_e2e::wasm("noise"), &dir.join("cms.wasm"));
    let reloaded = herald
        .wait_line("plugins reloaded (only these watches' chains restarted)", 2)
        .await;
    assert_eq!(
        reloaded[1]["fields"]["watches"].as_str(),
        Some("[\"configmap.v1.core\"]")
    );
    assert!(
        herald.lines("plugin reload rejected").is_empty(),
        "a file still being copied is not an error: {:?}",
        herald.lines("plugin reload rejected")
    );
    // The compiled cache holds the current versions only: noise (cms) and
    // route (pods); diff's went with its last file.
    assert_eq!(cached(&cache), 2);
    assert_eq!(
        metric(
            &c,
            "herald_reloads_total",
            r#"what="plugins",result="error""#
        )
        .await,
        None
    );

    // The chains work: a ConfigMap and a Pod are still notified.
    c.sim
        .create(
            "configmaps",
            fixtures::config_map("x", "after", &[("k", "v")]),
        )
        .await
        .expect("create");
    c.sim
        .create("pods", fixtures::pod("x", "after", &[("app", "web")]))
        .await
        .expect("create");
    wait_metric(
        &c,
        "herald_plugin_calls_total",
        r#"plugin="pods",watch="pod.v1.core""#,
        1.0,
    )
    .await;
    wait_metric(
        &c,
        "herald_plugin_calls_total",
        r#"plugin="cms",watch="configmap.v1.core""#,
        1.0,
    )
    .await;
}
