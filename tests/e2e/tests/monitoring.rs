//! `deploy/monitoring/`: the Grafana dashboard and the Prometheus alert
//! rules parse (their PromQL with a real PromQL parser), and every metric
//! and label they read is one a real herald serves on `/metrics` — herald
//! run against the simulator with watches, sinks, plugins (one suspended by
//! its breaker), dedup, leader election and a reload, so that every series
//! exists.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use herald_e2e::receiver::Receiver;
use herald_e2e::{Cluster, HeraldProcess, plugin_dir, wait_http_ok, workspace_root};
use promql_parser::parser::{Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

fn read(path: &str) -> String {
    let p = workspace_root().join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Each query of the dashboard (panels, rows' panels, variables), as
/// (where, PromQL).
fn dashboard_queries() -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&read("deploy/monitoring/herald-dashboard.json"))
        .expect("the dashboard is JSON");
    assert_eq!(d["uid"], "herald-overview");
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                assert!(!expr.is_empty(), "panel {title:?}: a target without expr");
                out.push((format!("panel {title:?}"), expr.to_string()));
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"].as_str().unwrap_or_default();
        // label_values(METRIC, LABEL): a selector and a label it must have.
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: not label_values(…): {q}", v["name"]));
        let (metric, label) = inner.split_once(',').expect("label_values(metric, label)");
        out.push((
            format!("variable {}", v["name"]),
            format!("{}{{{}!=\"\"}}", metric.trim(), label.trim()),
        ));
    }
    assert!(
        out.len() > 20,
        "the dashboard has its panels: {}",
        out.len()
    );
    out
}

/// Each alert's expression, as (alert, PromQL); every rule is complete.
fn rule_queries() -> Vec<(String, String)> {
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("deploy/monitoring/herald-alerts.yaml"))
            .expect("the rules are YAML");
    let rules: Value = serde_json::to_value(rules).expect("as JSON");
    let mut out = Vec::new();
    for g in rules["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            let alert = r["alert"]
                .as_str()
                .expect("every rule is an alert")
                .to_string();
            assert!(
                ["critical", "warning", "info"]
                    .contains(&r["labels"]["severity"].as_str().unwrap_or_default()),
                "{alert}: severity"
            );
            assert!(r["annotations"]["summary"].is_string(), "{alert}: summary");
            if let Some(f) = r["for"].as_str() {
                humantime::parse_duration(f).unwrap_or_else(|e| panic!("{alert}: for {f}: {e}"));
            }
            out.push((alert, r["expr"].as_str().expect("expr").to_string()));
        }
    }
    out
}

/// The selectors of a query: metric name and the labels it matches on.
struct Selectors(Vec<(String, BTreeSet<String>)>);

impl Selectors {
    fn add(&mut self, vs: &VectorSelector) {
        let name = vs.name.clone().unwrap_or_default();
        let labels = vs
            .matchers
            .matchers
            .iter()
            .map(|m| m.name.clone())
            .collect();
        self.0.push((name, labels));
    }
}

impl ExprVisitor for Selectors {
    type Error = ();
    fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
        match e {
            Expr::VectorSelector(vs) => self.add(vs),
            Expr::MatrixSelector(ms) => self.add(&ms.vs),
            _ => {}
        }
        Ok(true)
    }
}

/// Metric and label names each query reads, parsed by a PromQL parser
/// (Grafana's `$__rate_interval` stands for a duration).
fn selectors(queries: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (at, q) in queries {
        let text = q.replace("$__rate_interval", "5m");
        let expr = promql_parser::parser::parse(&text).unwrap_or_else(|e| panic!("{at}: {q}: {e}"));
        let mut s = Selectors(Vec::new());
        let _ = walk_expr(&mut s, &expr);
        assert!(!s.0.is_empty(), "{at}: reads no metric: {q}");
        for (name, labels) in s.0 {
            assert!(name.starts_with("herald_"), "{at}: {name} is not herald's");
            wanted.entry(name).or_default().extend(labels);
        }
    }
    wanted
}

/// Sample name → the label names its series carry, from the exposition.
fn served(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_string()).or_default();
        if let Some(rest) = line[end..].strip_prefix('{') {
            for pair in rest.split("\",") {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string());
                }
            }
        }
    }
    out
}

/// What is missing from `/metrics`, as lines.
fn missing(
    wanted: &BTreeMap<String, BTreeSet<String>>,
    have: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, labels) in wanted {
        match have.get(name) {
            None => out.push(format!("{name}: not served")),
            Some(got) => {
                for l in labels.difference(got) {
                    out.push(format!("{name}: no label {l}"));
                }
            }
        }
    }
    out
}

#[test]
fn the_chart_carries_the_same_dashboard_and_rules() {
    for f in ["herald-dashboard.json", "herald-alerts.yaml"] {
        assert_eq!(
            read(&format!("deploy/monitoring/{f}")),
            read(&format!("deploy/helm/herald/files/{f}")),
            "deploy/helm/herald/files/{f} is a copy of deploy/monitoring/{f}: copy it again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_read_is_served() {
    let mut queries = dashboard_queries();
    let alerts = rule_queries();
    let names: BTreeSet<&str> = alerts.iter().map(|(a, _)| a.as_str()).collect();
    for want in [
        "HeraldWatchNotReady",
        "HeraldWatchSilent",
        "HeraldSinkDisabled",
        "HeraldSinkDeadLettering",
        "HeraldSinkQueueNearlyFull",
        "HeraldPluginSuspended",
        "HeraldLeaderFlapping",
    ] {
        assert!(names.contains(want), "no {want} alert: {names:?}");
    }
    queries.extend(alerts);
    let wanted = selectors(&queries);

    let c = Cluster::start(Duration::from_millis(200)).await;
    let hook = Receiver::ok().await;
    let body = |filter: &str| {
        format!(
            "cluster: mon
watch:
  - {{ version: v1, kind: ConfigMap, plugins: [crash, filter] }}
plugins:
  dir: {dir}
  config:
    crash: {{ mode: panic }}
    filter: {filter}
  policy:
    crash: {{ file: hostile_plugin.wasm, onError: pass }}
  breaker: {{ failures: 1, backoff: 1m, maxBackoff: 2m }}
sinks:
  - {{ name: hook, type: webhook, url: \"{url}\" }}
dedup: {{ exclude: [/metadata/annotations/tick] }}
ha:
  enabled: true
  leaseName: herald-mon
  leaseNamespace: default
  leaseDuration: 3s
  grace: 1s
",
            dir = plugin_dir().display(),
            url = hook.url("/")
        )
    };
    let config = c.config(&body("{}"));
    let _herald = HeraldProcess::run_with_env(
        env!("CARGO_BIN_EXE_herald"),
        &config,
        &[("POD_NAME", "mon-0"), ("HERALD_LOG", "off")],
    );
    assert!(wait_http_ok(&c.probe("/readyz")).await, "never ready");
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c1", "namespace": "default"}, "data": {"k": "1"}});
    let mut reloaded = false;
    let mut last = Vec::new();
    for i in 0..200u32 {
        // A change every half second, until one is delivered with the
        // leader (the first may come before it leads).
        if i.is_multiple_of(10) {
            if i == 0 {
                c.sim
                    .create("configmaps", cm.clone())
                    .await
                    .expect("create");
            } else {
                // Every other one changes only an excluded field: a
                // duplicate for dedup.
                let patch = if i.is_multiple_of(20) {
                    serde_json::json!({"data": {"k": i.to_string()}})
                } else {
                    serde_json::json!({"metadata": {"annotations": {"tick": i.to_string()}}})
                };
                c.sim
                    .patch_merge("configmaps", "default", "c1", patch)
                    .await
                    .expect("patch");
            }
        }
        if !reloaded && hook.count() > 0 {
            // A valid new config: a reload.
            c.config(&body("{ changes: [added, modified, deleted] }"));
            reloaded = true;
        }
        let text = metrics_text(&c).await;
        last = missing(&wanted, &served(&text));
        if last.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last.is_empty(),
        "read by the dashboard or the alerts but not served: {last:#?}"
    );
}

/// `/metrics` as text.
async fn metrics_text(c: &Cluster) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = c.probe("").trim_start_matches("http://").to_string();
    let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
        return String::new();
    };
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}
