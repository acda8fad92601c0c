//! `herald demo`: the whole flow with no cluster. Starts the API-server
//! simulator in-process, watches Deployments, Pods and Secrets through the
//! real source (kube-rs over loopback HTTP), runs each change through the
//! shipped plugins, and delivers the notifications through the real sinks
//! (Slack, a signed CloudEvents webhook, a batch endpoint) to loopback
//! receivers that print what they get, while a scripted workload rolls out a
//! Deployment, churns Pods and rotates a Secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::{Herald, Options, Tap};
use crate::pipeline::Outcome;
use crate::plugin::Fate;
use crate::source;

/// Arguments of `herald demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory holding the shipped plugins (`label_filter.wasm`,
    /// `noise.wasm`, `prune.wasm`).
    #[arg(long, default_value = "target/wasm32-wasip2/plugin")]
    pub plugins: PathBuf,
    /// Pause between workload steps.
    #[arg(long, default_value = "400ms", value_parser = humantime::parse_duration)]
    pub step: Duration,
}

/// The demo's config, as a user would write it. The demo fills in
/// `@RECEIVER@` (its loopback receivers' address) and `@DIR@` (a temporary
/// directory holding the Slack URL and the signing secret); the plugin
/// directory comes from `--plugins`.
const CONFIG: &str = r#"
cluster: demo
stateDir: "@DIR@/state"
drainTimeout: 10s
watch:
  - group: apps
    version: v1
    kind: Deployment
    plugins: [noise, prune]
    sinks: [slack, webhook]
  - version: v1
    kind: Pod
    plugins: [label_filter, prune]
    sinks: [batch]
  - version: v1
    kind: Secret
    plugins: [secret-prune]
    sinks: [webhook]
plugins:
  config:
    label_filter: { labels: { app: web } }
    prune: { remove: [/metadata/managedFields, /status] }
    secret-prune: { remove: [/data, /stringData, /metadata/managedFields] }
  policy:
    secret-prune: { file: prune.wasm }
sinks:
  - name: slack
    type: slack
    webhookUrl: { file: "@DIR@/slack-webhook-url" }
  - name: webhook
    type: webhook
    url: http://@RECEIVER@/webhook
    format: cloudevents
    mode: structured
    signing: { secrets: [ { file: "@DIR@/webhook-secret" } ] }
  - name: batch
    type: batch
    url: http://@RECEIVER@/batch
    maxObjects: 5
    interval: 1s
"#;

/// Width of the first column (`slack`, `webhook`, `plugins`, …).
const LABEL: usize = 10;
/// Diff lines of a Slack message shown before `… N more`.
const SLACK_LINES: usize = 4;
/// Oldest `webhook-timestamp` a receiver accepts, as Standard Webhooks advises.
const TOLERANCE: Duration = Duration::from_secs(300);

mod receivers;

use receivers::{Received, Receivers};

// === the pipeline's side ===

/// What the pipeline saw.
#[derive(Debug, Default)]
struct Tally {
    seen: usize,
    dropped: BTreeMap<String, usize>,
    dead_letters: usize,
}

/// Prints what the plugins dropped; what they pass, the receivers print.
fn print_outcome(o: &Outcome) {
    let who = format!(
        "{} {} {}/{}",
        o.change.as_str(),
        o.gvk.kind,
        o.namespace.as_deref().unwrap_or("-"),
        o.name
    );
    match &o.fate {
        Fate::Deliver { .. } => {}
        Fate::Dropped { plugin, reason } => {
            println!(
                "{:<LABEL$} ✗ {who} dropped by {plugin}: {reason}",
                "plugins"
            );
        }
        Fate::DeadLetter {
            sink,
            plugin,
            error,
        } => {
            println!(
                "{:<LABEL$} ! {who} to dead-letter sink {sink}: {plugin} failed: {error}",
                "plugins"
            );
        }
    }
}

// === the workload ===

fn deployment(image: &str, generation_hint: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                     "annotations": {"demo/revision": generation_hint.to_string()}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

fn pod(name: &str, app: &str, image: &str) -> Value {
    let mut p = herald_sim::fixtures::pod("shop", name, &[("app", app)]);
    if let Some(c) = p.pointer_mut("/spec/containers/0/image") {
        *c = json!(image);
    }
    p
}

async fn workload(sim: &herald_sim::Sim, step: Duration) -> Result<()> {
    let say = |s: &str| println!("\n# {s}");
    let pause = || tokio::time::sleep(step);
    say("create Deployment shop/web (nginx:1.27) and its Pods; a cache Pod too");
    sim.create("deployments", deployment("nginx:1.27", 1))
        .await?;
    pause().await;
    for i in 1..=3 {
        sim.create("pods", pod(&format!("web-a{i}"), "web", "nginx:1.27"))
            .await?;
    }
    sim.create("pods", pod("cache-0", "cache", "redis:7"))
        .await?;
    pause().await;

    say("status-only update of the Deployment (noise)");
    let mut d = sim.get("deployments", "shop", "web").await?;
    d["status"] = json!({"replicas": 3, "readyReplicas": 3});
    sim.update_status("deployments", d).await?;
    pause().await;

    say("roll out nginx:1.28: new image, Pods replaced one by one");
    let mut d = sim.get("deployments", "shop", "web").await?;
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    sim.update("deployments", d).await?;
    pause().await;
    for i in 1..=3 {
        sim.create("pods", pod(&format!("web-b{i}"), "web", "nginx:1.28"))
            .await?;
        sim.delete("pods", "shop", &format!("web-a{i}")).await?;
        pause().await;
    }

    say("Secret shop/db-creds created, then rotated (its data never leaves herald)");
    sim.create(
        "secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "db-creds", "namespace": "shop"},
               "data": {"password": "aHVudGVyMg=="}}),
    )
    .await?;
    pause().await;
    sim.patch_merge(
        "secrets",
        "shop",
        "db-creds",
        json!({"data": {"password": "czNjcjN0IQ=="}, "metadata": {"labels": {"rotated": "yes"}}}),
    )
    .await?;
    pause().await;

    say("cache Pod churns (filtered out), a web Pod is deleted");
    sim.delete("pods", "shop", "cache-0").await?;
    sim.delete("pods", "shop", "web-b3").await?;
    pause().await;
    Ok(())
}

// === the demo ===

/// Runs the demo to the end of its workload, then drains the sinks.
pub async fn run(args: &DemoArgs) -> Result<()> {
    let dir = tempfile::tempdir().context("temporary directory")?;

    // The receivers first: the config points the sinks at them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the demo's receivers on 127.0.0.1")?;
    let receiver = listener.local_addr()?;
    // A signing key for this run only; it never leaves the temporary
    // directory and this process (a real one comes from a random source).
    let key: Vec<u8> = Sha256::new()
        .chain_update(format!("{:?} {}", SystemTime::now(), std::process::id()))
        .finalize()
        .to_vec();
    let receivers = Arc::new(Receivers {
        key: key.clone(),
        got: Mutex::new(Received::default()),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, receivers.clone().router())
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    std::fs::write(
        dir.path().join("slack-webhook-url"),
        format!("http://{receiver}/services/T0DEMO/B0DEMO/demo"),
    )
    .context("writing the Slack webhook URL secret")?;
    std::fs::write(
        dir.path().join("webhook-secret"),
        format!("whsec_{}", STANDARD.encode(&key)),
    )
    .context("writing the webhook signing secret")?;

    let text = CONFIG
        .replace("@RECEIVER@", &receiver.to_string())
        .replace("@DIR@", &dir.path().display().to_string());
    let mut config = crate::app::parse_config(&text, Path::new("<demo config>"))?;
    config.plugins.dir = args.plugins.clone();
    let sim = herald_sim::Simulator::builder()
        .bookmark_interval(Duration::from_secs(5))
        .start()
        .await
        .context("starting the API-server simulator")?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    println!("API-server simulator on {}", sim.url());

    let tally = Arc::new(Mutex::new(Tally::default()));
    let t = tally.clone();
    let tap: Tap = Box::new(move |o: &Outcome| {
        print_outcome(o);
        let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
        t.seen += 1;
        match &o.fate {
            Fate::Deliver { .. } => {}
            Fate::Dropped { plugin, .. } => *t.dropped.entry(plugin.clone()).or_default() += 1,
            Fate::DeadLetter { .. } => t.dead_letters += 1,
        }
    });
    let kinds: Vec<String> = config.watch.iter().map(|w| w.kind.clone()).collect();
    let client = source::client(Some(&kubeconfig)).await?;
    // The same herald `herald run` starts: dedup, a state dir, metrics.
    let herald = Herald::start(
        config,
        client,
        Options {
            tap: Some(tap),
            ..Options::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "starting herald with the demo plugins from {} (build them with scripts/build-plugins)",
            args.plugins.display()
        )
    })?;
    anyhow::ensure!(
        tokio::time::timeout(Duration::from_secs(20), herald.sources().until_ready(None))
            .await
            .is_ok(),
        "watches did not sync within 20s"
    );
    println!("watching, with plugin chains:");
    println!("  Deployment  noise → prune(status, managedFields)  → slack, webhook");
    println!("  Pod         label_filter(app=web) → prune          → batch");
    println!("  Secret      prune(data)                            → webhook");
    println!("sinks, each delivering to a receiver on {receiver} that prints what it gets:");
    println!("  slack    Block Kit messages to an Incoming Webhook (URL from a secret file)");
    println!(
        "  webhook  CloudEvents, signed (Standard Webhooks); the receiver checks the signature"
    );
    println!("  batch    up to 5 notifications a request, at least every second");

    workload(&sim, args.step).await?;
    // Every write of a watched kind is one watch event (the simulator's own
    // Namespaces are not watched). Let the last ones through; stop waiting
    // early if the pipeline goes quiet.
    let writes = sim
        .change_log()
        .iter()
        .filter(|c| kinds.contains(&c.kind))
        .count();
    let seen = || tally.lock().unwrap_or_else(|p| p.into_inner()).seen;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    let (mut last, mut quiet_since) = (seen(), tokio::time::Instant::now());
    while seen() < writes && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if seen() != last {
            (last, quiet_since) = (seen(), tokio::time::Instant::now());
        } else if quiet_since.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    // Stopping the sources ends the pipeline; then the sinks drain.
    println!("\n# the end: the sources stop, every sink's queue drains");
    let undelivered = herald.shutdown().await.undelivered;
    let _ = stop_tx.send(());
    let _ = server.await;

    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    let got = std::mem::take(&mut *receivers.got.lock().unwrap_or_else(|p| p.into_inner()));
    let dropped: usize = tally.dropped.values().sum();
    let by: Vec<String> = tally
        .dropped
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    println!("\n# summary");
    println!(
        "{:<LABEL$}   {} changes ({writes} writes in the simulator), {dropped} dropped{}",
        "herald",
        tally.seen,
        if by.is_empty() {
            String::new()
        } else {
            format!(" by plugins ({})", by.join(", "))
        }
    );
    if tally.dead_letters > 0 {
        println!(
            "{:<LABEL$}   {} to a dead-letter sink",
            "", tally.dead_letters
        );
    }
    println!("{:<LABEL$} ← {} messages", "slack", got.slack);
    println!(
        "{:<LABEL$} ← {} CloudEvents, {} with a valid signature",
        "webhook", got.webhook, got.verified
    );
    println!(
        "{:<LABEL$} ← {} notifications in {} requests",
        "batch", got.batched, got.batches
    );
    if undelivered > 0 {
        bail!("{undelivered} notifications were not delivered within 10s");
    }
    if got.verified < got.webhook {
        bail!(
            "{} webhook requests had no valid signature",
            got.webhook - got.verified
        );
    }
    println!("every queue drained: nothing left undelivered");
    Ok(())
}
