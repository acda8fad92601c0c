//! `herald demo`, the README's first command, run as the real binary: the
//! notifications go through the real sinks to the demo's loopback receivers,
//! which print what they got.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_demo_shows_each_sink_receiving_what_its_route_says() {
    let plugins = herald_e2e::wasm("prune");
    let dir = plugins.parent().expect("plugin dir");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["demo", "--step", "20ms", "--plugins"])
        .arg(dir)
        .output()
        .expect("run herald demo");
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "the demo took {took:?}:\n{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |prefix: &str, part: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(part))
    };
    let show = || format!("\n{stdout}\n{stderr}");

    // Slack (Deployments): one message per change, the rollout's with the
    // image change in its diff.
    assert!(
        has("slack      ← ", "\"Deployment shop/web added\""),
        "{}",
        show()
    );
    let rollout = lines
        .iter()
        .position(|l| l.starts_with("slack      ← \"Deployment shop/web modified\""))
        .unwrap_or_else(|| panic!("no Slack message for the rollout:{}", show()));
    assert!(
        lines[rollout..].iter().take(6).any(|l| l
            .contains("~ /spec/template/spec/containers/0/image: \"nginx:1.27\" → \"nginx:1.28\"")),
        "the rollout's Slack message does not show the image change:{}",
        show()
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("slack") && l.contains("Pod")),
        "Pods are not routed to Slack:{}",
        show()
    );

    // The webhook (Deployments and Secrets): CloudEvents, every one signed.
    for (ty, subject) in [
        ("io.k8s.apps.deployment.added", "shop/web"),
        ("io.k8s.apps.deployment.modified", "shop/web"),
        ("io.k8s.core.secret.added", "shop/db-creds"),
        ("io.k8s.core.secret.modified", "shop/db-creds"),
    ] {
        assert!(
            has("webhook    ← ", &format!("{ty} {subject} id=msg_")),
            "no {ty} at the webhook:{}",
            show()
        );
    }
    // (The summary's lines start like a receiver's, without an event.)
    for l in lines
        .iter()
        .filter(|l| l.starts_with("webhook    ← ") && l.contains(" id=msg_"))
    {
        assert!(l.contains("signed v1 ✓"), "unverified: {l}{}", show());
        assert!(
            !l.contains("pod."),
            "Pods are not routed to the webhook: {l}"
        );
        if l.contains(".secret.") {
            assert!(l.contains("no Secret data"), "{l}{}", show());
        }
    }

    // The batch endpoint (Pods): the web Pods in requests of at most 5, the
    // cache Pod dropped by label_filter before any sink.
    let batched: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            l.starts_with("batch      ← ") && (l.contains(" item: ") || l.contains(" items: "))
        })
        .collect();
    assert!(!batched.is_empty(), "no batch:{}", show());
    for l in &batched {
        let n: usize = l["batch      ← ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no item count in {l}"));
        assert!((1..=5).contains(&n), "{n} items in one batch: {l}");
        assert!(l.contains(" Pod shop/"), "{l}");
    }
    let all = batched
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for pod in ["web-a1", "web-a2", "web-a3", "web-b1", "web-b2", "web-b3"] {
        assert!(
            all.contains(pod),
            "{pod} never reached the batch sink:{}",
            show()
        );
    }
    assert!(
        !all.contains("cache-0"),
        "the cache Pod reached a sink:{}",
        show()
    );
    assert!(
        has(
            "plugins    ✗ ",
            "added Pod shop/cache-0 dropped by label_filter: label app=cache, want web"
        ),
        "{}",
        show()
    );
    assert!(
        has(
            "plugins    ✗ ",
            "modified Deployment shop/web dropped by noise"
        ),
        "the status-only update is noise:{}",
        show()
    );

    // The summary counts what the receivers got, and nothing is left behind.
    for line in [
        "slack      ← 2 messages",
        "webhook    ← 4 CloudEvents, 4 with a valid signature",
        "batch      ← 10 notifications in ",
        "every queue drained: nothing left undelivered",
    ] {
        assert!(stdout.contains(line), "missing {line:?}:{}", show());
    }

    // The prune plugin keeps secret data out of every notification.
    for secret in ["aHVudGVyMg==", "czNjcjN0IQ==", "\"data\""] {
        assert!(!stdout.contains(secret), "{secret} leaked:{}", show());
    }
}
