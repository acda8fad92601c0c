//! The composition root: the only module that knows every part of herald.
//!
//! [`Herald::start`] builds the parts from a [`Config`] and wires them in the
//! one direction changes flow — source → pipeline (dedup, state record,
//! plugins) → sinks — handing each part what it needs when it is built;
//! [`Herald::run_until`] serves hot reloads until asked to stop, and
//! [`Herald::shutdown`] stops the parts in order and drains the sinks.
//! `herald run`, `herald demo` and (through `herald run`) the end-to-end tests
//! all start herald here.
//!
//! - [`config`]: the config file's schema and cross-field checks.
//! - `reload`: applying a changed config or plugin directory; `files`: noticing it.
//! - `restart`: deletions made while herald was down, and the periodic resync.
//! - `threads`: the async runtime's size.
//! - `hand_over`: where each outcome goes after the pipeline (tap, metrics, HA gate or sinks).
//! - `explain`, `record`, `replay`: one object, or a recorded change stream,
//!   through what `herald run` would do with a config.

mod check;
pub(crate) mod config;
pub(crate) mod explain;
mod files;
mod hand_over;
mod listeners;
mod plugin_files;
pub(crate) mod record;
mod reload;
pub(crate) mod replay;
mod restart;
mod threads;

use std::future::Future;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};

pub use check::{Checked, check_config};
pub use config::{Config, LogConfig, LogFormat, load_config, parse_config};
pub use threads::{async_runtime, async_workers};

use crate::change::ChangeEvent;
use crate::metrics::Metrics;
use crate::pipeline::{self, Delivery, Outcome};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::sink::{SinkDeps, Sinks};
use crate::source::Sources;

use reload::{Live, instrumented};

/// Sees every outcome of the pipeline, each stream's in order, on the
/// pipeline's thread (where it commits).
pub(crate) type Tap = Box<dyn FnMut(&Outcome) + Send>;

/// How an embedder starts herald, beyond the config.
#[derive(Default)]
pub(crate) struct Options {
    /// The config file: watched (with `plugins.dir`) and re-applied when it
    /// changes. None: no hot reload.
    pub config_path: Option<PathBuf>,
    /// Sees every outcome (the demo prints them).
    pub tap: Option<Tap>,
    /// `herald record`: the source's changes go to this recorder instead of
    /// the pipeline (the config is [`record::for_recording`]'s).
    pub record: Option<record::Recorder>,
}

/// A running herald. Dropping it without [`Herald::shutdown`] aborts it.
pub(crate) struct Herald {
    live: Live,
    sources: Sources,
    sinks: Sinks,
    metrics: Metrics,
    election: Option<crate::ha::Election>,
    pipeline: pipeline::Running,
    gate: Option<std::thread::JoinHandle<()>>,
    reloads: Option<files::Reloads>,
    admin: mpsc::Receiver<crate::api::WatchRequest>,
    stop: watch::Sender<bool>,
}

/// What [`Herald::shutdown`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drained {
    /// Notifications the sinks had not delivered at `drainTimeout`.
    pub undelivered: u64,
    /// The pipeline had finished (not blocked on a full queue) by then.
    pub pipeline_finished: bool,
    /// A state dir keeps what was not delivered for the next start.
    pub kept: bool,
    /// The pipeline (or the HA gate) ended by a panic: an internal error.
    pub failed: bool,
}

impl Herald {
    /// Builds every part from `config`, talks to the API server through
    /// `client`, and starts: sinks (with the outbox of the last run), the
    /// pipeline, each watch (resumed after its checkpoint with a state dir),
    /// the APIs once every configured watch is added.
    ///
    /// # Errors
    /// A plugin, sink, state dir, election or API listener that cannot start;
    /// the message names which and why.
    pub(crate) async fn start(
        config: Config,
        client: kube::Client,
        options: Options,
    ) -> Result<Herald> {
        let workers = config.pipeline.workers();
        let defaults = RuntimeConfig::default();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: config.plugins.cache_dir.clone(),
            // Each worker has instances of its own (and a reload briefly
            // holds old and new ones).
            max_instances: defaults
                .max_instances
                .max((128 * (workers as u32 + 1)).min(2048)),
            ..defaults
        })?;
        let metrics = Metrics::new();
        // What the chains are built from: a file changed after this scan
        // shows as a change at the first reload.
        let plugin_files = Live::scan_plugins(&config);
        let decisions = crate::decisions::Decisions::new(config.decisions.max_bytes.as_u64());
        metrics.watch_decisions(&decisions);
        let chains = instrumented(
            config.chains(&runtime)?,
            &metrics,
            config.plugins.breaker,
            workers,
        )?;
        runtime.prune_cache(&plugin_files.hashes());
        let election = match &config.ha {
            Some(ha) if ha.enabled => Some(crate::ha::Election::start(client.clone(), ha).await?),
            _ => None,
        };
        if let Some(e) = &election {
            metrics.watch_leader(e.leader_flag());
        }
        let (tx, rx) = mpsc::channel::<ChangeEvent>(4096);
        let dedup = Arc::new(
            crate::dedup::Dedup::new(&config.dedup).map_err(|e| anyhow::anyhow!("dedup: {e}"))?,
        );
        let store = match &config.state_dir {
            Some(dir) => Some(Arc::new(open_state(dir, &dedup)?)),
            None => None,
        };
        let history = match &store {
            Some(st) => config
                .watch
                .iter()
                .map(|w| w.id())
                .filter(|id| st.listed(id).unwrap_or(false))
                .collect(),
            None => Default::default(),
        };
        let stages = pipeline::Stages {
            dedup: Some(dedup.clone()),
            state: store.clone(),
            metrics: Some(metrics.clone()),
            history,
            scoped: config
                .watch
                .iter()
                .filter(|w| !w.namespaces.is_empty())
                .map(|w| w.id())
                .collect(),
            decisions: Some(decisions.clone()),
        };
        // Weak: a catch-up or resync must not keep the pipeline alive at shutdown.
        let weak_tx = tx.downgrade();
        let (stop, stop_rx) = watch::channel(false);
        // With a state dir a silent first list reports its objects as quiet:
        // the pipeline records them without notifying, and at a restart dedup,
        // seeded from the state, lets through only what changed while herald
        // was down.
        let mut source_settings = config.source.clone();
        source_settings.record_silent_lists = store.is_some();
        // The key of the digests standing for Secret values: kept in the state
        // dir, so a restart compares digests made with the same key.
        if let Some(dir) = &config.state_dir {
            let path = dir.join("secret-digest.key");
            source_settings.secret_key = crate::source::SecretKey::load_or_create(&path)
                .with_context(|| format!("stateDir: the Secret digest key {}", path.display()))?;
        }
        // With a state dir, each scope first resumes its stream after the last
        // run's checkpoint (the API server replays what changed meanwhile),
        // then lists; deletions the list reveals are caught up after it.
        if let Some(store) = &store {
            let store = store.clone();
            source_settings.checkpoints = Some(crate::source::Checkpoints::new(move |key| {
                store.checkpoint(key).ok().flatten()
            }));
        }
        let sources = Sources::new(client.clone(), source_settings, tx);
        let sinks = Sinks::start(
            &config.cluster,
            &config.sinks,
            SinkDeps {
                metrics: Some(metrics.clone()),
                outbox: store.as_ref().map(pipeline::state_outbox),
                leader: election.as_ref().map(|e| e.leading()),
                log: Some(Arc::new(decisions.clone())),
            },
        )?;
        let delivery = Delivery::new(sinks.clone(), config.routes(), store.clone())
            .with_decisions(decisions.clone());
        metrics.watch_sources(&sources);
        metrics.watch_sinks(&sinks);
        if store.is_some() {
            let resumed = sinks.resume_outbox();
            if resumed > 0 {
                tracing::info!(
                    notifications = resumed,
                    "redelivering what the last run had not delivered"
                );
            }
        }
        let (chain_tx, chain_rx) = std::sync::mpsc::channel();
        // With leader election, a gate thread between the pipeline and the
        // sinks decides whether this replica delivers.
        let (gate_tx, gate) = match &election {
            Some(e) => {
                let (tx, handle) = e
                    .gate(delivery.clone())
                    .context("starting the HA gate thread")?;
                (Some(tx), Some(handle))
            }
            None => (None, None),
        };
        if let Some(every) = config.resync_interval {
            tokio::spawn(restart::resync(
                sources.cache(),
                weak_tx.clone(),
                every,
                stages.dedup.clone(),
                metrics.clone(),
            ));
        }
        let deliver = hand_over::hand_over(metrics.clone(), delivery.clone(), gate_tx, options.tap);
        let pipeline = match options.record {
            Some(recorder) => record::spawn(rx, recorder)
                .map(pipeline::Running::thread)
                .context("starting the recording thread")?,
            None => pipeline::spawn_with(rx, chains, chain_rx, stages, deliver)
                .context("starting the pipeline")?,
        };
        for w in &config.watch {
            let status = sources.add(w.clone()).await?;
            tracing::info!(watch = %status.id, state = ?status.state, "watch added");
            if let Some(store) = &store {
                tokio::spawn(restart::catch_up(
                    sources.clone(),
                    store.clone(),
                    weak_tx.clone(),
                    w.clone(),
                    stop_rx.clone(),
                ));
            }
        }
        // Every watch started from now on (a CRD that appears, an admin-added
        // watch, a reload) reports its first list: its objects are news.
        sources.mark_started();
        // The APIs start once every configured watch is added, so `/readyz`
        // speaks of all of them.
        let (control, admin) = crate::api::WatchControl::channel(sources.clone());
        listeners::start(
            config.api.as_ref(),
            config.metrics.as_ref(),
            listeners::Parts {
                client: &client,
                control,
                sources: &sources,
                sinks: &sinks,
                metrics: &metrics,
                decisions: &decisions,
                cluster: &config.cluster,
            },
            stop_rx.clone(),
        )
        .await?;
        let reloads = match &options.config_path {
            Some(path) => {
                match files::watch(path, Some(&config.plugins.dir), Duration::from_millis(150)) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(
                            "cannot watch the config and plugin files; hot reload is off: {e}"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let live = Live {
            text: options
                .config_path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default(),
            path: options.config_path,
            config,
            runtime,
            metrics: metrics.clone(),
            sources: sources.clone(),
            sinks: sinks.clone(),
            chains: chain_tx,
            plugin_files,
            workers,
            delivery,
            decisions,
            admin: Default::default(),
        };
        Ok(Herald {
            live,
            sources,
            sinks,
            metrics,
            election,
            pipeline,
            gate,
            reloads,
            admin,
            stop,
        })
    }

    /// The watches.
    pub(crate) fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Applies config and plugin changes until `stop` completes, then shuts
    /// down.
    pub(crate) async fn run_until(mut self, stop: impl Future<Output = ()>) -> Drained {
        tokio::pin!(stop);
        let ready_sources = self.sources.clone();
        let mut ready_wait = Box::pin(async move {
            if ready_sources.until_ready(None).await {
                tracing::info!("initial lists synced; ready");
            }
        });
        let mut ready_done = false;
        let mut reloads = self.reloads.take();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = &mut ready_wait, if !ready_done => ready_done = true,
                Some(change) = async {
                    match reloads.as_mut() {
                        Some(r) => r.rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.live.reload(change).await,
                Some(request) = self.admin.recv() => self.live.admin(request).await,
                () = self.pipeline.ended() => {
                    // Only the source's end (at shutdown) ends it otherwise.
                    tracing::error!("the pipeline stopped while herald runs (an internal error, logged above); shutting down");
                    break;
                }
            }
        }
        // It holds the watches: they stop only once every holder lets go.
        drop(ready_wait);
        drop(reloads);
        self.shutdown().await
    }

    /// Stops the watches, lets the pipeline finish what it holds, and drains
    /// the sinks, all within the config's `drainTimeout`; with leader election,
    /// resigns (writing the delivered watermark only after a complete drain).
    pub(crate) async fn shutdown(self) -> Drained {
        let Herald {
            live,
            sources,
            sinks,
            metrics,
            election,
            pipeline,
            gate,
            stop,
            ..
        } = self;
        let config = live.into_config();
        tracing::info!("shutting down");
        let _ = stop.send(true);
        metrics.detach();
        drop(sources);
        // One deadline for all of it: the pipeline may be blocked on a full
        // queue (`whenFull: block`) until the sinks are closed.
        let deadline = tokio::time::Instant::now() + config.drain_timeout;
        let mut joiner = tokio::task::spawn_blocking(move || {
            let ended = pipeline.join();
            let gate = gate.map(std::thread::JoinHandle::join);
            ended.is_ok() && gate.is_none_or(|g| g.is_ok())
        });
        let ended = tokio::time::timeout_at(deadline, &mut joiner).await;
        let joined = ended.is_ok();
        if !joined {
            tracing::warn!(
                "the pipeline is still blocked on a full queue at drainTimeout; closing the sinks"
            );
        }
        if let Some(e) = &election {
            e.stop_writing();
        }
        let left = sinks
            .close(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        let ended = match ended {
            Ok(ended) => ended,
            // Closing the sinks unblocked it; what it still held is reported.
            Err(_) => joiner.await,
        };
        if let Some(e) = election {
            // Only a complete drain may advance the watermark past what is queued.
            e.resign(left == 0 && joined).await;
        }
        let kept = config.state_dir.is_some();
        if (left > 0 || !joined) && kept {
            tracing::warn!(
                undelivered = left,
                "drainTimeout passed; what was not delivered stays in the outbox for the next start"
            );
        }
        Drained {
            undelivered: left,
            pipeline_finished: joined,
            failed: !matches!(ended, Ok(true)),
            kept,
        }
    }
}

/// Opens the state dir and seeds dedup with what it recorded.
fn open_state(
    dir: &std::path::Path,
    dedup: &crate::dedup::Dedup,
) -> Result<crate::state::StateStore> {
    let store = crate::state::StateStore::open(dir)
        .with_context(|| format!("stateDir: cannot open the state in {}", dir.display()))?;
    let mut seeded = 0u64;
    for h in store
        .hashes()
        .context("stateDir: reading the emitted states")?
    {
        let (uid, hash) = h.context("stateDir: reading the emitted states")?;
        dedup.seed(&uid, hash);
        seeded += 1;
    }
    tracing::info!(dir = %dir.display(), objects = seeded, "state dir opened");
    Ok(store)
}
