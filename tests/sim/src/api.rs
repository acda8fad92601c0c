//! The write and read verbs (get, create, update, patch, delete) over the store, with
//! the server-side rules a real API server applies: generated names and uids,
//! generation bumps, optimistic concurrency, finalizers, namespace and CRD cascades.
//! Shared by the HTTP front end and the in-process helpers.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Map, Value, json};

use crate::crd::{self, CRD_GROUP, CRD_PLURAL};
use crate::error::ApiError;
use crate::ids;
use crate::managed;
use crate::object::{Key, Obj};
use crate::patch::{self, PatchKind};
use crate::registry::Registry;
use crate::store::{ChangeType, Store, Write, Written};
use crate::types::{GroupResource, ResourceType};

/// `DeleteOptions.preconditions`.
#[derive(Clone, Debug, Default)]
pub struct Preconditions {
    /// The object must have this uid.
    pub uid: Option<String>,
    /// The object must be at this resourceVersion.
    pub resource_version: Option<String>,
}

/// Store plus the served types.
pub struct Api {
    /// Objects and history.
    pub store: Store,
    registry: RwLock<Registry>,
    require_namespaces: bool,
    /// Write `managedFields` and reset a new pod's status as a real server does.
    real_writes: bool,
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == CRD_GROUP && rt.plural == CRD_PLURAL
}

fn is_namespace(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "namespaces"
}

/// The object at `path` under `v`, made (replacing whatever else is there) if missing.
fn obj_at<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    match v {
        Value::Object(m) => match path.split_first() {
            None => m,
            Some((key, rest)) => obj_at(m.entry(key.to_string()).or_insert(Value::Null), rest),
        },
        other => {
            *other = Value::Object(Map::new());
            obj_at(other, path)
        }
    }
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    obj_at(v, &["metadata"])
}

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")?.get(field)?.as_str()
}

/// Everything except metadata and status: a change here bumps `metadata.generation`.
fn spec_differs(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(a) != strip(b)
}

fn check_type_meta(rt: &ResourceType, v: &Value) -> Result<(), ApiError> {
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was not a JSON object",
        ));
    }
    if let Some(av) = v.get("apiVersion").and_then(Value::as_str)
        && av != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(k) = v.get("kind").and_then(Value::as_str)
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

/// DNS-1123 subdomain, which most kinds require of names.
fn check_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.kind,
            name,
            format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must \
                 consist of lower case alphanumeric characters, '-' or '.', and must start and \
                 end with an alphanumeric character"
            ),
        ))
    }
}

impl Api {
    /// An empty API keeping `retention` events of history.
    pub fn new(retention: usize, require_namespaces: bool) -> Self {
        Self {
            store: Store::new(retention),
            registry: RwLock::new(Registry::default()),
            require_namespaces,
            real_writes: false,
        }
    }

    /// With `on`, writes get `managedFields` as a real server's (see `managed`), and a
    /// new pod's status is reset to `Pending`.
    pub fn with_real_writes(mut self, on: bool) -> Self {
        self.real_writes = on;
        self
    }

    /// The served types.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The served types, for changing.
    pub fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    fn selectable(&self, gr: &GroupResource) -> &'static [&'static str] {
        self.registry()
            .by_group_resource(gr)
            .map(|t| t.selectable_fields())
            .unwrap_or_default()
    }

    /// Reads one object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Arc<Obj>, ApiError> {
        let gr = rt.group_resource();
        self.store
            .get(&gr, &(ns.to_string(), name.to_string()))
            .ok_or_else(|| ApiError::not_found(&gr, name))
    }

    /// Sets `metadata.namespace` from the path (namespaced types) or clears it.
    fn place(&self, rt: &ResourceType, path_ns: &str, v: &mut Value) -> Result<String, ApiError> {
        let m = meta_mut(v);
        if !rt.namespaced {
            m.remove("namespace");
            return Ok(String::new());
        }
        let body_ns = m
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !body_ns.is_empty() && body_ns != path_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if path_ns.is_empty() {
            return Err(ApiError::method_not_allowed());
        }
        m.insert("namespace".into(), json!(path_ns));
        Ok(path_ns.to_string())
    }

    /// With `require_namespaces`, a namespaced object needs its namespace to exist.
    /// Must not be called with the store locked.
    fn check_namespace(&self, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if !self.require_namespaces || !rt.namespaced || ns.is_empty() {
            return Ok(());
        }
        let ns_gr = GroupResource {
            group: String::new(),
            resource: "namespaces".into(),
        };
        match self.store.get(&ns_gr, &(String::new(), ns.to_string())) {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found(&ns_gr, ns)),
        }
    }

    /// Validates and fills a new object; the resourceVersion is set at commit.
    fn prepare_create(
        &self,
        rt: &ResourceType,
        path_ns: &str,
        v: &mut Value,
    ) -> Result<Key, ApiError> {
        check_type_meta(rt, v)?;
        let ns = self.place(rt, path_ns, v)?;
        let m = meta_mut(v);
        let mut name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match m.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    name = format!("{prefix}{}", ids::name_suffix());
                    m.insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            }
        }
        check_name(rt, &name)?;
        for k in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
        m.insert("uid".into(), json!(ids::uid()));
        m.insert("creationTimestamp".into(), json!(ids::now_rfc3339()));
        m.insert("generation".into(), json!(1));
        let root = obj_at(v, &[]);
        root.insert("apiVersion".into(), json!(rt.api_version()));
        root.insert("kind".into(), json!(rt.kind));
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "namespaces") => {
                obj_at(v, &["spec"]).insert("finalizers".into(), json!(["kubernetes"]));
                obj_at(v, &[]).insert("status".into(), json!({"phase": "Active"}));
            }
            ("", "pods") if self.real_writes => {
                // The real server's PrepareForCreate: the kubelet writes a pod's status.
                let qos = v
                    .pointer("/status/qosClass")
                    .cloned()
                    .unwrap_or(json!("BestEffort"));
                obj_at(v, &[]).insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": qos}),
                );
            }
            ("", "pods") if v.pointer("/status/phase").is_none() => {
                obj_at(v, &["status"]).insert("phase".into(), json!("Pending"));
            }
            _ if is_crd(rt) => {
                crd::served_types(v)?;
                crd::set_established(v);
            }
            _ => {}
        }
        if self.real_writes {
            let now = meta_str(v, "creationTimestamp")
                .unwrap_or_default()
                .to_string();
            managed::stamp(v, &rt.api_version(), &now);
        }
        Ok((ns, name))
    }

    /// Creates an object (POST).
    pub fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut v: Value,
        dry_run: bool,
    ) -> Result<Arc<Obj>, ApiError> {
        let key = self.prepare_create(rt, ns, &mut v)?;
        self.check_namespace(rt, &key.0)?;
        let gr = rt.group_resource();
        let fields = rt.selectable_fields();
        let w = self.store.write(&gr, &rt.kind, &key, dry_run, |cur, rv| {
            if cur.is_some() {
                return Err(ApiError::already_exists(&gr, &key.1));
            }
            meta_mut(&mut v).insert("resourceVersion".into(), json!(rv.to_string()));
            Ok(Write::Put(Obj::from_value(v, fields)))
        })?;
        self.after_write(rt, &w, dry_run);
        Ok(w.obj)
    }

    /// Replaces an object (PUT), or only its status when `status` is set.
    ///
    /// # Errors
    /// `409 Conflict` when the body carries a resourceVersion other than the current one.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut v: Value,
        status: bool,
        dry_run: bool,
    ) -> Result<Arc<Obj>, ApiError> {
        check_type_meta(rt, &v)?;
        let body_name = meta_str(&v, "name").unwrap_or_default();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let ns = self.place(rt, ns, &mut v)?;
        let body_rv = meta_str(&v, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        let gr = rt.group_resource();
        let key = (ns, name.to_string());
        let w = self.store.write(&gr, &rt.kind, &key, dry_run, |cur, rv| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&gr, name))?;
            if !body_rv.is_empty() && body_rv != cur.rv.to_string() {
                return Err(ApiError::conflict(&gr, name));
            }
            let old = cur.to_value(&rt.api_version(), &rt.kind);
            let new = if status { with_status_of(&old, &v) } else { v };
            self.finish_update(rt, cur, &old, new, status, rv)
        })?;
        self.after_write(rt, &w, dry_run);
        Ok(w.obj)
    }

    /// Patches an object; an apply patch creates a missing one. Returns whether it
    /// created the object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        patch_body: &Value,
        status: bool,
        dry_run: bool,
    ) -> Result<(Arc<Obj>, bool), ApiError> {
        let gr = rt.group_resource();
        let ns = if rt.namespaced {
            ns.to_string()
        } else {
            String::new()
        };
        if rt.namespaced && ns.is_empty() {
            return Err(ApiError::method_not_allowed());
        }
        let key = (ns.clone(), name.to_string());
        if kind == PatchKind::Apply {
            self.check_namespace(rt, &ns)?;
        }
        let fields = rt.selectable_fields();
        let w = self.store.write(&gr, &rt.kind, &key, dry_run, |cur, rv| {
            let Some(cur) = cur else {
                if kind != PatchKind::Apply || status {
                    return Err(ApiError::not_found(&gr, name));
                }
                let mut v = json!({"metadata": {"name": name}});
                patch::apply(kind, &mut v, patch_body)?;
                self.prepare_create(rt, &ns, &mut v)?;
                if meta_str(&v, "name") != Some(name) {
                    return Err(ApiError::bad_request(
                        "the name of the object does not match the name on the URL",
                    ));
                }
                meta_mut(&mut v).insert("resourceVersion".into(), json!(rv.to_string()));
                return Ok(Write::Put(Obj::from_value(v, fields)));
            };
            let old = cur.to_value(&rt.api_version(), &rt.kind);
            let mut doc = old.clone();
            patch::apply(kind, &mut doc, patch_body)?;
            check_type_meta(rt, &doc)?;
            if let Some(prv) = meta_str(&doc, "resourceVersion")
                && !prv.is_empty()
                && prv != cur.rv.to_string()
            {
                return Err(ApiError::conflict(&gr, name));
            }
            let new = if status {
                with_status_of(&old, &doc)
            } else {
                doc
            };
            self.finish_update(rt, cur, &old, new, status, rv)
        })?;
        self.after_write(rt, &w, dry_run);
        let created = w.change == Some(ChangeType::Added);
        Ok((w.obj, created))
    }

    /// Applies the server's rules to an updated object and decides the write.
    fn finish_update(
        &self,
        rt: &ResourceType,
        cur: &Arc<Obj>,
        old: &Value,
        mut new: Value,
        status: bool,
        rv: u64,
    ) -> Result<Write, ApiError> {
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        let root = obj_at(&mut new, &[]);
        root.insert("apiVersion".into(), json!(rt.api_version()));
        root.insert("kind".into(), json!(rt.kind));
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let m = meta_mut(&mut new);
        for k in [
            "uid",
            "name",
            "namespace",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        m.insert("resourceVersion".into(), json!(cur.rv.to_string()));
        if is_crd(rt) && !status {
            // Status is the server's to set; the served versions may change.
            crd::served_types(&new)?;
            match old.get("status") {
                Some(s) => {
                    obj_at(&mut new, &[]).insert("status".into(), s.clone());
                }
                None => crd::set_established(&mut new),
            }
        }
        if !status && spec_differs(old, &new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        if self.real_writes && !status {
            // What a client sends is not kept: the server's record is compared, then
            // written anew for a change.
            match old.pointer("/metadata/managedFields") {
                Some(mf) => meta_mut(&mut new).insert("managedFields".into(), mf.clone()),
                None => meta_mut(&mut new).remove("managedFields"),
            };
            if &new != old {
                managed::stamp(&mut new, &rt.api_version(), &ids::now_rfc3339());
            }
        }
        if &new == old {
            // The real server writes nothing (and no event) for a no-op update.
            return Ok(Write::Unchanged(cur.clone()));
        }
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        let terminating = new.pointer("/metadata/deletionTimestamp").is_some();
        let finalizers_left = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let obj = Obj::from_value(new, rt.selectable_fields());
        if terminating && !finalizers_left && !is_namespace(rt) {
            // The last finalizer went: the deletion completes now.
            return Ok(Write::Delete(obj));
        }
        Ok(Write::Put(obj))
    }

    /// Registers or unregisters CRD types after a committed write.
    fn after_write(&self, rt: &ResourceType, w: &Written, dry_run: bool) {
        if dry_run || !is_crd(rt) {
            return;
        }
        match w.change {
            Some(ChangeType::Added | ChangeType::Modified) => {
                let v = w.obj.to_value(&rt.api_version(), &rt.kind);
                if let Ok(types) = crd::served_types(&v) {
                    self.registry_mut().set_crd(w.obj.name(), types);
                }
            }
            Some(ChangeType::Deleted) => self.drop_crd_types(w.obj.name()),
            None => {}
        }
    }

    fn drop_crd_types(&self, crd_name: &str) {
        let ids = self.registry_mut().remove_crd(crd_name);
        let Some((group, _, plural)) = ids.into_iter().next() else {
            return;
        };
        // Like the real server, deleting the definition deletes every instance.
        let gr = GroupResource {
            group,
            resource: plural,
        };
        for key in self.store.keys(&gr, None) {
            let _ = self.force_delete(&gr, &key);
        }
        self.store.poke();
    }

    /// Deletes an object, honouring preconditions and finalizers.
    ///
    /// Returns the object and whether it is gone (`false`: finalizers hold it).
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> Result<(Arc<Obj>, bool), ApiError> {
        let gr = rt.group_resource();
        let ns = if rt.namespaced {
            ns.to_string()
        } else {
            String::new()
        };
        let key = (ns, name.to_string());
        let now = ids::now_rfc3339();
        let w = self.store.write(&gr, &rt.kind, &key, dry_run, |cur, rv| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&gr, name))?;
            if let Some(uid) = &pre.uid
                && *uid != cur.uid
            {
                let mut e = ApiError::conflict(&gr, name);
                e.message = format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    cur.uid
                );
                return Err(e);
            }
            if let Some(prv) = &pre.resource_version
                && *prv != cur.rv.to_string()
            {
                let mut e = ApiError::conflict(&gr, name);
                e.message = format!(
                    "Precondition failed: ResourceVersion in precondition: {prv}, ResourceVersion in object meta: {}",
                    cur.rv
                );
                return Err(e);
            }
            let mut v = cur.to_value(&rt.api_version(), &rt.kind);
            let held = is_namespace(rt)
                || v.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            if held {
                if v.pointer("/metadata/deletionTimestamp").is_some() {
                    return Ok(Write::Unchanged(cur.clone()));
                }
                let m = meta_mut(&mut v);
                m.insert("deletionTimestamp".into(), json!(now));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                m.insert("resourceVersion".into(), json!(rv.to_string()));
                if is_namespace(rt) {
                    obj_at(&mut v, &["status"]).insert("phase".into(), json!("Terminating"));
                }
                return Ok(Write::Put(Obj::from_value(v, rt.selectable_fields())));
            }
            meta_mut(&mut v).insert("resourceVersion".into(), json!(rv.to_string()));
            Ok(Write::Delete(Obj::from_value(v, rt.selectable_fields())))
        })?;
        if dry_run {
            return Ok((w.obj, !is_namespace(rt)));
        }
        if is_namespace(rt) {
            // The namespace controller's job, done at once: empty it, then remove it.
            for (gr, _kind, key) in self.store.keys_in_namespace(name) {
                let _ = self.force_delete(&gr, &key);
            }
            let ns_gr = rt.group_resource();
            let _ = self.force_delete(&ns_gr, &(String::new(), name.to_string()));
            return Ok((w.obj, false));
        }
        self.after_write(rt, &w, dry_run);
        let gone = w.change == Some(ChangeType::Deleted);
        Ok((w.obj, gone))
    }

    /// Deletes regardless of finalizers (cascades).
    fn force_delete(&self, gr: &GroupResource, key: &Key) -> Result<(), ApiError> {
        let fields = self.selectable(gr);
        let (api_version, kind) = {
            let reg = self.registry();
            match reg.by_group_resource(gr) {
                Some(t) => (t.api_version(), t.kind.clone()),
                None => (String::new(), String::new()),
            }
        };
        self.store.write(gr, &kind, key, false, |cur, rv| {
            let cur = cur.ok_or_else(|| ApiError::not_found(gr, &key.1))?;
            let mut v = cur.to_value(&api_version, &kind);
            meta_mut(&mut v).insert("resourceVersion".into(), json!(rv.to_string()));
            Ok(Write::Delete(Obj::from_value(v, fields)))
        })?;
        Ok(())
    }
}

/// `old` with the status of `new` (a status-subresource write).
fn with_status_of(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    let root = obj_at(&mut out, &[]);
    match new.get("status") {
        Some(s) => root.insert("status".into(), s.clone()),
        None => root.remove("status"),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(api: &Api) -> ResourceType {
        api.registry().resolve("pods").cloned().expect("pods")
    }

    #[test]
    fn create_update_conflict_delete() {
        let api = Api::new(100, false);
        let rt = pods(&api);
        let o = api
            .create(
                &rt,
                "ns",
                json!({"metadata": {"name": "a"}, "spec": {"x": 1}}),
                false,
            )
            .expect("create");
        assert_eq!(o.rv, 1);
        let e = api
            .create(&rt, "ns", json!({"metadata": {"name": "a"}}), false)
            .map(|_| ());
        assert_eq!(e.map_err(|e| e.reason), Err("AlreadyExists".into()));
        let stale = json!({"metadata": {"name": "a", "resourceVersion": "0"}, "spec": {"x": 2}});
        assert_eq!(
            api.update(&rt, "ns", "a", stale, false, false)
                .map_err(|e| e.code)
                .err(),
            Some(409)
        );
        let ok = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 2}});
        let o = api
            .update(&rt, "ns", "a", ok, false, false)
            .expect("update");
        let v = o.to_value("v1", "Pod");
        assert_eq!(v["metadata"]["generation"], 2);
        // Same content again: no write.
        let same = v.clone();
        let o2 = api
            .update(&rt, "ns", "a", same, false, false)
            .expect("noop");
        assert_eq!(o2.rv, o.rv);
        let (d, gone) = api
            .delete(&rt, "ns", "a", &Preconditions::default(), false)
            .expect("delete");
        assert!(gone);
        assert_eq!(d.rv, 3);
        assert_eq!(api.get(&rt, "ns", "a").map_err(|e| e.code).err(), Some(404));
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        let api = Api::new(100, false);
        let rt = pods(&api);
        let o = api
            .create(
                &rt,
                "ns",
                json!({"metadata": {"name": "a"}, "status": "weird"}),
                false,
            )
            .expect("create");
        assert_eq!(o.to_value("v1", "Pod")["status"]["phase"], "Pending");
        let e = api
            .create(&rt, "ns", json!({"metadata": "nope"}), false)
            .map(|_| ());
        assert_eq!(e.map_err(|e| e.code), Err(422));
        let ns = api.registry().resolve("namespaces").cloned().expect("ns");
        api.create(
            &ns,
            "",
            json!({"metadata": {"name": "n"}, "spec": 1, "status": []}),
            false,
        )
        .expect("namespace");
        let (_, gone) = api
            .delete(&ns, "", "n", &Preconditions::default(), false)
            .expect("delete");
        assert!(!gone);
    }

    #[test]
    fn finalizers_hold_deletion() {
        let api = Api::new(100, false);
        let rt = pods(&api);
        api.create(
            &rt,
            "ns",
            json!({"metadata": {"name": "a", "finalizers": ["x"]}}),
            false,
        )
        .expect("create");
        let (_, gone) = api
            .delete(&rt, "ns", "a", &Preconditions::default(), false)
            .expect("delete");
        assert!(!gone);
        let p = json!({"metadata": {"finalizers": null}});
        api.patch(&rt, "ns", "a", PatchKind::Merge, &p, false, false)
            .expect("patch");
        assert!(api.get(&rt, "ns", "a").is_err());
        let log = api.store.change_log();
        let types: Vec<_> = log.iter().map(|c| c.change_type).collect();
        assert_eq!(
            types,
            [ChangeType::Added, ChangeType::Modified, ChangeType::Deleted]
        );
    }
}
