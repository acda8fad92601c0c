//! The status page (`GET /` on the API listener, issue 18) in a real
//! headless Chromium started by the test: it loads, its figures are the
//! numbers `/metrics` shows, a new change appears in its tail of decisions
//! within a second, and the tail filters. Fails (does not skip) when
//! Chromium is missing: `.ci/run` installs Debian's `chromium`.

use std::time::{Duration, Instant};

use herald_e2e::browser::Browser;
use herald_e2e::receiver::Receiver;
use herald_e2e::{Cluster, HeraldProcess, plugin_dir, wait_http_ok};
use serde_json::Value;

/// GET `url`'s body as text.
async fn text(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET /{path} HTTP/1.0\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The value of the sample `key` (`name{labels}`) in a metrics text.
fn sample(metrics: &str, key: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_metrics_and_tails_new_decisions_in_chromium() {
    // First, so that a machine without Chromium fails at once, saying so.
    herald_e2e::browser::chromium();
    let c = Cluster::start(Duration::from_millis(200)).await;
    let hook = Receiver::ok().await;
    let config = c.config(&format!(
        r#"
cluster: page-test
watch:
  - version: v1
    kind: Pod
    namespaces: [shop]
    plugins: [web-only]
plugins:
  dir: {plugins}
  config:
    web-only: {{ labels: {{ app: web }} }}
  policy:
    web-only: {{ file: label_filter.wasm }}
sinks:
  - name: hook
    type: webhook
    url: {hook}
"#,
        plugins = plugin_dir().display(),
        hook = hook.url("/hook"),
    ));
    let _herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    // Ready: every watch's first list is done, so the pods are additions.
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );
    let sim = &c.sim;
    for (name, app) in [("web-1", "web"), ("db-1", "db")] {
        sim.create(
            "pods",
            herald_sim::fixtures::pod("shop", name, &[("app", app)]),
        )
        .await
        .expect("create");
    }
    // Quiet: the hook has acknowledged web-1 and herald has counted it.
    let delivered = r#"herald_sink_delivered_total{sink="hook"}"#;
    let mut settled = false;
    for _ in 0..200 {
        if sample(&text(&c.probe("/metrics")).await, delivered) == Some(1.0) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled, "web-1 was never delivered");

    let page_url = c.api("/");
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        let mut b = Browser::start();
        let page = b.open(&page_url);
        assert_eq!(b.eval(&page, "document.title"), "herald · page-test");
        // The tail's first poll shows both decisions.
        let rows = "document.querySelectorAll('#decisions tbody tr').length";
        assert!(
            b.wait_for(&page, Duration::from_secs(5), rows, |v| v == 2)
                .is_some(),
            "the tail never showed the two decisions"
        );

        // Every figure on the page is the number /metrics shows.
        let metrics = handle.block_on(text(&c.probe("/metrics")));
        let cells = b.eval(
            &page,
            "Array.from(document.querySelectorAll('[data-metric]'))\
             .map(e => [e.dataset.metric, Number(e.dataset.value), e.textContent])",
        );
        let cells = cells.as_array().cloned().unwrap_or_default();
        let keys: Vec<&str> = cells.iter().filter_map(|c| c[0].as_str()).collect();
        for want in [
            delivered,
            r#"herald_sink_queue_depth{sink="hook"}"#,
            r#"herald_sink_dead_lettered_total{sink="hook"}"#,
            r#"herald_watch_objects{watch="pod.v1.core"}"#,
            r#"herald_watch_ready{watch="pod.v1.core"}"#,
            r#"herald_watch_restarts_total{watch="pod.v1.core"}"#,
            r#"herald_plugin_calls_total{plugin="web-only",watch="pod.v1.core"}"#,
        ] {
            assert!(keys.contains(&want), "the page lacks {want}: {keys:?}");
        }
        for cell in &cells {
            let key = cell[0].as_str().unwrap_or_default();
            let shown = cell[1].as_f64().unwrap_or(f64::NAN);
            let scraped = sample(&metrics, key)
                .unwrap_or_else(|| panic!("{key} is on the page but not in /metrics"));
            if key.contains("age_seconds") {
                // Ages grow: the page was rendered before the scrape.
                assert!(shown <= scraped + 0.001, "{key}: {shown} > {scraped}");
            } else {
                assert_eq!(
                    shown, scraped,
                    "{key}: the page shows {shown}, /metrics {scraped}"
                );
            }
        }
        let shown = |key: &str| -> Value {
            cells
                .iter()
                .find(|c| c[0] == key)
                .map(|c| c[2].clone())
                .unwrap_or_default()
        };
        assert_eq!(shown(delivered), "1");
        assert_eq!(
            shown(r#"herald_plugin_calls_total{plugin="web-only",watch="pod.v1.core"}"#),
            "2"
        );
        assert_eq!(shown(r#"herald_watch_ready{watch="pod.v1.core"}"#), "yes");

        // A new change is in the tail within a second, with its verdict.
        handle
            .block_on(sim.create(
                "pods",
                herald_sim::fixtures::pod("shop", "web-3", &[("app", "web")]),
            ))
            .expect("create");
        let created = Instant::now();
        let newest = "(document.querySelector('#decisions tbody tr') || {}).textContent || ''";
        let row = b.wait_for(&page, Duration::from_secs(1), newest, |v| {
            v.as_str().is_some_and(|t| t.contains("shop/web-3"))
        });
        let took = created.elapsed();
        let row = row.unwrap_or_else(|| panic!("web-3 not in the tail after {took:?}"));
        eprintln!(
            "status page: {} figures as /metrics has them; web-3 in the tail {took:?} after its creation",
            cells.len()
        );
        let row = row.as_str().unwrap_or_default();
        assert!(row.contains("web-only: pass"), "{row}");
        assert!(row.contains("delivered"), "{row}");

        // The filter: only the dropped one.
        b.eval(
            &page,
            "(() => { const s = document.querySelector('#filter [name=fate]'); \
             s.value = 'dropped'; s.dispatchEvent(new Event('input', {bubbles: true})); })()",
        );
        let fates = "Array.from(document.querySelectorAll('#decisions tbody tr'))\
                     .map(r => r.dataset.fate + ' ' + r.textContent.includes('shop/db-1'))";
        let only = b.wait_for(&page, Duration::from_secs(3), fates, |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0] == "dropped true")
        });
        assert!(only.is_some(), "{}", b.eval(&page, fates));
    });
}
