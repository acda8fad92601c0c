//! [`Notification`]: one change after the plugins, as every sink receives
//! it, its stable id, and herald's raw envelope.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::config::OldState;
use crate::change::{ChangeType, Doc, Gvk};

/// One change of one object, ready for the sinks. Shared (`Arc`) by every
/// sink it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The cluster's name from the config.
    pub cluster: Arc<str>,
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// The watched type.
    pub gvk: Gvk,
    /// The watch that saw it.
    pub watch: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion` of this state.
    pub resource_version: String,
    /// When herald saw the change.
    pub time: SystemTime,
    /// Sinks named by the plugins' route verdicts.
    pub routes: Vec<String>,
    /// The object as the plugins left it.
    pub object: Doc,
    /// The previous state, as the plugins left it.
    pub old: Option<Doc>,
    /// Set on a dead letter: why it is one (`{plugin, error}` when a plugin
    /// failed on the event, `{sink, id, reason}` when a sink refused it).
    pub dead_letter: Option<Value>,
    /// Dropped when the last copy of the notification is: by then every
    /// sink has delivered or dead-lettered it (high availability tracks the
    /// delivered watermark with it).
    pub receipt: Option<super::Receipt>,
    /// With a state dir: the notification is in the sink's outbox once
    /// `ready` resolves; lanes deliver only then, and acknowledge it in the
    /// outbox when settled.
    pub durable: Option<Durable>,
    /// Whoever handed it over follows its delivery by this number (the
    /// decisions ring's id; 0: nobody). Reported to [`SinkDeps::log`] with
    /// each attempt's result; opaque to the sinks.
    ///
    /// [`SinkDeps::log`]: super::SinkDeps::log
    pub trace: u64,
}

/// The outbox side of a notification.
#[derive(Clone)]
pub struct Durable {
    /// The outbox holding it.
    pub outbox: Arc<dyn super::Outbox>,
    /// Resolves when the outbox entry (and the object record) are on disk.
    pub ready: super::outbox::Ready,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durable")
    }
}

impl PartialEq for Durable {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What the outbox keeps of a notification: everything but the runtime
/// handles.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored<'a> {
    cluster: String,
    change: ChangeType,
    gvk: Gvk,
    watch: String,
    namespace: Option<String>,
    name: String,
    uid: String,
    resource_version: String,
    time_ms: u64,
    routes: Vec<String>,
    // Borrowed when written: the objects are not copied to be stored.
    object: Cow<'a, Doc>,
    old: Option<Cow<'a, Doc>>,
    dead_letter: Option<Cow<'a, Value>>,
}

impl Notification {
    /// The id of this notification at `sink`: the same for every attempt and
    /// across restarts, different per sink, derived from (uid,
    /// resourceVersion, sink). `msg_` and 32 hex digits. A deletion counts
    /// as its own version (`<rv>:deleted`): one noticed at a restart carries
    /// the last state herald knew, whose version was notified already.
    pub fn id(&self, sink: &str) -> String {
        if self.change == ChangeType::Deleted {
            let rv = format!("{}:deleted", self.resource_version);
            return stable_id(&self.uid, &rv, sink);
        }
        stable_id(&self.uid, &self.resource_version, sink)
    }

    /// The outbox's bytes for this notification.
    pub(crate) fn to_stored(&self) -> Vec<u8> {
        let stored = Stored {
            cluster: self.cluster.to_string(),
            change: self.change,
            gvk: self.gvk.clone(),
            watch: self.watch.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            resource_version: self.resource_version.clone(),
            time_ms: self
                .time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            routes: self.routes.clone(),
            object: Cow::Borrowed(&self.object),
            old: self.old.as_ref().map(Cow::Borrowed),
            dead_letter: self.dead_letter.as_ref().map(Cow::Borrowed),
        };
        serde_json::to_vec(&stored).expect("JSON")
    }

    /// A notification back from the outbox.
    pub(crate) fn from_stored(bytes: &[u8]) -> serde_json::Result<Notification> {
        let s: Stored = serde_json::from_slice(bytes)?;
        Ok(Notification {
            cluster: s.cluster.into(),
            change: s.change,
            gvk: s.gvk,
            watch: s.watch,
            namespace: s.namespace,
            name: s.name,
            uid: s.uid,
            resource_version: s.resource_version,
            time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.time_ms),
            routes: s.routes,
            object: s.object.into_owned(),
            old: s.old.map(Cow::into_owned),
            dead_letter: s.dead_letter.map(Cow::into_owned),
            receipt: None,
            durable: None,
            trace: 0,
        })
    }

    /// `apiVersion` as Kubernetes writes it (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.gvk.group.is_empty() {
            self.gvk.version.clone()
        } else {
            format!("{}/{}", self.gvk.group, self.gvk.version)
        }
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub fn subject(&self) -> String {
        match &self.namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}/{}", self.name),
            _ => self.name.clone(),
        }
    }

    /// The change time as RFC 3339 with milliseconds.
    pub(crate) fn time_rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.time).to_string()
    }

    /// A JSON Patch (RFC 6902) from the previous state to this one; empty
    /// when there is no previous state.
    pub fn patch(&self) -> Value {
        serde_json::to_value(self.json_patch()).unwrap_or(Value::Array(vec![]))
    }

    /// [`Notification::patch`] as the operations, which serialise straight
    /// into an envelope (no tree in between).
    fn json_patch(&self) -> json_patch::Patch {
        match &self.old {
            Some(old) => crate::change::diff(old, &self.object),
            None => json_patch::Patch::default(),
        }
    }

    /// herald's raw envelope for `sink`: id, cluster, change, apiVersion,
    /// kind, namespace, name, uid, resourceVersion, watch, time, routes, the
    /// sink's metadata, the object, and the previous state as `old` or
    /// `patch` per `old`.
    pub fn envelope(&self, sink: &str, metadata: &Map<String, Value>, old: OldState) -> Value {
        serde_json::to_value(self.envelope_ref(sink, metadata, old)).expect("JSON")
    }

    /// The envelope borrowing the object and old state, to serialise
    /// without copying them.
    pub(crate) fn envelope_ref<'a>(
        &'a self,
        sink: &str,
        metadata: &'a Map<String, Value>,
        old: OldState,
    ) -> Envelope<'a> {
        Envelope {
            id: self.id(sink),
            cluster: &self.cluster,
            change: self.change,
            api_version: self.api_version(),
            kind: &self.gvk.kind,
            namespace: self.namespace.as_deref(),
            name: &self.name,
            uid: &self.uid,
            resource_version: &self.resource_version,
            watch: &self.watch,
            time: self.time_rfc3339(),
            routes: &self.routes,
            metadata: (!metadata.is_empty()).then_some(metadata),
            object: &self.object,
            old: match old {
                OldState::Full => self.old.as_ref(),
                _ => None,
            },
            patch: match old {
                OldState::Patch if self.old.is_some() => Some(self.json_patch()),
                _ => None,
            },
            dead_letter: self.dead_letter.as_ref(),
        }
    }
}

impl Envelope<'_> {
    /// Room for the envelope's JSON: its object's (and old state's) bytes,
    /// and what the other fields take.
    pub(crate) fn size_hint(&self) -> usize {
        const FIELDS: usize = 512;
        FIELDS + self.object.size_hint() + self.old.map_or(0, Doc::size_hint)
    }

    /// The envelope's JSON.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        encode(self, self.size_hint())
    }
}

/// `value`'s JSON, written into a buffer of `capacity` bytes to start with:
/// an envelope is mostly an object's kilobytes, which a buffer grown from
/// empty would copy several times over.
pub(crate) fn encode(value: &impl serde::Serialize, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    // herald's envelopes have string keys and finite numbers only.
    serde_json::to_writer(&mut out, value).expect("JSON");
    out
}

/// herald's raw envelope of one notification, borrowing from it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope<'a> {
    id: String,
    cluster: &'a str,
    change: ChangeType,
    api_version: String,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    uid: &'a str,
    resource_version: &'a str,
    watch: &'a str,
    time: String,
    routes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    object: &'a Doc,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<&'a Doc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<json_patch::Patch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter: Option<&'a Value>,
}

/// `msg_` and the first 32 hex digits of SHA-256 over uid, resourceVersion
/// and sink, separated by NUL.
pub(crate) fn stable_id(uid: &str, resource_version: &str, sink: &str) -> String {
    let mut h = Sha256::new();
    h.update(uid.as_bytes());
    h.update([0]);
    h.update(resource_version.as_bytes());
    h.update([0]);
    h.update(sink.as_bytes());
    let d = h.finalize();
    // Written in place: every notification's id is made per sink, and more
    // than once on its way.
    let mut id = *b"msg_00000000000000000000000000000000";
    // 16 bytes always fit the 32 digits after `msg_`.
    let _ = hex::encode_to_slice(&d[..16], &mut id[4..]);
    String::from_utf8_lossy(&id).into_owned()
}

#[cfg(test)]
use serde_json::json;

#[cfg(test)]
pub(crate) fn sample(uid: &str, rv: &str) -> Notification {
    Notification {
        cluster: "test".into(),
        change: ChangeType::Modified,
        gvk: Gvk {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
        },
        watch: "deployment.v1.apps".into(),
        namespace: Some("web".into()),
        name: "front".into(),
        uid: uid.into(),
        resource_version: rv.into(),
        time: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        routes: vec![],
        object: json!({"metadata": {"name": "front", "namespace": "web", "uid": uid, "resourceVersion": rv}, "spec": {"replicas": 3}}).into(),
        old: Some(
            json!({"metadata": {"name": "front", "namespace": "web", "uid": uid}, "spec": {"replicas": 2}}).into(),
        ),
        dead_letter: None,
        receipt: None,
        durable: None,
        trace: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_survives_the_outbox() {
        let n = sample("u1", "7");
        let back = Notification::from_stored(&n.to_stored()).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.id("hook"), n.id("hook"));
    }

    #[test]
    fn id_is_stable_and_differs_by_uid_version_and_sink() {
        let a = stable_id("u1", "10", "hook");
        assert_eq!(a, stable_id("u1", "10", "hook"));
        assert_eq!(a.len(), 4 + 32);
        // The format ids have had since they were first stored: exactly once
        // across restarts and upgrades rests on it.
        let digest = Sha256::digest(b"u1\x0010\x00hook");
        assert_eq!(a, format!("msg_{}", hex::encode(&digest[..16])));
        assert_ne!(a, stable_id("u1", "11", "hook"));
        assert_ne!(a, stable_id("u2", "10", "hook"));
        assert_ne!(a, stable_id("u1", "10", "other"));
        // The separator keeps ("u1", "10") and ("u11", "0") apart.
        assert_ne!(stable_id("u1", "10", "s"), stable_id("u11", "0", "s"));
        // A deletion reported with the last known state keeps its own id.
        let mut n = sample("u1", "10");
        let modified = n.id("hook");
        n.change = ChangeType::Deleted;
        assert_ne!(n.id("hook"), modified);
    }

    #[test]
    fn envelope_carries_identity_metadata_and_the_chosen_old_form() {
        let n = sample("u1", "7");
        let mut md = Map::new();
        md.insert("team".into(), json!("payments"));
        let e = n.envelope("hook", &md, OldState::Patch);
        assert_eq!(e["id"], json!(stable_id("u1", "7", "hook")));
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["kind"], "Deployment");
        assert_eq!(e["change"], "modified");
        assert_eq!(e["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(e["metadata"]["team"], "payments");
        assert_eq!(
            e["patch"],
            json!([
                {"op": "add", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "replace", "path": "/spec/replicas", "value": 3}
            ])
        );
        assert!(e.get("old").is_none());
        // Serialised straight (as the encoders do), the same envelope.
        let direct = serde_json::to_vec(&n.envelope_ref("hook", &md, OldState::Patch)).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&direct).unwrap(), e);
        assert_eq!(n.patch(), e["patch"]);
        let full = n.envelope("hook", &Map::new(), OldState::Full);
        assert_eq!(full["old"]["spec"]["replicas"], 2);
        assert!(full.get("metadata").is_none());
        let none = n.envelope("hook", &Map::new(), OldState::None);
        assert!(none.get("old").is_none() && none.get("patch").is_none());
    }

    #[test]
    fn an_envelope_of_stored_objects_is_written_into_a_buffer_made_for_it() {
        let stored = |v: Value| Doc::stored(Arc::new(crate::cache::CachedObject::from_value(&v)));
        let mut n = sample("u1", "7");
        let padding = "x".repeat(5_000);
        n.object = stored(json!({"metadata": {"name": "a", "resourceVersion": "7"},
                                 "spec": {"replicas": 3, "note": padding}}));
        n.old = Some(stored(
            json!({"metadata": {"name": "a", "resourceVersion": "6"},
                                   "spec": {"replicas": 2, "note": padding}}),
        ));
        let mut md = Map::new();
        md.insert("team".into(), json!("payments"));
        for old in [OldState::Full, OldState::Patch, OldState::None] {
            let envelope = n.envelope_ref("hook", &md, old);
            let hint = envelope.size_hint();
            let out = envelope.to_vec();
            assert_eq!(out, serde_json::to_vec(&envelope).unwrap(), "{old:?}");
            // Written without growing (and so copying) the buffer.
            assert_eq!(out.capacity(), hint, "{old:?}: {} bytes", out.len());
        }
    }
}
