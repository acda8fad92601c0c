//! High availability: several replicas, one leader elected on a
//! `coordination.k8s.io` Lease through kube-lease-manager (chosen because it
//! is maintained, built on the same kube and k8s-openapi versions as herald,
//! and renews and releases the Lease for us; kube-leader-election pins an
//! older kube).
//!
//! Every replica watches, keeps its cache warm, serves the query API and runs
//! the plugins; only the leader hands notifications to the sinks. A standby
//! keeps the notifications of the last `replayWindow` changes. The leader
//! writes its *delivered watermark* on the Lease (annotation
//! `herald.io/delivered-rv`, JSON) every second and when it stops: per
//! stream (a watch, or a watch and one of its listed namespaces: the unit
//! within which the API server orders resourceVersions, and the key of its
//! checkpoint), the highest resourceVersion such that every
//! notification at or below it has been delivered or dead-lettered by every
//! sink. A replica that becomes leader reads the watermark and first hands
//! on the notifications it kept above it, in order.
//!
//! What a handover guarantees:
//! - graceful (the leader gets SIGTERM): it drains its sinks, writes the final
//!   watermark and releases the Lease; the next leader resumes exactly after
//!   it: nothing lost, nothing twice;
//! - crash (the leader is killed): the Lease expires after `leaseDuration`;
//!   the next leader resumes from the last watermark written (at most 1 s
//!   old), so nothing is lost and what the old leader delivered in its last
//!   second may be delivered again, with the same ids (`webhook-id`, `ce-id`)
//!   so receivers can drop it;
//! - a standby that was down or behind by more than `replayWindow` changes
//!   cannot replay what it never kept: it logs how many it dropped.
//!
//! resourceVersions are compared as integers, which holds for etcd-backed API
//! servers; a non-numeric one is always replayed (a duplicate rather than a loss).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use serde::Deserialize;
use serde_json::json;

use crate::pipeline::Deliver;

mod error;
mod gate;

pub(crate) use error::{ConfigError, Error, Result};
pub(crate) use gate::GateSender;
pub use gate::{Gate, Watermark};

/// The annotation holding the delivered watermark.
pub(crate) const WATERMARK: &str = "herald.io/delivered-rv";

/// The `ha:` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HaConfig {
    /// Turn leader election on. Default: false (one replica delivers).
    #[serde(default)]
    pub enabled: bool,
    /// The Lease's name. Default: `herald`
    #[serde(default = "default_lease")]
    pub lease_name: String,
    /// The Lease's namespace. Default: `POD_NAMESPACE`, else `default`.
    #[serde(default)]
    pub lease_namespace: Option<String>,
    /// This replica's identity. Default: `POD_NAME`, else host name and pid.
    #[serde(default)]
    pub identity: Option<String>,
    /// How long a Lease holds without renewal. Failover takes at most this. Default: 15s
    #[serde(default = "default_duration", with = "humantime_serde")]
    pub lease_duration: Duration,
    /// The holder renews this long before expiry. Default: 5s
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
    /// Notifications a standby keeps for replay. Default: 100000
    #[serde(default = "default_window")]
    pub replay_window: usize,
    /// Memory those may take (their objects as compact JSON); the oldest
    /// go first. Default: 64MiB
    #[serde(default = "default_replay_bytes")]
    pub replay_bytes: bytesize::ByteSize,
}

fn default_replay_bytes() -> bytesize::ByteSize {
    bytesize::ByteSize::mib(64)
}

fn default_lease() -> String {
    "herald".into()
}
fn default_duration() -> Duration {
    Duration::from_secs(15)
}
fn default_grace() -> Duration {
    Duration::from_secs(5)
}
fn default_window() -> usize {
    100_000
}

impl HaConfig {
    /// Checks durations and sizes.
    ///
    /// # Errors
    /// The first field that does not hold, named.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_duration.as_secs() < 2 {
            return Err(ConfigError::LeaseDuration);
        }
        if self.grace.as_secs() < 1 || self.grace >= self.lease_duration {
            return Err(ConfigError::Grace);
        }
        if self.replay_window == 0 {
            return Err(ConfigError::ReplayWindow);
        }
        if self.replay_bytes.as_u64() < 1024 * 1024 {
            return Err(ConfigError::ReplayBytes);
        }
        Ok(())
    }

    fn namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }

    fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "herald".into());
                format!("{host}-{}", std::process::id())
            })
    }
}

/// Whether this replica leads: a flag read on every notification (the
/// gate, metrics) and a watch channel for those that wait for a change.
#[derive(Clone)]
struct Leader {
    flag: Arc<AtomicBool>,
    changes: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Leader {
    /// Sets the flag; returns what it was.
    fn swap(&self, leading: bool) -> bool {
        let was = self.flag.swap(leading, Ordering::AcqRel);
        self.changes
            .send_if_modified(|v| std::mem::replace(v, leading) != leading);
        was
    }
}

/// A running election.
pub(crate) struct Election {
    leader: Leader,
    mark: Arc<Watermark>,
    api: Api<Lease>,
    name: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Option<LeaseManager>>,
    writer: tokio::task::JoinHandle<()>,
    resume_after: Arc<Mutex<BTreeMap<String, u64>>>,
    window: usize,
    budget: usize,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("lease", &self.name)
            .finish()
    }
}

async fn read_watermark(api: &Api<Lease>, name: &str) -> BTreeMap<String, u64> {
    match api.get_opt(name).await {
        Ok(Some(lease)) => lease
            .metadata
            .annotations
            .and_then(|a| a.get(WATERMARK).and_then(|v| serde_json::from_str(v).ok()))
            .unwrap_or_default(),
        Ok(None) => BTreeMap::new(),
        Err(e) => {
            tracing::error!("reading the delivered watermark: {e}; replaying everything kept");
            BTreeMap::new()
        }
    }
}

async fn write_watermark(
    api: &Api<Lease>,
    name: &str,
    value: &BTreeMap<String, u64>,
) -> Result<()> {
    let text = serde_json::to_string(value).expect("JSON");
    let patch = json!({"metadata": {"annotations": {WATERMARK: text}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::WriteWatermark {
            lease: name.to_string(),
            source,
        })?;
    Ok(())
}

impl Election {
    /// Joins the election on the Lease.
    ///
    /// # Errors
    /// The Lease cannot be read or created.
    pub(crate) async fn start(client: kube::Client, cfg: &HaConfig) -> Result<Election> {
        let ns = cfg.namespace();
        let identity = cfg.identity();
        let manager = LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
            .with_namespace(&ns)
            .with_identity(&identity)
            .with_duration(cfg.lease_duration.as_secs())
            .with_grace(cfg.grace.as_secs())
            .build()
            .await
            .map_err(|source| Error::Join {
                lease: format!("{ns}/{}", cfg.lease_name),
                source,
            })?;
        tracing::info!(lease = %format!("{ns}/{}", cfg.lease_name), identity, "joined the leader election");
        let api: Api<Lease> = Api::namespaced(client, &ns);
        let leader = Leader {
            flag: Arc::new(AtomicBool::new(false)),
            changes: Arc::new(tokio::sync::watch::Sender::new(false)),
        };
        let resume_after = Arc::new(Mutex::new(BTreeMap::new()));
        let mark = Arc::new(Watermark::default());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (mut channel, lease_task) = manager.watch().await;
        // What the lease manager says; `leader` is that *and* a recent
        // confirmation on the Lease itself (fencing: the manager does not
        // report a lost Lease while the API server is unreachable).
        let elected = Arc::new(AtomicBool::new(false));
        let task = {
            let leader = leader.clone();
            let elected = elected.clone();
            let identity = identity.clone();
            let resume_after = resume_after.clone();
            let api = api.clone();
            let name = cfg.lease_name.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        changed = channel.changed() => {
                            if changed.is_err() {
                                break;
                            }
                            let is = *channel.borrow_and_update();
                            elected.store(is, Ordering::Release);
                            if is {
                                let w = read_watermark(&api, &name).await;
                                tracing::info!(identity, watermark = ?w, "became the leader");
                                *resume_after.lock().unwrap_or_else(|p| p.into_inner()) = w;
                                leader.swap(true);
                            } else {
                                leader.swap(false);
                                tracing::warn!(identity, "lost the leadership");
                            }
                        }
                        _ = stopped.changed() => break,
                    }
                }
                drop(channel);
                match lease_task.await {
                    Ok(Ok(m)) => Some(m),
                    _ => None,
                }
            })
        };
        let writer = {
            let leader = leader.clone();
            let mark = mark.clone();
            let api = api.clone();
            let name = cfg.lease_name.clone();
            let fence = cfg.lease_duration.saturating_sub(cfg.grace);
            let valid = cfg.lease_duration;
            tokio::spawn(async move {
                let mut last = None;
                let mut confirmed = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if !elected.load(Ordering::Acquire) {
                        continue;
                    }
                    // Fencing: hold the Lease, freshly renewed, or stop.
                    match api.get_opt(&name).await {
                        Ok(Some(lease)) => {
                            let spec = lease.spec.unwrap_or_default();
                            let mine = spec.holder_identity.as_deref() == Some(identity.as_str());
                            let fresh = spec.renew_time.is_some_and(|t| {
                                let age = k8s_openapi::jiff::Timestamp::now().duration_since(t.0);
                                age.as_secs_f64() < valid.as_secs_f64()
                            });
                            if mine && fresh {
                                confirmed = tokio::time::Instant::now();
                                if !leader.swap(true) {
                                    tracing::info!(
                                        identity,
                                        "the Lease is confirmed again; delivering"
                                    );
                                }
                            } else if leader.swap(false) {
                                tracing::warn!(
                                    identity,
                                    "the Lease is held by another replica or not renewed; no longer delivering"
                                );
                            }
                        }
                        _ => {
                            if confirmed.elapsed() > fence && leader.swap(false) {
                                tracing::warn!(
                                    identity,
                                    "cannot confirm the Lease with the API server; no longer delivering"
                                );
                            }
                        }
                    }
                    if !leader.flag.load(Ordering::Acquire) {
                        continue;
                    }
                    let w = mark.value();
                    if last.as_ref() != Some(&w) && !w.is_empty() {
                        match write_watermark(&api, &name, &w).await {
                            Ok(()) => last = Some(w),
                            Err(e) => tracing::warn!("{:#}", anyhow::Error::new(e)),
                        }
                    }
                }
            })
        };
        Ok(Election {
            leader,
            mark,
            api,
            name: cfg.lease_name.clone(),
            stop,
            task,
            writer,
            resume_after,
            window: cfg.replay_window,
            budget: usize::try_from(cfg.replay_bytes.as_u64()).unwrap_or(usize::MAX),
        })
    }

    /// The flag that says whether this replica leads (for metrics).
    pub(crate) fn leader_flag(&self) -> Arc<AtomicBool> {
        self.leader.flag.clone()
    }

    /// Whether this replica leads, and a wake-up each time that changes
    /// (the sinks' outbox refill waits on it instead of polling the flag).
    pub(crate) fn leading(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leader.changes.subscribe()
    }

    /// Whether this replica leads now.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader.flag.load(Ordering::Acquire)
    }

    /// Starts the gate thread between the pipeline and the sinks; send it
    /// every outcome. Only the leader hands them on to `sinks`. The thread
    /// sleeps until an outcome arrives or leadership changes (a task on the
    /// current tokio runtime forwards the changes).
    pub(crate) fn gate(
        &self,
        sinks: impl Deliver,
    ) -> std::io::Result<(GateSender, std::thread::JoinHandle<()>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let gate = Gate::new(
            self.leader.flag.clone(),
            self.resume_after.clone(),
            self.mark.clone(),
            self.window,
            self.budget,
        );
        let handle = std::thread::Builder::new()
            .name("herald-gate".into())
            .spawn(move || gate::run(gate, &rx, &sinks))?;
        tokio::spawn(gate::forward_leadership(self.leading(), tx.clone()));
        Ok((GateSender(tx), handle))
    }

    /// Stops the periodic watermark writes (before the sinks close: a lane
    /// aborted at the drain deadline must not look settled).
    pub(crate) fn stop_writing(&self) {
        self.writer.abort();
    }

    /// After the sinks have drained: writes the final watermark (when
    /// leading and `complete`: everything handed to the sinks settled) and
    /// releases the Lease, so a standby takes over at once. Without a
    /// complete drain the last periodic watermark stands, and the next
    /// leader replays from there.
    pub(crate) async fn resign(self, complete: bool) {
        self.writer.abort();
        let leading = self.is_leader();
        if leading && !complete {
            tracing::warn!(
                "the drain did not complete: the next leader replays from the last watermark written"
            );
        }
        if leading && complete {
            let w = self.mark.value();
            if !w.is_empty()
                && let Err(e) = write_watermark(&self.api, &self.name, &w).await
            {
                tracing::error!("{:#}", anyhow::Error::new(e));
            }
        }
        let _ = self.stop.send(true);
        if let Ok(Some(manager)) = self.task.await {
            if let Err(e) = manager.release().await {
                tracing::warn!("releasing the Lease: {e}");
            } else if leading {
                tracing::info!(lease = self.name, "released the Lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_stays_below_the_lowest_unsettled_version() {
        let mark = Arc::new(Watermark::default());
        assert!(mark.value().is_empty());
        let a = mark.begin("w/ns", 10);
        let b = mark.begin("w/ns", 12);
        let b2 = b.clone();
        let c = mark.begin("w/ns", 15);
        let other = mark.begin("w/other", 3);
        assert_eq!(mark.value()["w/ns"], 9);
        drop(b);
        drop(b2);
        assert_eq!(mark.value()["w/ns"], 9, "10 is still out");
        drop(a);
        assert_eq!(mark.value()["w/ns"], 14, "15 is still out");
        drop(c);
        assert_eq!(mark.value()["w/ns"], 15);
        assert_eq!(mark.value()["w/other"], 2, "streams are apart");
        drop(other);
        assert_eq!(mark.value()["w/other"], 3);
    }
}
