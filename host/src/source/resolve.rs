//! Discovery: resolving a [`WatchSpec`]'s group, version and kind (or plural, or short
//! name) to an `ApiResource`, and refreshing what the server serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use kube::api::ApiResource;
use kube::discovery::{ApiCapabilities, Scope, verbs};
use kube::{Client, Discovery};

use crate::change::Gvk;

use super::error::{Error, Result};
use super::spec::WatchSpec;

/// How long one discovery run (or one resource-list request) may take. The client has
/// no read timeout (watches are long-lived), so without this a server that accepts the
/// connection and never answers would hold the refresh, and `add`, forever.
pub(crate) const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What discovery says about a spec.
#[derive(Debug, Clone)]
pub(crate) enum Resolution {
    /// Served, listable and watchable.
    Found {
        resource: ApiResource,
        namespaced: bool,
    },
    /// Not served (yet): a CRD may still be installed. The reason, for the status.
    Pending(String),
}

/// The latest discovery, refreshed on demand and periodically.
pub(crate) struct Resolver {
    client: Client,
    snapshot: RwLock<Option<Arc<Discovery>>>,
    generation: AtomicU64,
    /// One discovery run at a time; callers that waited reuse the run they waited for.
    running: tokio::sync::Mutex<()>,
}

impl Resolver {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            snapshot: RwLock::new(None),
            generation: AtomicU64::new(0),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The latest discovery (if any ran) and its generation.
    pub(crate) fn snapshot(&self) -> (Option<Arc<Discovery>>, u64) {
        let snap = self
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (snap, self.generation.load(Ordering::Acquire))
    }

    /// Runs discovery unless one newer than generation `seen` has completed meanwhile.
    ///
    /// # Errors
    /// [`Error::Discovery`] when the server cannot be asked.
    pub(crate) async fn refresh_after(&self, seen: u64) -> Result<Arc<Discovery>> {
        let _running = self.running.lock().await;
        if let (Some(snap), generation) = self.snapshot()
            && generation > seen
        {
            return Ok(snap);
        }
        let run = async {
            // Aggregated discovery is two requests; servers older than 1.26 lack it.
            match Discovery::new(self.client.clone()).run_aggregated().await {
                Ok(d) => Ok(d),
                Err(error) => {
                    tracing::debug!(%error, "aggregated discovery failed; trying per-group discovery");
                    Discovery::new(self.client.clone()).run().await
                }
            }
        };
        let discovery = tokio::time::timeout(DISCOVERY_TIMEOUT, run)
            .await
            .map_err(|_| Error::DiscoveryTimeout(DISCOVERY_TIMEOUT))?
            .map_err(Error::Discovery)?;
        let discovery = Arc::new(discovery);
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(discovery.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(discovery)
    }

    /// Resolves `spec` against the latest discovery, refreshing it once if the type
    /// is not in it. A failed discovery makes the spec pending, not failed.
    ///
    /// # Errors
    /// [`Error::NotWatchable`] and [`Error::ClusterScoped`]: the type exists but the
    /// spec cannot work.
    pub(crate) async fn resolve_now(&self, spec: &WatchSpec) -> Result<Resolution> {
        let (snap, generation) = self.snapshot();
        if let Some(d) = &snap
            && let found @ Resolution::Found { .. } = self.resolve(d, spec).await?
        {
            return Ok(found);
        }
        match self.refresh_after(generation).await {
            Ok(d) => self.resolve(&d, spec).await,
            Err(e) => Ok(Resolution::Pending(format!("{e}: {}", source_of(&e)))),
        }
    }

    /// Resolves `spec` against `discovery`: the kind, plural or singular name first,
    /// then short names (which only the per-version resource lists carry).
    ///
    /// # Errors
    /// As [`Resolver::resolve_now`].
    pub(crate) async fn resolve(
        &self,
        discovery: &Discovery,
        spec: &WatchSpec,
    ) -> Result<Resolution> {
        let group = spec.group();
        let shown = if group.is_empty() { "core" } else { group };
        let Some(g) = discovery.get(group) else {
            return Ok(Resolution::Pending(format!(
                "API group {shown} is not served"
            )));
        };
        let versions: Vec<String> = match &spec.version {
            Some(v) if g.versions().any(|x| x == v) => vec![v.clone()],
            Some(v) => {
                return Ok(Resolution::Pending(format!(
                    "version {v} of API group {shown} is not served"
                )));
            }
            None => {
                let preferred = g.preferred_version_or_latest().to_string();
                std::iter::once(preferred.clone())
                    .chain(
                        g.versions()
                            .filter(|v| **v != preferred)
                            .map(str::to_string),
                    )
                    .collect()
            }
        };
        let name = spec.kind.trim();
        for v in &versions {
            if let Some((ar, caps)) = g.versioned_resources(v).into_iter().find(|(ar, _)| {
                ar.kind.eq_ignore_ascii_case(name) || ar.plural.eq_ignore_ascii_case(name)
            }) {
                return found(ar, &caps, spec);
            }
        }
        for v in &versions {
            let list = if group.is_empty() {
                tokio::time::timeout(DISCOVERY_TIMEOUT, self.client.list_core_api_resources(v))
                    .await
            } else {
                let gv = format!("{group}/{v}");
                tokio::time::timeout(DISCOVERY_TIMEOUT, self.client.list_api_group_resources(&gv))
                    .await
            };
            let list = match list {
                Ok(Ok(list)) => list,
                Ok(Err(error)) => {
                    tracing::debug!(%error, group = shown, version = %v, "listing resources for short names failed");
                    continue;
                }
                Err(_) => {
                    tracing::debug!(group = shown, version = %v, "listing resources for short names timed out");
                    continue;
                }
            };
            let alias = list.resources.iter().find(|r| {
                !r.name.contains('/')
                    && (r.singular_name.eq_ignore_ascii_case(name)
                        || r.short_names
                            .iter()
                            .flatten()
                            .any(|s| s.eq_ignore_ascii_case(name)))
            });
            if let Some(r) = alias
                && let Some((ar, caps)) = g
                    .versioned_resources(v)
                    .into_iter()
                    .find(|(ar, _)| ar.plural == r.name)
            {
                return found(ar, &caps, spec);
            }
        }
        Ok(Resolution::Pending(format!(
            "no kind, plural or short name {name:?} in API group {shown} version {}",
            versions.join(", ")
        )))
    }
}

fn found(resource: ApiResource, caps: &ApiCapabilities, spec: &WatchSpec) -> Result<Resolution> {
    let gvk = Gvk::from(&resource);
    if !(caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::WATCH)) {
        return Err(Error::NotWatchable { gvk });
    }
    let namespaced = caps.scope == Scope::Namespaced;
    if !namespaced && !spec.namespaces.is_empty() {
        return Err(Error::ClusterScoped { gvk });
    }
    Ok(Resolution::Found {
        resource,
        namespaced,
    })
}

/// Whether `discovery` still serves `resource`.
pub(crate) fn still_served(discovery: &Discovery, resource: &ApiResource) -> bool {
    discovery.get(&resource.group).is_some_and(|g| {
        g.versions().any(|v| v == resource.version)
            && g.versioned_resources(&resource.version)
                .iter()
                .any(|(ar, _)| ar.plural == resource.plural)
    })
}

fn source_of(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}
