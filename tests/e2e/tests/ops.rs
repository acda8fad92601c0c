//! Operations: metrics, hot reload, graceful shutdown, as the real binary
//! against the API-server simulator over loopback.

use std::io::{Read, Write};
use std::time::Duration;

use herald_e2e::{Cluster, HeraldProcess, plugin_dir, wait_http_ok};

/// GET `url` (plain HTTP on loopback) and return the status and body text.
fn get_text(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").expect("response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels as written, in order),
/// or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config(&format!(
        r#"
cluster: m
watch:
  - version: v1
    kind: ConfigMap
    plugins: [only-a]
plugins:
  dir: {dir}
  config:
    only-a: {{ labels: {{ app: a }} }}
  policy:
    only-a: {{ file: label_filter.wasm }}
"#,
        dir = plugin_dir().display()
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    assert!(wait_http_ok(&c.api("/readyz")).await, "never ready");
    let (code, before) = get_text(&c.api("/metrics"));
    assert_eq!(code, 200);
    assert!(
        before.contains("herald_watch_ready{watch=\"configmap.v1.core\"} 1"),
        "{before}"
    );
    assert!(
        before.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    for (name, app) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
        let mut cm = herald_sim::fixtures::config_map("default", name, &[("k", "v")]);
        cm["metadata"]["labels"] = serde_json::json!({ "app": app });
        c.sim.create("configmaps", cm).await.expect("create");
    }
    for _ in 0..2 {
        let n = herald.next();
        assert_eq!(n["change"], "added");
    }
    let w = "configmap.v1.core";
    let mut after = String::new();
    for _ in 0..50 {
        after = get_text(&c.api("/metrics")).1;
        if sample(
            &after,
            &format!("herald_sink_delivered_total{{sink=\"log\"}}"),
        ) >= 2.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = format!("herald_events_total{{watch=\"{w}\",change=\"added\"}}");
    assert_eq!(sample(&after, &events), 3.0, "{after}");
    assert_eq!(
        sample(
            &after,
            &format!("herald_notifications_total{{watch=\"{w}\",fate=\"delivered\"}}")
        ),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!("herald_notifications_total{{watch=\"{w}\",fate=\"dropped\"}}")
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "herald_sink_delivered_total{sink=\"log\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "herald_sink_queue_depth{sink=\"log\"}"),
        0.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, &format!("herald_watch_objects{{watch=\"{w}\"}}")),
        3.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, &format!("herald_watch_ready{{watch=\"{w}\"}}")),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!("herald_watch_lists_total{{watch=\"{w}\"}}")
        ),
        1.0,
        "{after}"
    );
    let calls = sample(
        &after,
        &format!("herald_plugin_calls_total{{plugin=\"only-a\",watch=\"{w}\"}}"),
    );
    assert_eq!(calls, 3.0, "{after}");
    let timed = sample(
        &after,
        &format!("herald_plugin_call_seconds_count{{plugin=\"only-a\",watch=\"{w}\"}}"),
    );
    assert_eq!(timed, 3.0, "{after}");
    let age = sample(
        &after,
        &format!("herald_last_event_age_seconds{{watch=\"{w}\"}}"),
    );
    assert!(age > 0.0 && age < 30.0, "{after}");
}
