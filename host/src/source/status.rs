//! What a watch reports about itself: [`WatchStatus`], for the admin API, `/readyz`
//! and metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::cache::Store;
use serde::{Serialize, Serializer};

use super::activity::Activity;
use super::spec::WatchSpec;

/// Where a watch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchState {
    /// The type is not (yet) served; discovery is retried every refresh.
    Pending,
    /// Watching.
    Running,
    /// The spec cannot work against this server (e.g. the type does not allow watch).
    Failed,
}

/// The resolved type of a running watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name, as in URLs.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

/// One namespace scope of a watch (all namespaces, or one listed namespace).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeReport {
    /// The namespace, or `None` for all namespaces.
    pub namespace: Option<String>,
    /// The first list has completed.
    pub synced: bool,
    /// When the server last sent anything for this watch: an event, a bookmark or a
    /// list page.
    #[serde(serialize_with = "rfc3339")]
    pub last_seen: Option<SystemTime>,
    /// Objects in the cache.
    pub objects: usize,
    /// Lists done: the first, plus relists (after 410 Gone or a restart).
    pub lists: u64,
    /// Restarts because the watch went silent past its stall timeout.
    pub restarts: u64,
    /// Failed requests (each is retried after a backoff).
    pub errors: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// A watch and how it is doing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchStatus {
    /// The watch id.
    pub id: String,
    /// Pending, running or failed.
    pub state: WatchState,
    /// Why it is pending or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Running and every scope has completed its first list.
    pub ready: bool,
    /// The resolved type, once running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// One entry per namespace scope, once running.
    pub scopes: Vec<ScopeReport>,
    /// The spec as given.
    pub spec: WatchSpec,
}

fn rfc3339<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok()) {
        Some(ts) => s.collect_str(&ts),
        None => s.serialize_none(),
    }
}

/// Live counters of one scope, shared by its task and the status readers.
#[derive(Debug)]
pub(crate) struct ScopeStatus {
    pub(crate) namespace: Option<String>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) store: Store,
    synced: AtomicBool,
    lists: AtomicU64,
    restarts: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Bumped when the first list completes: waiters on readiness wake.
    progress: tokio::sync::watch::Sender<u64>,
}

impl ScopeStatus {
    pub(crate) fn new(
        namespace: Option<String>,
        activity: Arc<Activity>,
        store: Store,
        progress: tokio::sync::watch::Sender<u64>,
    ) -> Self {
        Self {
            namespace,
            activity,
            store,
            synced: AtomicBool::new(false),
            lists: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            progress,
        }
    }

    pub(crate) fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    pub(crate) fn set_synced(&self) {
        if !self.synced.swap(true, Ordering::Relaxed) {
            self.progress.send_modify(|n| *n += 1);
        }
    }

    pub(crate) fn listing(&self) {
        self.lists.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    pub(crate) fn report(&self) -> ScopeReport {
        ScopeReport {
            namespace: self.namespace.clone(),
            synced: self.synced(),
            last_seen: self.activity.last_seen(),
            objects: self.store.len(),
            lists: self.lists.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}
