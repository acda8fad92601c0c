//! `herald-load`: the load generator of `scripts/bench real` (BENCHMARKS.md, "Real API
//! server"). It is not herald and shares no code with it: it writes pods to an API
//! server — the real kube-apiserver or the simulator, through a kubeconfig — with
//! kube-rs over the server's own HTTP(S) API, as any other client would.
//!
//! The workload is the pipeline bench's: pods of the fixture size
//! ([`herald_sim::fixtures::pod`], ~6.6 KB, labels `app=seed`, `shard=0..9`), created,
//! then label updates (a merge patch of label `seq`, unique per update, so no update is
//! a no-op), then deletes (grace period 0, so no kubelet is needed), by several
//! writers at once, optionally paced to a total write rate.
//!
//! ```text
//! herald-load --kubeconfig KC --namespace bench --pods 1000 --updates 5000 \
//!             --writers 4 [--rate 200] --log writes.tsv
//! ```
//!
//! `--log` gets one line per write: `resourceVersion<TAB>unix-nanoseconds`, the time
//! taken just before the request was sent (so the bench can match it to the
//! notification of that resourceVersion). Standard output gets one summary line:
//! `writes N seconds S errors E`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Parser, Debug, Clone)]
#[command(name = "herald-load", version)]
struct Args {
    /// The API server to write to.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Namespace of the pods; created when missing.
    #[arg(long)]
    namespace: String,
    /// Pods to create (and, at the end, delete).
    #[arg(long, default_value_t = 1_000)]
    pods: usize,
    /// Label updates, spread over the pods in turn.
    #[arg(long, default_value_t = 5_000)]
    updates: usize,
    /// Writers (concurrent requests).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Total writes per second; 0: as fast as the server answers.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Where to write `resourceVersion<TAB>unix-ns` per write.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Field manager of the writes.
    #[arg(long, default_value = "herald-load")]
    manager: String,
}

#[derive(Clone, Copy)]
enum Op {
    Create,
    Update,
    Delete,
}

fn pods() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
    }
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn pod_name(i: usize) -> String {
    format!("pod-{i:05}")
}

/// One write; returns the resourceVersion the server gave it.
async fn write(api: &Api<DynamicObject>, args: &Args, op: Op, i: usize) -> Result<Option<String>> {
    let rv = match op {
        Op::Create => {
            let shard = (i % 10).to_string();
            let p = herald_sim::fixtures::pod(
                &args.namespace,
                &pod_name(i),
                &[("app", "seed"), ("shard", &shard)],
            );
            let o: DynamicObject = serde_json::from_value(p).context("fixture pod")?;
            let pp = PostParams {
                field_manager: Some(args.manager.clone()),
                ..PostParams::default()
            };
            api.create(&pp, &o)
                .await
                .with_context(|| format!("create {}", pod_name(i)))?
                .metadata
                .resource_version
        }
        Op::Update => {
            let name = pod_name(i % args.pods);
            let patch = json!({"metadata": {"labels": {"seq": i.to_string()}}});
            let pp = PatchParams {
                field_manager: Some(args.manager.clone()),
                ..PatchParams::default()
            };
            api.patch(&name, &pp, &Patch::Merge(patch))
                .await
                .with_context(|| format!("update {name}"))?
                .metadata
                .resource_version
        }
        Op::Delete => {
            let name = pod_name(i);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            // The deleted object (a Status when the server has none to give).
            api.delete(&name, &dp)
                .await
                .with_context(|| format!("delete {name}"))?
                .left()
                .and_then(|o| o.metadata.resource_version)
        }
    };
    Ok(rv)
}

/// Runs `n` writes of `op` on `writers` tasks, each write `i` not before
/// `start + i / rate` (start: the phase's); appends `(rv, unix-ns)` to `log`.
async fn phase(
    api: &Api<DynamicObject>,
    args: &Arc<Args>,
    op: Op,
    n: usize,
    log: &Arc<Mutex<Vec<(String, u128)>>>,
) -> Result<usize> {
    let start = tokio::time::Instant::now();
    let writers = args.writers.max(1);
    let tasks = (0..writers).map(|w| {
        let api = api.clone();
        let args = args.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let mut errors = 0usize;
            let mut mine = Vec::new();
            for i in (w..n).step_by(writers) {
                if args.rate > 0.0 {
                    let at = Duration::from_secs_f64(i as f64 / args.rate);
                    tokio::time::sleep_until(start + at).await;
                }
                let t = unix_ns();
                match write(&api, &args, op, i).await {
                    Ok(Some(rv)) => mine.push((rv, t)),
                    Ok(None) => {}
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("herald-load: {e:#}");
                        }
                    }
                }
            }
            log.lock().await.extend(mine);
            errors
        })
    });
    let mut errors = 0;
    for r in futures::future::join_all(tasks).await {
        errors += r.context("writer task")?;
    }
    Ok(errors)
}

async fn client(path: &std::path::Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("client")
}

/// Creates the namespace unless it exists.
async fn namespace(client: &kube::Client, name: &str) -> Result<()> {
    let ar = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Namespace".into(),
        plural: "namespaces".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let o: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )?;
    match api.create(&PostParams::default(), &o).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("create namespace {name}")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    if args.pods == 0 {
        bail!("--pods must be at least 1");
    }
    let client = client(&args.kubeconfig).await?;
    namespace(&client, &args.namespace).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client, &args.namespace, &pods());
    let log = Arc::new(Mutex::new(Vec::with_capacity(2 * args.pods + args.updates)));
    let t = Instant::now();
    let mut errors = phase(&api, &args, Op::Create, args.pods, &log).await?;
    errors += phase(&api, &args, Op::Update, args.updates, &log).await?;
    errors += phase(&api, &args, Op::Delete, args.pods, &log).await?;
    let secs = t.elapsed().as_secs_f64();
    let log = log.lock().await;
    if let Some(path) = &args.log {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
        );
        for (rv, t) in log.iter() {
            writeln!(f, "{rv}\t{t}")?;
        }
        f.flush()?;
    }
    println!("writes {} seconds {secs:.3} errors {errors}", log.len());
    Ok(())
}
