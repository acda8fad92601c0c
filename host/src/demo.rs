//! `herald demo`: the whole flow with no cluster. Starts the API-server
//! simulator in-process, watches Deployments, Pods and Secrets through the
//! real source (kube-rs over loopback HTTP), runs each change through the
//! shipped plugins, and prints what a log sink would receive while a scripted
//! workload rolls out a Deployment, churns Pods and rotates a Secret.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::change::ChangeEvent;
use crate::pipeline::{self, Outcome};
use crate::plugin::{Fate, Runtime, RuntimeConfig};
use crate::source::{self, Sources};

/// Arguments of `herald demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory holding the shipped plugins (`label_filter.wasm`, `prune.wasm`).
    #[arg(long, default_value = "target/wasm32-wasip2/plugin")]
    pub plugins: PathBuf,
    /// Pause between workload steps.
    #[arg(long, default_value = "400ms", value_parser = humantime::parse_duration)]
    pub step: Duration,
}

/// The demo's config, as a user would write it (the plugin directory comes
/// from `--plugins`).
const CONFIG: &str = r#"
cluster: demo
watch:
  - { group: apps, version: v1, kind: Deployment, plugins: [prune] }
  - { version: v1, kind: Pod, plugins: [label_filter, prune] }
  - { version: v1, kind: Secret, plugins: [secret-prune] }
plugins:
  config:
    label_filter: { labels: { app: web } }
    prune: { remove: [/metadata/managedFields, /status] }
    secret-prune: { remove: [/data, /stringData, /metadata/managedFields] }
  policy:
    secret-prune: { file: prune.wasm }
"#;

/// What changed between two states, as JSON pointers, leaving out what the
/// chain pruned and bookkeeping fields.
fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    json_patch::diff(old, new)
        .iter()
        .map(|op| match op {
            json_patch::PatchOperation::Add(o) => o.path.to_string(),
            json_patch::PatchOperation::Remove(o) => o.path.to_string(),
            json_patch::PatchOperation::Replace(o) => o.path.to_string(),
            json_patch::PatchOperation::Move(o) => o.path.to_string(),
            json_patch::PatchOperation::Copy(o) => o.path.to_string(),
            json_patch::PatchOperation::Test(o) => o.path.to_string(),
        })
        .filter(|p| {
            !(p.starts_with("/status")
                || p.starts_with("/metadata/managedFields")
                || p.starts_with("/metadata/resourceVersion")
                || p.starts_with("/data")
                || p.starts_with("/stringData"))
        })
        .collect()
}

fn print_outcome(o: &Outcome) {
    let who = format!(
        "{} {}/{}",
        o.gvk.kind,
        o.namespace.as_deref().unwrap_or("-"),
        o.name
    );
    let change = o.change.as_str().to_uppercase();
    match &o.fate {
        Fate::Deliver { routes } => {
            let sinks = if routes.is_empty() {
                "log".to_string()
            } else {
                routes.join(",")
            };
            let detail = match &o.old {
                Some(old) if o.change == crate::change::ChangeType::Modified => {
                    let paths = changed_paths(old, &o.object);
                    if paths.is_empty() {
                        "changed: nothing a sink sees (status/bookkeeping only)".to_string()
                    } else {
                        format!("changed: {}", paths.join(", "))
                    }
                }
                _ => String::new(),
            };
            let line = json!({
                "sink": sinks,
                "change": o.change,
                "apiVersion": o.object.get("apiVersion"),
                "kind": o.gvk.kind,
                "namespace": o.namespace,
                "name": o.name,
                "keys": o.object.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
            });
            println!("→ {change:<8} {who:<36} {detail}");
            println!("    {line}");
        }
        Fate::Dropped { plugin, reason } => {
            println!("✗ {change:<8} {who:<36} dropped by {plugin}: {reason}");
        }
        Fate::DeadLetter {
            sink,
            plugin,
            error,
        } => {
            println!("! {change:<8} {who:<36} to dead-letter {sink}: {plugin} {error}");
        }
    }
}

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

/// Runs the demo to the end of its workload.
pub async fn run(args: &DemoArgs) -> Result<()> {
    let mut config = crate::run::parse_config(CONFIG, Path::new("<demo config>"))?;
    config.plugins.dir = args.plugins.clone();
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 16,
        ..RuntimeConfig::default()
    })?;
    let chains = config.chains(&runtime).with_context(|| {
        format!(
            "loading the demo plugins from {} (build them with scripts/build-plugins)",
            args.plugins.display()
        )
    })?;
    let sim = herald_sim::Simulator::builder()
        .bookmark_interval(Duration::from_secs(5))
        .start()
        .await
        .context("starting the API-server simulator")?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    println!(
        "API-server simulator on {} (kubeconfig {})",
        sim.url(),
        kubeconfig.display()
    );

    let client = source::client(Some(&kubeconfig)).await?;
    let (tx, rx) = mpsc::channel::<ChangeEvent>(1024);
    let sources = Sources::new(client, config.source.clone(), tx);
    for spec in &config.watch {
        sources.add(spec.clone()).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !sources.ready() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "watches did not sync within 20s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "watching Deployments, Pods and Secrets; plugins: Pod: label_filter(app=web) → prune; Deployment: prune; Secret: prune(data)"
    );

    let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
    let mut seen = 0;
    let pipeline = pipeline::spawn(rx, chains, move |o| {
        seen += 1;
        print_outcome(&o);
        let _ = done_tx.send(seen);
        ControlFlow::Continue(())
    })
    .context("starting the pipeline thread")?;

    workload(&sim, args.step).await?;
    let changes = sim.change_log().len();
    // Let the last events through, then stop the sources, which ends the pipeline.
    let mut seen = 0;
    let wait_until = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < wait_until {
        match done_rx.recv_timeout(Duration::from_millis(500)) {
            Ok(n) => seen = n,
            Err(_) => break,
        }
    }
    drop(sources);
    let _ = pipeline.join();
    println!(
        "\n{seen} changes reached herald's pipeline ({changes} writes in the simulator, including setup)."
    );
    Ok(())
}
