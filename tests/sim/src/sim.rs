//! [`Simulator::builder`] and the [`Sim`] handle: start, in-process object helpers,
//! fault injection and what tests observe.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{Api, Preconditions};
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::fixtures;
use crate::kubeconfig;
use crate::object::Obj;
use crate::patch::PatchKind;
use crate::server::{self, Server};
use crate::state::{Config, RequestRecord, Shared};
use crate::store::Change;
use crate::types::ResourceType;

/// Defaults, with the reason for each.
pub mod defaults {
    use std::time::Duration;

    /// Real servers send a bookmark about once a minute; tests want them sooner.
    pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
    /// Events kept before old resourceVersions expire (a real watch cache keeps
    /// hundreds to thousands per type; etcd compacts every five minutes).
    pub const HISTORY: usize = 10_000;
    /// The token written to kubeconfigs.
    pub const TOKEN: &str = "herald-sim-token";
}

/// Entry point: `Simulator::builder().start().await`.
pub struct Simulator;

impl Simulator {
    /// A builder with the defaults: `127.0.0.1:0`, bookmarks every second, 10,000 events
    /// of history, no page size cap, token accepted but not required.
    pub fn builder() -> SimBuilder {
        SimBuilder {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: Config {
                bookmark_interval: defaults::BOOKMARK_INTERVAL,
                page_size_cap: None,
                token: defaults::TOKEN.to_string(),
                require_token: false,
            },
            history: defaults::HISTORY,
            require_namespaces: false,
            seed_namespaces: true,
            real_writes: false,
        }
    }
}

/// Options for a simulator; finish with [`SimBuilder::start`].
#[must_use]
pub struct SimBuilder {
    bind: SocketAddr,
    config: Config,
    history: usize,
    require_namespaces: bool,
    seed_namespaces: bool,
    real_writes: bool,
}

impl SimBuilder {
    /// Where to listen. Default `127.0.0.1:0` (any free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// How often watches that allow bookmarks get one. Default 1 s.
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.config.bookmark_interval = every;
        self
    }

    /// How many events of history to keep; older resourceVersions answer 410. Default 10,000.
    pub fn history_retention(mut self, events: usize) -> Self {
        self.history = events;
        self
    }

    /// Largest page a LIST returns whatever its `limit` (servers may return less).
    pub fn page_size_cap(mut self, items: usize) -> Self {
        self.config.page_size_cap = Some(items);
        self
    }

    /// The bearer token kubeconfigs carry.
    pub fn token(mut self, token: &str) -> Self {
        self.config.token = token.to_string();
        self
    }

    /// Answer 401 to requests without the token. Default off.
    pub fn require_token(mut self, on: bool) -> Self {
        self.config.require_token = on;
        self
    }

    /// Refuse (404) namespaced objects in namespaces that do not exist. Default off.
    pub fn require_namespaces(mut self, on: bool) -> Self {
        self.require_namespaces = on;
        self
    }

    /// Write objects as a real API server does where it matters for a client's cost:
    /// `metadata.managedFields` replaced by the server's own record of every field the
    /// writer set (a ~2.8 KB tree for the fixture pod), and a new pod's status reset to
    /// `Pending`. Default off (objects are kept as written).
    pub fn real_writes(mut self, on: bool) -> Self {
        self.real_writes = on;
        self
    }

    /// Create `default`, `kube-system`, `kube-public` and `kube-node-lease` at start, as
    /// a real cluster has them. Default on.
    pub fn seed_namespaces(mut self, on: bool) -> Self {
        self.seed_namespaces = on;
        self
    }

    /// Binds and starts serving.
    ///
    /// # Errors
    /// [`Error::Bind`] if the address cannot be bound.
    pub async fn start(self) -> Result<Sim> {
        let listener = server::bind(self.bind)?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.bind,
            source,
        })?;
        let shared = Arc::new(Shared {
            api: Api::new(self.history, self.require_namespaces).with_real_writes(self.real_writes),
            faults: Faults::default(),
            reviews: Default::default(),
            config: self.config,
            requests: Mutex::new(Vec::new()),
            open_watches: Default::default(),
            addr: Mutex::new(addr),
        });
        let sim = Sim {
            shared,
            server: Arc::new(Server::default()),
        };
        if self.seed_namespaces {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                sim.create("namespaces", json!({"metadata": {"name": ns}}))
                    .await?;
            }
        }
        sim.server.serve(sim.shared.clone(), listener);
        Ok(sim)
    }
}

/// A running simulator. Clones share it; it stops when the last clone is dropped.
///
/// Object helpers take a resource the way kubectl does (`pods`, `po`, `Pod`,
/// `deployments.apps`, `apps/v1/deployments`) and a namespace, where `""` means
/// cluster-scoped (or, for [`Sim::list`], all namespaces). They go through the same
/// store as HTTP requests and notify watches the same way.
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Shared>,
    server: Arc<Server>,
}

impl Sim {
    // === where it is ===

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr()
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The bearer token it accepts.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// A kubeconfig for this simulator (default namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.url(), self.token(), "default")
    }

    /// Writes [`Sim::kubeconfig_yaml`] to `path`.
    ///
    /// # Errors
    /// [`Error::Kubeconfig`] if the file cannot be written.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    // === types ===

    /// Serves a new resource type (no CRD object is created).
    pub fn add_resource(&self, rt: ResourceType) {
        self.shared.api.registry_mut().add(rt);
    }

    /// Stops serving a type added with [`Sim::add_resource`]; its watches end.
    pub fn remove_resource(&self, group: &str, version: &str, plural: &str) -> bool {
        let removed = self
            .shared
            .api
            .registry_mut()
            .remove(group, version, plural);
        self.shared.api.store.poke();
        removed
    }

    fn resolve(&self, resource: &str) -> Result<ResourceType> {
        self.shared
            .api
            .registry()
            .resolve(resource)
            .cloned()
            .ok_or_else(|| Error::UnknownResource(resource.to_string()))
    }

    // === objects ===

    fn namespace_of(rt: &ResourceType, obj: &Value) -> String {
        if !rt.namespaced {
            return String::new();
        }
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string()
    }

    /// Creates an object; its namespace comes from `metadata.namespace` (default `default`).
    pub async fn create(&self, resource: &str, obj: Value) -> Result<Value> {
        let rt = self.resolve(resource)?;
        let ns = Self::namespace_of(&rt, &obj);
        let o = self.shared.api.create(&rt, &ns, obj, false)?;
        Ok(o.to_value(&rt.api_version(), &rt.kind))
    }

    /// Reads an object.
    pub async fn get(&self, resource: &str, namespace: &str, name: &str) -> Result<Value> {
        let rt = self.resolve(resource)?;
        let o = self.shared.api.get(&rt, namespace, name)?;
        Ok(o.to_value(&rt.api_version(), &rt.kind))
    }

    /// Replaces an object (a `metadata.resourceVersion` in `obj` must be current).
    pub async fn update(&self, resource: &str, obj: Value) -> Result<Value> {
        self.put(resource, obj, false).await
    }

    /// As [`Sim::update`], returning only the new `resourceVersion`: the
    /// stored object is not decoded back into a tree, which a load generator
    /// writing thousands of objects a second would pay for nothing.
    pub async fn update_version(&self, resource: &str, obj: Value) -> Result<String> {
        let (o, _) = self.put_obj(resource, obj, false)?;
        Ok(o.rv.to_string())
    }

    /// Replaces an object's status (the `/status` subresource).
    pub async fn update_status(&self, resource: &str, obj: Value) -> Result<Value> {
        self.put(resource, obj, true).await
    }

    async fn put(&self, resource: &str, obj: Value, status: bool) -> Result<Value> {
        let (o, rt) = self.put_obj(resource, obj, status)?;
        Ok(o.to_value(&rt.api_version(), &rt.kind))
    }

    fn put_obj(
        &self,
        resource: &str,
        obj: Value,
        status: bool,
    ) -> Result<(Arc<Obj>, ResourceType)> {
        let rt = self.resolve(resource)?;
        let ns = Self::namespace_of(&rt, &obj);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let o = self
            .shared
            .api
            .update(&rt, &ns, &name, obj, status, false)?;
        Ok((o, rt))
    }

    async fn patch(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: Value,
    ) -> Result<Value> {
        let rt = self.resolve(resource)?;
        let (o, _) = self
            .shared
            .api
            .patch(&rt, namespace, name, kind, &patch, false, false)?;
        Ok(o.to_value(&rt.api_version(), &rt.kind))
    }

    /// Applies a JSON merge patch (RFC 7386).
    pub async fn patch_merge(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> Result<Value> {
        self.patch(resource, namespace, name, PatchKind::Merge, patch)
            .await
    }

    /// Applies a JSON patch (RFC 6902), `patch` being the array of operations.
    pub async fn patch_json(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> Result<Value> {
        self.patch(resource, namespace, name, PatchKind::Json, patch)
            .await
    }

    /// Deletes an object and returns its last state (finalizers may keep it, marked
    /// for deletion, until they are removed).
    pub async fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Value> {
        let rt = self.resolve(resource)?;
        let (o, _) =
            self.shared
                .api
                .delete(&rt, namespace, name, &Preconditions::default(), false)?;
        Ok(o.to_value(&rt.api_version(), &rt.kind))
    }

    /// Every object of a type in `namespace` (`""`: all), in key order.
    pub async fn list(&self, resource: &str, namespace: &str) -> Result<Vec<Value>> {
        let rt = self.resolve(resource)?;
        let ns = (!namespace.is_empty()).then_some(namespace);
        let (objs, _) = self.shared.api.store.snapshot(&rt.group_resource(), ns);
        let (av, kind) = (rt.api_version(), rt.kind.clone());
        Ok(objs.iter().map(|o| o.to_value(&av, &kind)).collect())
    }

    /// Number of objects of a type.
    pub fn count(&self, resource: &str) -> Result<usize> {
        let rt = self.resolve(resource)?;
        Ok(self.shared.api.store.count(&rt.group_resource()))
    }

    /// Creates `n` pods of about 6.6 KB named `pod-00000`… in `namespace`, labelled
    /// `app=seed` and `shard=<n % 10>`.
    pub async fn seed_pods(&self, namespace: &str, n: usize) -> Result<()> {
        let rt = self.resolve("pods")?;
        // Build the big object once; each pod is a clone with its own name and labels.
        let template = fixtures::pod(namespace, "template", &[("app", "seed"), ("shard", "0")]);
        for i in 0..n {
            let mut p = template.clone();
            p["metadata"]["name"] = json!(format!("pod-{i:05}"));
            p["metadata"]["labels"]["shard"] = json!((i % 10).to_string());
            self.shared.api.create(&rt, namespace, p, false)?;
            if i % 1000 == 999 {
                // Let watches and requests run while seeding big sets.
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.api.store.current_rv()
    }

    // === faults ===

    /// Ends every open watch stream cleanly.
    pub fn cut_watches(&self) {
        self.shared.faults.cut_watches();
    }

    /// Every watch open now writes half of its next event, then its connection is aborted.
    pub fn close_mid_chunk(&self) {
        self.shared.faults.close_mid_chunk();
    }

    /// Answers the next `n` requests with `status` (e.g. 500, or 429 with `Retry-After: 1`)
    /// and a `Status` body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared.faults.fail_next(n, status);
    }

    /// While on, watches (open and new) send nothing, not even headers or bookmarks;
    /// connections stay open.
    pub fn stall_watches(&self, stalled: bool) {
        self.shared.faults.stall_watches(stalled);
    }

    /// Forbids (or allows again) list and watch of `resource` (a plural), with the
    /// 403 Status a real API server's RBAC answers.
    pub fn forbid(&self, resource: &str, forbidden: bool) {
        self.shared.faults.forbid(resource, forbidden);
    }

    /// `token` authenticates as `user` in `groups` (TokenReview).
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        self.shared.reviews.add_token(token, user, groups);
    }

    /// `user` may do `verbs` on `resource` (a plural) of `group` in `namespace`
    /// (None: everywhere), as SubjectAccessReview answers.
    pub fn allow(
        &self,
        user: &str,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) {
        self.shared
            .reviews
            .allow(user, verbs, group, resource, namespace);
    }

    /// Takes away every permission [`Sim::allow`] gave `user`.
    pub fn revoke(&self, user: &str) {
        self.shared.reviews.revoke(user);
    }

    /// Drops all history: every resourceVersion before now answers 410.
    pub fn compact(&self) {
        self.shared.api.store.compact();
    }

    /// Closes the listener and every connection.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// Serves again on the same port, with the same state.
    ///
    /// # Errors
    /// [`Error::Bind`] if the port cannot be bound again.
    pub async fn resume(&self) -> Result<()> {
        if self.server.is_running() {
            return Ok(());
        }
        let listener = server::bind(self.addr())?;
        self.server.serve(self.shared.clone(), listener);
        Ok(())
    }

    /// Restarts as a real API server does: every connection closes, the same port
    /// serves the same objects, and the watch cache starts at the current revision,
    /// so a watch resumed from an older resourceVersion gets `410 Gone` and must
    /// relist. ([`Sim::stop`] then [`Sim::resume`] is an outage that keeps history.)
    ///
    /// # Errors
    /// [`Error::Bind`] if the port cannot be bound again.
    pub async fn restart(&self) -> Result<()> {
        self.stop().await;
        self.compact();
        self.resume().await
    }

    // === observations ===

    /// Every write so far, in order.
    pub fn change_log(&self) -> Vec<Change> {
        self.shared.api.store.change_log()
    }

    /// Every request received so far (method, path and query).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Watch streams open now.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Waits until `pred(open_watches())` holds; false after `timeout`.
    pub async fn wait_for_watches(&self, pred: impl Fn(usize) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(self.open_watches()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn update_version_writes_as_update_does_and_returns_the_new_version() {
        let sim = Simulator::builder().start().await.expect("simulator");
        let created = sim
            .create("pods", fixtures::pod("default", "web", &[("app", "web")]))
            .await
            .expect("create");
        let mut changed = created.clone();
        changed["metadata"]["labels"]["app"] = json!("api");
        let rv = sim
            .update_version("pods", changed.clone())
            .await
            .expect("update");
        let stored = sim.get("pods", "default", "web").await.expect("get");
        assert_eq!(stored["metadata"]["resourceVersion"], json!(rv));
        assert_eq!(stored["metadata"]["labels"]["app"], "api");
        assert_ne!(
            Some(rv.as_str()),
            created["metadata"]["resourceVersion"].as_str()
        );
        // The version the write was based on is stale now: a conflict.
        changed["metadata"]["labels"]["app"] = json!("db");
        assert!(sim.update_version("pods", changed).await.is_err());
    }
}
