//! Restart with a state dir: before a watch lists, its stream is resumed
//! after the checkpoint the last run recorded, so the API server replays
//! every change made while herald was down (each intermediate state, not
//! only the latest) for as long as it keeps that history. When it does not
//! (410 Gone: compacted), the list and dedup take over and report the
//! latest states only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::pipeline::stream_key;
use crate::source::{Resolution, Resolver, WatchSpec};
use crate::state::StateStore;

/// How long the server is asked to keep a replay stream open: it replays
/// the history at once, then the stream ends.
const REPLAY_SECONDS: u32 = 1;

/// Replays the stream(s) of `spec` after their checkpoints into `tx`.
/// Returns how many changes were replayed. Errors are logged: the list
/// that follows still reports the latest states.
pub async fn replay(
    client: kube::Client,
    store: Arc<StateStore>,
    spec: WatchSpec,
    tx: mpsc::Sender<ChangeEvent>,
    secret_key: crate::source::SecretKey,
) -> usize {
    let watch = spec.id();
    let resolver = Resolver::new(client.clone());
    let (resource, namespaced) = match resolver.resolve_now(&spec).await {
        Ok(Resolution::Found {
            resource,
            namespaced,
        }) => (resource, namespaced),
        _ => return 0,
    };
    let redact_secrets = resource.group.is_empty()
        && resource.kind == "Secret"
        && spec.secret_data == crate::source::SecretData::Redact;
    let gvk = Gvk::from(&resource);
    let scoped = !spec.namespaces.is_empty() && namespaced;
    let scopes: Vec<Option<String>> = if scoped {
        spec.namespaces.iter().cloned().map(Some).collect()
    } else {
        vec![None]
    };
    let mut total = 0;
    for scope in scopes {
        let key = stream_key(&watch, scope.as_deref(), scoped);
        let Ok(Some(rv)) = store.checkpoint(&key) else {
            continue;
        };
        let api: Api<DynamicObject> = match &scope {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let mut wp = WatchParams::default().timeout(REPLAY_SECONDS);
        if let Some(l) = &spec.label_selector {
            wp = wp.labels(l);
        }
        if let Some(f) = &spec.field_selector {
            wp = wp.fields(f);
        }
        let stream = match tokio::time::timeout(
            Duration::from_secs(10),
            api.watch(&wp, &rv.to_string()),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!(
                    stream = key,
                    "cannot resume after resourceVersion {rv} ({e}); the list reports the latest states"
                );
                continue;
            }
            Err(_) => continue,
        };
        let mut stream = Box::pin(stream);
        // The previous state of each object within the replay; before its
        // first replayed change, the state herald last notified.
        let mut last: HashMap<String, Value> = HashMap::new();
        let mut n = 0;
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(10 + u64::from(REPLAY_SECONDS));
        loop {
            let next = match tokio::time::timeout_at(deadline, stream.try_next()).await {
                Ok(Ok(Some(ev))) => ev,
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(e)) => {
                    tracing::info!(stream = key, "replay ended: {e}");
                    break;
                }
            };
            let (change, obj) = match next {
                WatchEvent::Added(o) => (ChangeType::Added, o),
                WatchEvent::Modified(o) => (ChangeType::Modified, o),
                WatchEvent::Deleted(o) => (ChangeType::Deleted, o),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => {
                    tracing::info!(
                        stream = key,
                        code = e.code,
                        "cannot resume: {}; the list reports the latest states",
                        e.message
                    );
                    break;
                }
            };
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            if spec.ignore_namespaces.contains(&ns) {
                continue;
            }
            let Ok(mut object) = serde_json::to_value(&obj) else {
                continue;
            };
            if object.get("apiVersion").is_none() {
                object["apiVersion"] = Value::String(resource.api_version.clone());
                object["kind"] = Value::String(resource.kind.clone());
            }
            // Replayed Secrets are kept to the same rule as listed ones.
            if redact_secrets {
                crate::source::redact_secret(&mut object, &secret_key);
            }
            let uid = obj.metadata.uid.clone().unwrap_or_default();
            let old = match last.get(&uid) {
                Some(v) => Some(v.clone()),
                None => store
                    .object(&uid)
                    .ok()
                    .flatten()
                    .and_then(|r| r.parse_object().ok()),
            };
            let change = match (change, &old) {
                // Created before the checkpoint, notified, then changed.
                (ChangeType::Added, Some(_)) => ChangeType::Modified,
                (c, _) => c,
            };
            last.insert(uid, object.clone());
            if !spec.events.contains(&change) {
                continue;
            }
            let old = if change == ChangeType::Added {
                None
            } else {
                old
            };
            let ev = ChangeEvent::new(change, gvk.clone(), object, old).with_watch(watch.clone());
            if tx.send(ev).await.is_err() {
                return total + n;
            }
            n += 1;
        }
        if n > 0 {
            tracing::info!(
                stream = key,
                changes = n,
                "resumed after resourceVersion {rv}: replayed what changed while herald was down"
            );
        }
        total += n;
    }
    total
}
