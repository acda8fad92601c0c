//! `herald run`: the main job. Reads the config, watches the configured
//! types, runs each change through its watch's plugin chain, and writes every
//! notification as one JSON line to standard output (the log sink), while
//! serving the query and admin APIs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::change::ChangeEvent;
use crate::metrics::Metrics;
use crate::pipeline;
use crate::plugin::{
    Capability, Chain, OnError, PluginInstance, PluginSettings, Runtime, RuntimeConfig,
};
use crate::sink::{SinkConfig, Sinks};
use crate::source::{self, SourceSettings, Sources, WatchSpec};

/// herald's config file.
///
/// ```yaml
/// cluster: prod-eu-1
/// watch:
///   - group: apps
///     version: v1
///     kind: Deployment
///     plugins: [prune-noise]
/// plugins:
///   dir: /plugins
///   config:
///     prune-noise: { remove: ["/metadata/managedFields", "/status"] }
///   policy:
///     prune-noise: { file: prune.wasm, onError: pass, deadline: 200ms }
/// api:
///   listen: 0.0.0.0:8080
/// ```
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Name of the cluster, put on every notification. Example: `prod-eu-1`
    #[serde(default)]
    pub cluster: String,
    /// Kubeconfig to use; default: `KUBECONFIG`, `~/.kube/config`, in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Source-wide settings (initial list, stall timeout, discovery refresh).
    #[serde(default)]
    pub source: SourceSettings,
    /// The watched types.
    pub watch: Vec<WatchSpec>,
    /// The plugins.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Where notifications go. None: one `log` sink gets everything.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// Where herald keeps what it has notified and what sinks have not yet
    /// acknowledged, so a restart reports what changed while it was down and
    /// redelivers what was in flight. None: nothing survives a restart.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Emit dedup: drops states already notified.
    #[serde(default)]
    pub dedup: crate::dedup::DedupSettings,
    /// Offer every cached object to dedup again this often (only changes the
    /// dedup stage has not seen get through). Default: off. Example: `30m`
    #[serde(default, with = "humantime_serde")]
    pub resync_interval: Option<Duration>,
    /// herald's own log: level and format; `HERALD_LOG` and
    /// `HERALD_LOG_FORMAT` override. Example: `{level: debug, format: json}`
    #[serde(default)]
    pub log: LogConfig,
    /// Leader election among replicas; only the leader delivers.
    #[serde(default)]
    pub ha: Option<crate::ha::HaConfig>,
    /// How long SIGTERM waits for the sinks' queues to drain. Default: 30s
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// The query and admin APIs.
    #[serde(default)]
    pub api: Option<ApiConfig>,
}

fn default_drain() -> Duration {
    Duration::from_secs(30)
}

/// Where plugins come from and how each runs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of `.wasm` files. Example: `/plugins`
    #[serde(default)]
    pub dir: PathBuf,
    /// Directory for compiled components; none compiles at every start.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Each plugin's own config, by plugin name. Example: `prune-noise: {remove: [/status]}`
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    /// How each plugin runs, by plugin name.
    #[serde(default)]
    pub policy: BTreeMap<String, PluginPolicy>,
}

/// How one plugin runs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginPolicy {
    /// The `.wasm` file in the plugin directory; default `<name>.wasm`.
    #[serde(default)]
    pub file: Option<String>,
    /// Fate of the events of a failed call: `pass`, `drop` or `{route: sink}`.
    #[serde(default)]
    pub on_error: OnError,
    /// Longest one call may run. Example: `200ms`
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// Memory cap in MiB. Example: `64`
    #[serde(default)]
    pub memory_limit_mib: Option<usize>,
    /// Extra capabilities. Example: `[clocks]`
    #[serde(default)]
    pub allow: Vec<Capability>,
}

/// herald's own log (the GRW seed's `minLogLevel` / `logType`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info` (default), `debug`, `trace`, or a filter such
    /// as `herald=debug,kube=warn`.
    #[serde(default)]
    pub level: Option<String>,
    /// `pretty` (default) or `json`.
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The HTTP APIs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on. Example: `0.0.0.0:8080`
    pub listen: SocketAddr,
}

/// Arguments of `herald run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (YAML or JSON).
    #[arg(long, env = "HERALD_CONFIG")]
    pub config: PathBuf,
    /// Kubeconfig; overrides the config file's.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Reads and checks a config file. Errors name the file, the line and
/// column, and the field path.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read config", path.display()))?;
    parse_config(&text, path)
}

/// Parses and checks config text; `path` names it in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<Config> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        anyhow::anyhow!("{}: {}: {}", path.display(), field, e.inner())
    })?;
    for (i, w) in config.watch.iter().enumerate() {
        w.validate()
            .map_err(|e| anyhow::anyhow!("{}: watch[{i}]: {e}", path.display()))?;
        if w.plugins.iter().any(|p| p.trim().is_empty()) {
            bail!(
                "{}: watch[{i}].plugins: a plugin name is empty",
                path.display()
            );
        }
    }
    if let Some(level) = &config.log.level {
        tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
            anyhow::anyhow!(
                "{}: log.level: {level:?} is not a level or filter: {e}",
                path.display()
            )
        })?;
    }
    if let Some(ha) = &config.ha {
        ha.validate()
            .map_err(|e| anyhow::anyhow!("{}: ha.{e}", path.display()))?;
    }
    crate::dedup::Dedup::new(&config.dedup)
        .map_err(|e| anyhow::anyhow!("{}: dedup: {e}", path.display()))?;
    crate::sink::config::validate_all(&config.sinks, config.state_dir.is_some())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for (i, w) in config.watch.iter().enumerate() {
        for s in &w.sinks {
            if !config.sinks.iter().any(|c| &c.name == s) {
                bail!(
                    "{}: watch[{i}].sinks: no sink is named {s:?} (sinks: {})",
                    path.display(),
                    config
                        .sinks
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    for name in config
        .plugins
        .policy
        .keys()
        .chain(config.plugins.config.keys())
    {
        if !config.watch.iter().any(|w| w.plugins.contains(name)) {
            tracing::warn!(plugin = name, "plugin is configured but no watch uses it");
        }
    }
    Ok(config)
}

impl Config {
    fn plugin_file(&self, name: &str) -> PathBuf {
        let file = self
            .plugins
            .policy
            .get(name)
            .and_then(|p| p.file.clone())
            .unwrap_or_else(|| format!("{name}.wasm"));
        self.plugins.dir.join(file)
    }

    /// One chain per watch, keyed by watch id.
    pub fn chains(&self, rt: &Runtime) -> Result<BTreeMap<String, Chain>> {
        let mut chains = BTreeMap::new();
        // One compiled plugin (one InstancePre) per file, shared by every
        // watch that uses it; each watch gets instances of its own.
        let mut loaded: std::collections::HashMap<
            (PathBuf, Vec<Capability>),
            std::sync::Arc<crate::plugin::LoadedPlugin>,
        > = std::collections::HashMap::new();
        for w in &self.watch {
            let mut instances = Vec::new();
            for name in &w.plugins {
                let policy = self.plugins.policy.get(name);
                let allow = policy.map(|p| p.allow.clone()).unwrap_or_default();
                let file = self.plugin_file(name);
                let key = (file, allow.clone());
                let plugin = match loaded.get(&key) {
                    Some(p) => p.clone(),
                    None => {
                        let p = rt.load(name, &key.0, &allow)?;
                        loaded.insert(key, p.clone());
                        p
                    }
                };
                let defaults = PluginSettings::default();
                let settings = PluginSettings {
                    config: self
                        .plugins
                        .config
                        .get(name)
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".into()),
                    memory_limit: policy
                        .and_then(|p| p.memory_limit_mib)
                        .map(|m| m << 20)
                        .unwrap_or(defaults.memory_limit),
                    deadline: policy.and_then(|p| p.deadline).unwrap_or(defaults.deadline),
                    on_error: policy.map(|p| p.on_error.clone()).unwrap_or_default(),
                    allow,
                };
                instances.push(PluginInstance::new(plugin, settings)?);
            }
            chains.insert(w.id(), Chain::new(instances));
        }
        Ok(chains)
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn instrumented(chains: BTreeMap<String, Chain>, metrics: &Metrics) -> BTreeMap<String, Chain> {
    chains
        .into_iter()
        .map(|(w, c)| {
            let c = c.with_metrics(metrics.clone(), &w);
            (w, c)
        })
        .collect()
}

/// What a reload changes.
struct Live {
    path: PathBuf,
    text: String,
    config: Config,
    runtime: Runtime,
    metrics: Metrics,
    sources: Sources,
    sinks: Sinks,
    chains: std::sync::mpsc::Sender<BTreeMap<String, Chain>>,
}

impl Live {
    fn into_config(self) -> Config {
        self.config
    }

    async fn reload(&mut self, change: crate::reload::Change) {
        use crate::reload::Change;
        match change {
            Change::Plugins => match self.config.chains(&self.runtime) {
                Ok(chains) => {
                    let _ = self.chains.send(instrumented(chains, &self.metrics));
                    self.metrics.reload("plugins", true);
                    tracing::info!(dir = %self.config.plugins.dir.display(), "plugins reloaded");
                }
                Err(e) => {
                    self.metrics.reload("plugins", false);
                    tracing::error!(
                        dir = %self.config.plugins.dir.display(),
                        "plugin reload rejected; the loaded versions keep running: {e:#}"
                    );
                }
            },
            Change::Config => {
                let Ok(text) = std::fs::read_to_string(&self.path) else {
                    // Mid-swap (a ConfigMap's symlinks) or removed: the next
                    // event tells.
                    return;
                };
                if text == self.text {
                    return;
                }
                match parse_config(&text, &self.path) {
                    Ok(new) => match self.apply(new).await {
                        Ok(()) => {
                            self.text = text;
                            self.metrics.reload("config", true);
                            tracing::info!(file = %self.path.display(), "config reloaded");
                        }
                        Err(e) => {
                            self.metrics.reload("config", false);
                            tracing::error!(
                                "config reload rejected; the previous config keeps running: {e:#}"
                            );
                        }
                    },
                    Err(e) => {
                        self.metrics.reload("config", false);
                        tracing::error!(
                            "config reload rejected; the previous config keeps running: {e:#}"
                        );
                    }
                }
            }
        }
    }

    /// Applies a valid new config: plugins and sinks first (either can fail,
    /// and then nothing changed), then the watches.
    async fn apply(&mut self, new: Config) -> Result<()> {
        let old = &self.config;
        let fixed = [
            ("cluster", old.cluster != new.cluster),
            ("kubeconfig", old.kubeconfig != new.kubeconfig),
            (
                "api",
                old.api.as_ref().map(|a| a.listen) != new.api.as_ref().map(|a| a.listen),
            ),
            ("plugins.dir", old.plugins.dir != new.plugins.dir),
            (
                "plugins.cacheDir",
                old.plugins.cache_dir != new.plugins.cache_dir,
            ),
            ("source", old.source != new.source),
            ("stateDir", old.state_dir != new.state_dir),
            ("dedup", old.dedup != new.dedup),
            ("resyncInterval", old.resync_interval != new.resync_interval),
            ("ha", old.ha != new.ha),
        ];
        for (field, changed) in fixed {
            if changed {
                tracing::warn!(
                    field,
                    "this field changed in the config; it takes effect at the next restart"
                );
            }
        }
        let chains = new.chains(&self.runtime).context("plugins")?;
        self.sinks.reconfigure(&new.sinks).context("sinks")?;
        let _ = self.chains.send(instrumented(chains, &self.metrics));
        for w in &old.watch {
            let id = w.id();
            let kept = new.watch.iter().any(|n| n.id() == id && n == w);
            if !kept {
                match self.sources.remove(&id) {
                    Ok(_) => tracing::info!(watch = id, "watch removed"),
                    Err(e) => tracing::warn!(watch = id, "removing watch: {e}"),
                }
            }
        }
        for w in &new.watch {
            self.sinks.set_watch_sinks(&w.id(), w.sinks.clone());
            if old.watch.iter().any(|o| o == w) {
                continue;
            }
            match self.sources.add(w.clone()).await {
                Ok(status) => {
                    tracing::info!(watch = %status.id, state = ?status.state, "watch added")
                }
                Err(e) => tracing::error!(watch = w.id(), "adding watch: {e}"),
            }
        }
        self.config = new;
        Ok(())
    }
}

/// Restart catch-up for one watch (with a state dir), for what the first
/// list cannot say: once it is in, objects herald notified that are gone
/// are reported deleted, with the last state herald knew. (New and changed
/// objects come from the first list itself, in order with the watch; see
/// `pipeline::Stages`.) No live event can race these: a deleted uid never
/// comes back.
async fn catch_up(
    sources: Sources,
    store: std::sync::Arc<crate::state::StateStore>,
    tx: mpsc::WeakSender<ChangeEvent>,
    spec: WatchSpec,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let watch = spec.id();
    loop {
        if *stop.borrow() {
            return;
        }
        match sources.status(&watch) {
            Some(s) if s.ready => break,
            Some(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stop.changed() => return,
                }
            }
            None => return,
        }
    }
    let Some(cached) = sources.cache().get(&watch) else {
        return;
    };
    let objects = cached.filter(|_| true);
    let listed: std::collections::HashSet<&str> = objects.iter().filter_map(|o| o.uid()).collect();
    let gone = match store
        .objects(&watch)
        .and_then(|stored| crate::state::vanished(&watch, stored, &listed))
    {
        Ok(gone) => gone,
        Err(e) => {
            tracing::error!(watch, "catch-up: reading the state: {e}");
            return;
        }
    };
    tracing::info!(
        watch,
        deleted = gone.len(),
        "caught up with deletions made while herald was down"
    );
    // From now on an object this watch's first list has that the state
    // does not know is new (a restart reports it as added).
    if let Err(e) = store
        .submit(vec![crate::state::Op::Listed {
            watch: watch.clone(),
        }])
        .await
    {
        tracing::error!(watch, "catch-up: recording the first list: {e}");
    }
    let wanted = spec.events.contains(&crate::change::ChangeType::Deleted);
    let Some(tx) = tx.upgrade() else { return };
    for ev in gone {
        if !wanted {
            // Not notified (`events` leaves deletions out): forgotten.
            drop(store.remove_object(ev.uid()));
            continue;
        }
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}

/// Every `every`, offers every cached object to the pipeline again; the dedup
/// stage drops each one whose state was notified already (the seed's
/// `forceReuploadDuration`, without the flood).
async fn resync(cache: crate::cache::Cache, tx: mpsc::WeakSender<ChangeEvent>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(tx) = tx.upgrade() else { return };
        let mut offered = 0;
        for t in cache.all() {
            let gvk = crate::change::Gvk {
                group: t.resource.group.clone(),
                version: t.resource.version.clone(),
                kind: t.resource.kind.clone(),
            };
            for o in t.filter(|_| true) {
                let Ok(obj) = o.to_value() else { continue };
                let mut ev =
                    ChangeEvent::new(crate::change::ChangeType::Modified, gvk.clone(), obj, None)
                        .with_watch(t.watch.clone());
                ev.resync = true;
                if tx.send(ev).await.is_err() {
                    return;
                }
                offered += 1;
            }
        }
        drop(tx);
        tracing::debug!(
            objects = offered,
            "resync offered every cached object to dedup"
        );
    }
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(args: &RunArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: config.plugins.cache_dir.clone(),
        ..RuntimeConfig::default()
    })?;
    let metrics = Metrics::new();
    let chains = instrumented(config.chains(&runtime)?, &metrics);
    let kubeconfig = args.kubeconfig.clone().or(config.kubeconfig.clone());
    let client = source::client(kubeconfig.as_deref()).await?;
    let election = match &config.ha {
        Some(ha) if ha.enabled => Some(crate::ha::Election::start(client.clone(), ha).await?),
        _ => None,
    };
    if let Some(e) = &election {
        metrics.watch_leader(e.leader_flag());
    }
    let (tx, rx) = mpsc::channel::<ChangeEvent>(4096);
    let dedup = std::sync::Arc::new(
        crate::dedup::Dedup::new(&config.dedup).map_err(|e| anyhow::anyhow!("dedup: {e}"))?,
    );
    let store = match &config.state_dir {
        Some(dir) => {
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
            Some(std::sync::Arc::new(store))
        }
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
    };
    // Weak: a catch-up or resync must not keep the pipeline alive at shutdown.
    let weak_tx = tx.downgrade();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // With a state dir a silent first list reports its objects as quiet:
    // the pipeline records them without notifying, and at a restart dedup,
    // seeded from the state, lets through only what changed while herald
    // was down.
    let mut source_settings = config.source.clone();
    source_settings.record_silent_lists = store.is_some();
    let replay_client = client.clone();
    let sources = Sources::new(client, source_settings, tx);
    let sinks = Sinks::start(&config.cluster, &config.sinks)?;
    metrics.watch_sources(&sources);
    metrics.watch_sinks(&sinks);
    sinks.set_metrics(metrics.clone());
    for w in &config.watch {
        sinks.set_watch_sinks(&w.id(), w.sinks.clone());
    }
    let dispatcher = sinks.clone();
    let m = metrics.clone();
    let (chain_tx, chain_rx) = std::sync::mpsc::channel();
    // With leader election, a gate thread between the pipeline and the sinks
    // decides whether this replica delivers.
    let (gate_tx, gate) = match &election {
        Some(e) => {
            let (tx, handle) = e
                .gate(sinks.clone())
                .context("starting the HA gate thread")?;
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };
    if let Some(store) = &store {
        if let Some(e) = &election {
            sinks.set_leader_flag(e.leader_flag());
        }
        sinks.set_store(store.clone());
        let resumed = sinks.resume_outbox();
        if resumed > 0 {
            tracing::info!(
                notifications = resumed,
                "redelivering what the last run had not delivered"
            );
        }
    }
    if let Some(every) = config.resync_interval {
        tokio::spawn(resync(sources.cache(), weak_tx.clone(), every));
    }
    let pipeline = pipeline::spawn_with(rx, chains, chain_rx, stages, move |o| {
        m.event(&o.watch, o.change.as_str());
        let watch = o.watch.clone();
        let fate = match &o.fate {
            crate::plugin::Fate::Deliver { .. } => "delivered",
            crate::plugin::Fate::Dropped { .. } => "dropped",
            crate::plugin::Fate::DeadLetter { .. } => "dead_letter",
        };
        if let Some(tx) = &gate_tx {
            m.outcome(&watch, fate);
            return match tx.send(o) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            };
        }
        let sent = dispatcher.dispatch(o);
        let fate = if sent == 0 && fate == "delivered" {
            "unrouted"
        } else {
            fate
        };
        m.outcome(&watch, fate);
        ControlFlow::Continue(())
    })
    .context("starting the pipeline thread")?;
    // With a state dir, each watch first resumes its stream after the last
    // run's checkpoint (the API server replays what changed meanwhile), then
    // lists; deletions the list reveals are caught up after it.
    if let Some(store) = &store
        && let Some(tx) = weak_tx.upgrade()
    {
        let replays = config.watch.iter().map(|w| {
            crate::resume::replay(replay_client.clone(), store.clone(), w.clone(), tx.clone())
        });
        let replayed: usize = futures::future::join_all(replays).await.into_iter().sum();
        if replayed > 0 {
            tracing::info!(
                changes = replayed,
                "replayed the changes made while herald was down"
            );
        }
    }
    for w in &config.watch {
        let status = sources.add(w.clone()).await?;
        tracing::info!(watch = %status.id, state = ?status.state, "watch added");
        if let Some(store) = &store {
            tokio::spawn(catch_up(
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
    if let Some(api) = &config.api {
        let listener = tokio::net::TcpListener::bind(api.listen)
            .await
            .with_context(|| format!("api.listen: cannot listen on {}", api.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "query and admin APIs listening");
        let router = crate::api::query_router(sources.cache())
            .merge(crate::api::admin_router(sources.clone()))
            .merge(crate::api::health_router(sources.clone()))
            .merge(sinks.router())
            .merge(metrics.router());
        tokio::spawn(async move {
            if let Err(e) = crate::api::serve(listener, router, shutdown_signal()).await {
                tracing::error!("api server: {e}");
            }
        });
    }
    let ready_sources = sources.clone();
    let mut ready_wait = Box::pin(async move {
        while !ready_sources.ready() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!("initial lists synced; ready");
    });
    let mut reloads = match crate::reload::watch(
        &args.config,
        Some(&config.plugins.dir),
        Duration::from_millis(150),
    ) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("cannot watch the config and plugin files; hot reload is off: {e}");
            None
        }
    };
    let mut live = Live {
        path: args.config.clone(),
        text: std::fs::read_to_string(&args.config).unwrap_or_default(),
        config,
        runtime,
        metrics: metrics.clone(),
        sources: sources.clone(),
        sinks: sinks.clone(),
        chains: chain_tx,
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut ready_done = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = &mut ready_wait, if !ready_done => ready_done = true,
            Some(change) = async {
                match reloads.as_mut() {
                    Some(r) => r.rx.recv().await,
                    None => std::future::pending().await,
                }
            } => live.reload(change).await,
        }
    }
    drop(ready_wait);
    let config = live.into_config();
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    metrics.detach();
    drop(sources);
    // One deadline for all of it: the pipeline may be blocked on a full
    // queue (`whenFull: block`) until the sinks are closed.
    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    let mut joiner = tokio::task::spawn_blocking(move || {
        let _ = pipeline.join();
        if let Some(g) = gate {
            let _ = g.join();
        }
    });
    let joined = tokio::time::timeout_at(deadline, &mut joiner).await.is_ok();
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
    if !joined {
        // Closing the sinks unblocked it; what it still held is reported.
        let _ = joiner.await;
    }
    if let Some(e) = election {
        // Only a complete drain may advance the watermark past what is queued.
        e.resign(left == 0 && joined).await;
    }
    if left > 0 || !joined {
        if config.state_dir.is_some() {
            tracing::warn!(
                undelivered = left,
                "drainTimeout passed; what was not delivered stays in the outbox for the next start"
            );
        } else {
            bail!(
                "{left} notifications were not delivered before drainTimeout (no stateDir: they are lost)"
            );
        }
    }
    Ok(())
}
