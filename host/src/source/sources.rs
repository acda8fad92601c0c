//! [`Sources`]: the set of watches, added and removed at run time, with a periodic
//! discovery refresh that starts pending watches once their type is served.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use kube::Client;
use kube::api::{Api, ApiResource};
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::cache::{Cache, CachedType};
use crate::change::{ChangeEvent, Gvk};
use crate::sync::lock;

use super::activity::{self, Activity};
use super::diff::{Differ, FirstList};
use super::error::{Error, Result};
use super::object::WatchedObject;
use super::resolve::{Resolution, Resolver, still_served};
use super::settings::{InitialList, SourceSettings};
use super::spec::WatchSpec;
use super::status::{ResourceInfo, ScopeStatus, WatchState, WatchStatus};
use super::watch::{ScopeWatch, server_timeout};

/// The running watches. Cheap to clone; every clone is the same set. Dropping the last
/// clone stops every watch and the discovery refresh.
///
/// ```no_run
/// # async fn demo() -> Result<(), herald::source::Error> {
/// use herald::source::{self, Sources, SourceSettings, WatchSpec};
/// let client = source::client(None).await?;
/// let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
/// let sources = Sources::new(client, SourceSettings::default(), tx);
/// sources.add(WatchSpec::new("apps", "v1", "Deployment")).await?;
/// while let Some(change) = rx.recv().await {
///     println!("{} {}/{}", change.change, change.gvk, change.name());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sources {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: SourceSettings,
    tx: mpsc::Sender<ChangeEvent>,
    cache: Cache,
    resolver: Resolver,
    watches: Mutex<BTreeMap<String, Entry>>,
    serial: AtomicU64,
    /// Set by [`Sources::mark_started`]: watches that start from now on report
    /// their first list whatever `initialList` says.
    started: AtomicBool,
    /// Bumped when a watch's first list completes or its state changes.
    progress: tokio::sync::watch::Sender<u64>,
    refresher: Mutex<Option<AbortOnDrop>>,
}

struct Entry {
    /// Tells apart a watch from a later one with the same id.
    serial: u64,
    spec: WatchSpec,
    state: EntryState,
}

enum EntryState {
    Pending { reason: String },
    Failed { reason: String },
    Running(Running),
}

struct Running {
    resource: ApiResource,
    namespaced: bool,
    scopes: Vec<Scope>,
}

struct Scope {
    status: Arc<ScopeStatus>,
    _task: AbortOnDrop,
}

/// Aborts the task when dropped, so a removed watch stops at once.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// === impl Sources ===

impl Sources {
    /// An empty set of watches sending changes to `tx`. Starts the discovery refresh
    /// (at once, then every `settings.discovery_interval`). Needs a tokio runtime.
    pub fn new(client: Client, settings: SourceSettings, tx: mpsc::Sender<ChangeEvent>) -> Self {
        let inner = Arc::new(Inner {
            resolver: Resolver::new(client.clone()),
            client,
            settings,
            tx,
            cache: Cache::new(),
            watches: Mutex::new(BTreeMap::new()),
            serial: AtomicU64::new(0),
            started: AtomicBool::new(false),
            progress: tokio::sync::watch::channel(0).0,
            refresher: Mutex::new(None),
        });
        // The refresher holds only a weak reference, so dropping the last `Sources`
        // drops `Inner`, whose drop aborts the refresher.
        let weak = Arc::downgrade(&inner);
        let task = tokio::spawn(refresh_loop(weak).instrument(tracing::info_span!("discovery")));
        *lock(&inner.refresher) = Some(AbortOnDrop(task));
        Self { inner }
    }

    /// The cache the watches fill, for the query API.
    pub fn cache(&self) -> Cache {
        self.inner.cache.clone()
    }

    /// The source-wide settings.
    pub fn settings(&self) -> &SourceSettings {
        &self.inner.settings
    }

    /// herald has started: every watch added before now that is running was
    /// present at start. A watch that starts after this (added by the admin API or
    /// a reload, or a pending one whose CRD appears) reports its whole first list as
    /// added, whatever `initialList` says: none of its objects were present when
    /// herald started, so all of them are news. A pending watch is always started
    /// that way, marked or not: its type was not served when it was added.
    pub(crate) fn mark_started(&self) {
        self.inner.started.store(true, Ordering::Relaxed);
    }

    /// Adds a watch and starts it, or leaves it pending if discovery does not know its
    /// type yet (every refresh retries it).
    ///
    /// # Errors
    /// [`Error::InvalidSpec`], [`Error::Duplicate`], and [`Error::NotWatchable`] or
    /// [`Error::ClusterScoped`] when the type exists but the spec cannot work.
    pub async fn add(&self, spec: WatchSpec) -> Result<WatchStatus> {
        spec.validate()?;
        let id = spec.id();
        if lock(&self.inner.watches).contains_key(&id) {
            return Err(Error::Duplicate { id });
        }
        let resolution = self.inner.resolver.resolve_now(&spec).await?;
        let mut watches = lock(&self.inner.watches);
        if watches.contains_key(&id) {
            return Err(Error::Duplicate { id });
        }
        let late = self.inner.started.load(Ordering::Relaxed);
        let state = match resolution {
            Resolution::Found {
                resource,
                namespaced,
            } => EntryState::Running(self.inner.start(&id, &spec, resource, namespaced, late)),
            Resolution::Pending(reason) => {
                tracing::warn!(watch = %id, gvk = %spec.gvk(), %reason, "watch pending: type not served yet");
                EntryState::Pending { reason }
            }
        };
        let entry = Entry {
            serial: self.inner.serial.fetch_add(1, Ordering::Relaxed),
            spec,
            state,
        };
        let status = entry.status(&id);
        watches.insert(id, entry);
        Ok(status)
    }

    /// Stops and forgets a watch; its objects leave the cache. Returns its spec.
    ///
    /// # Errors
    /// [`Error::UnknownWatch`].
    pub fn remove(&self, id: &str) -> Result<WatchSpec> {
        let entry = lock(&self.inner.watches)
            .remove(id)
            .ok_or_else(|| Error::UnknownWatch { id: id.to_string() })?;
        self.inner.cache.remove(id);
        tracing::info!(watch = %id, "watch removed");
        Ok(entry.spec)
    }

    /// Every watch with its status, by id.
    pub fn list(&self) -> Vec<WatchStatus> {
        lock(&self.inner.watches)
            .iter()
            .map(|(id, e)| e.status(id))
            .collect()
    }

    /// One watch's status.
    pub fn status(&self, id: &str) -> Option<WatchStatus> {
        lock(&self.inner.watches).get(id).map(|e| e.status(id))
    }

    /// Whether every running watch has completed its first list. Pending and failed
    /// watches do not hold readiness back (a CRD may never be installed); they show in
    /// [`Sources::list`].
    pub fn ready(&self) -> bool {
        lock(&self.inner.watches).values().all(|e| match &e.state {
            EntryState::Running(r) => r.scopes.iter().all(|s| s.status.synced()),
            _ => true,
        })
    }

    /// Waits until watch `id` (every running watch with `None`) has completed
    /// its first list, without polling. False when `id` is not (or no
    /// longer) a watch.
    pub(crate) async fn until_ready(&self, id: Option<&str>) -> bool {
        let mut progress = self.inner.progress.subscribe();
        loop {
            let ready = match id {
                Some(id) => match self.status(id) {
                    Some(s) => s.ready,
                    None => return false,
                },
                None => self.ready(),
            };
            if ready {
                return true;
            }
            if progress.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Re-runs discovery now: starts pending watches whose type is now served, and
    /// sets running watches whose type is gone back to pending.
    ///
    /// # Errors
    /// [`Error::Discovery`]; watches are left as they were.
    pub async fn refresh(&self) -> Result<()> {
        self.inner.refresh().await
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field(
                "watches",
                &lock(&self.inner.watches).keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

async fn refresh_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if let Err(error) = inner.refresh().await {
            tracing::warn!(error = %error, cause = %cause(&error), "discovery refresh failed; retrying next interval");
        }
        let interval = inner.settings.discovery_interval;
        drop(inner);
        tokio::time::sleep(interval).await;
    }
}

fn cause(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}

// === impl Inner ===

impl Inner {
    /// Starts one task per namespace scope and registers their stores in the cache.
    /// `late`: the watch starts after herald did, so its first list is news.
    fn start(
        &self,
        id: &str,
        spec: &WatchSpec,
        resource: ApiResource,
        namespaced: bool,
        late: bool,
    ) -> Running {
        let gvk = Gvk::from(&resource);
        let stall_timeout = spec.stall_timeout.unwrap_or(self.settings.stall_timeout);
        let first_list = match (self.settings.initial_list, late) {
            (InitialList::Notify, _) | (_, true) => FirstList::Notify,
            (InitialList::Silent, false) if self.settings.record_silent_lists => FirstList::Quiet,
            (InitialList::Silent, false) => FirstList::Silent,
        };
        // One watcher per listed namespace rather than one over all namespaces filtered
        // here: a user who lists namespaces often has RBAC (a Role per namespace) only
        // for those, and the server then sends only what we keep.
        let scopes = if namespaced {
            spec.scopes()
        } else {
            vec![None]
        };
        let mut running = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let activity = Activity::new();
            let client = activity::tracked(&self.client, activity.clone());
            let api: Api<WatchedObject> = match &scope {
                Some(ns) => Api::namespaced_with(client, ns, &resource),
                None => Api::all_with(client, &resource),
            };
            // MostRecent (the default) list semantic: a list served from a stale watch
            // cache would make objects look deleted and then added again.
            let mut config = watcher::Config::default()
                .page_size(self.settings.page_size)
                .timeout(server_timeout(stall_timeout));
            if let Some(labels) = spec
                .label_selector
                .as_deref()
                .filter(|s| !s.trim().is_empty())
            {
                config = config.labels(labels);
            }
            if let Some(fields) = spec.server_field_selector(scope.as_deref()) {
                config = config.fields(&fields);
            }
            let differ = Differ::new(
                resource.clone(),
                id.to_string(),
                spec.events.clone(),
                if scope.is_none() {
                    spec.ignore_namespaces.clone()
                } else {
                    Vec::new()
                },
                first_list,
                (super::secrets::is_secret(&resource)
                    && spec.secret_data == super::SecretData::Redact)
                    .then(|| self.settings.secret_key.clone()),
            );
            let status = Arc::new(ScopeStatus::new(
                scope.clone(),
                activity,
                differ.reader(),
                self.progress.clone(),
            ));
            let scoped = namespaced && !spec.namespaces.is_empty();
            let resume = self
                .settings
                .checkpoints
                .as_ref()
                .and_then(|c| c.get(&super::stream_key(id, scope.as_deref(), scoped)));
            let task = ScopeWatch {
                api,
                config,
                differ,
                tx: self.tx.clone(),
                status: status.clone(),
                stall_timeout,
                settings: self.settings.clone(),
                resume,
            };
            let span = tracing::info_span!(
                "watch",
                watch = %id,
                gvk = %gvk,
                namespace = scope.as_deref().unwrap_or("*"),
            );
            let handle = tokio::spawn(task.run().instrument(span));
            running.push(Scope {
                status,
                _task: AbortOnDrop(handle),
            });
        }
        self.cache.insert(CachedType {
            watch: id.to_string(),
            resource: resource.clone(),
            namespaced,
            stores: running.iter().map(|s| s.status.store.clone()).collect(),
        });
        tracing::info!(watch = %id, gvk = %gvk, scopes = running.len(), first_list = ?first_list, "watch started");
        Running {
            resource,
            namespaced,
            scopes: running,
        }
    }

    async fn refresh(&self) -> Result<()> {
        let (_, generation) = self.resolver.snapshot();
        let discovery = self.resolver.refresh_after(generation).await?;

        // Running watches whose type went away (its CRD was deleted) wait again.
        {
            let mut watches = lock(&self.watches);
            for (id, entry) in watches.iter_mut() {
                if let EntryState::Running(r) = &entry.state
                    && !still_served(&discovery, &r.resource)
                {
                    tracing::warn!(watch = %id, gvk = %entry.spec.gvk(), "type no longer served; watch pending");
                    self.cache.remove(id);
                    entry.state = EntryState::Pending {
                        reason: "the type is no longer served".into(),
                    };
                }
            }
        }

        // Pending watches: resolve outside the lock (short names need requests), then
        // apply if the watch is still the one we resolved.
        let pending: Vec<(String, u64, WatchSpec)> = lock(&self.watches)
            .iter()
            .filter(|(_, e)| matches!(e.state, EntryState::Pending { .. }))
            .map(|(id, e)| (id.clone(), e.serial, e.spec.clone()))
            .collect();
        for (id, serial, spec) in pending {
            let resolution = self.resolver.resolve(&discovery, &spec).await;
            let mut watches = lock(&self.watches);
            let Some(entry) = watches.get_mut(&id) else {
                continue;
            };
            if entry.serial != serial || !matches!(entry.state, EntryState::Pending { .. }) {
                continue;
            }
            entry.state = match resolution {
                Ok(Resolution::Found {
                    resource,
                    namespaced,
                }) => EntryState::Running(self.start(&id, &spec, resource, namespaced, true)),
                Ok(Resolution::Pending(reason)) => EntryState::Pending { reason },
                Err(e) => {
                    tracing::error!(watch = %id, error = %e, "watch failed");
                    EntryState::Failed {
                        reason: e.to_string(),
                    }
                }
            };
        }
        Ok(())
    }
}

// === impl Entry ===

impl Entry {
    fn status(&self, id: &str) -> WatchStatus {
        let (state, reason, resource, scopes) = match &self.state {
            EntryState::Pending { reason } => {
                (WatchState::Pending, Some(reason.clone()), None, Vec::new())
            }
            EntryState::Failed { reason } => {
                (WatchState::Failed, Some(reason.clone()), None, Vec::new())
            }
            EntryState::Running(r) => (
                WatchState::Running,
                None,
                Some(ResourceInfo {
                    group: r.resource.group.clone(),
                    version: r.resource.version.clone(),
                    kind: r.resource.kind.clone(),
                    plural: r.resource.plural.clone(),
                    namespaced: r.namespaced,
                }),
                r.scopes
                    .iter()
                    .map(|s| s.status.report())
                    .collect::<Vec<_>>(),
            ),
        };
        WatchStatus {
            id: id.to_string(),
            ready: state == WatchState::Running && scopes.iter().all(|s| s.synced),
            state,
            reason,
            resource,
            scopes,
            spec: self.spec.clone(),
        }
    }
}
