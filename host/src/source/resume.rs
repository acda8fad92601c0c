//! Resuming a scope's stream after a restart: before its first list, a scope
//! with a checkpoint (the resourceVersion up to which the last run processed
//! its stream) asks the API server for everything after it, so each change
//! made while herald was down is reported, intermediate states included, for
//! as long as the server keeps that history. When it does not (410 Gone), the
//! first list reports the latest states instead.
//!
//! Replayed changes are decoded, filtered and redacted as the scope's own
//! list and watch are. The first replayed change of an object carries no
//! previous state (the pipeline fills it in from what the state dir
//! recorded); later ones carry the replayed state before them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use kube::api::{Api, ApiResource, WatchEvent, WatchParams};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::change::{ChangeEvent, ChangeType, Gvk};

use super::object::WatchedObject;
use super::secrets::SecretKey;

/// How long the server is asked to keep a replay stream open: it replays the
/// history at once, then the stream ends.
const REPLAY_SECONDS: u32 = 1;

/// Finds a stream's checkpoint by its key ([`stream_key`]); given by herald
/// when it keeps a state dir.
#[derive(Clone)]
pub struct Checkpoints(Arc<FindCheckpoint>);

/// Looks up the checkpoint of a stream key.
type FindCheckpoint = dyn Fn(&str) -> Option<u64> + Send + Sync;

impl Checkpoints {
    /// Checkpoints looked up with `find`.
    pub fn new(find: impl Fn(&str) -> Option<u64> + Send + Sync + 'static) -> Self {
        Checkpoints(Arc::new(find))
    }

    pub(crate) fn get(&self, key: &str) -> Option<u64> {
        (self.0)(key)
    }
}

impl fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Checkpoints(..)")
    }
}

impl PartialEq for Checkpoints {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Checkpoints {}

/// The key of a watch stream, under which its checkpoint is kept: the watch
/// id for a watch of all namespaces (one stream), `watch/namespace` for a
/// watch of listed ones (one stream each).
pub(crate) fn stream_key(watch: &str, namespace: Option<&str>, scoped: bool) -> String {
    match (scoped, namespace) {
        (true, Some(ns)) => format!("{watch}/{ns}"),
        _ => watch.to_string(),
    }
}

/// What a replay needs of its scope.
pub(crate) struct Replay<'a> {
    pub(crate) api: &'a Api<WatchedObject>,
    pub(crate) config: &'a watcher::Config,
    pub(crate) resource: &'a ApiResource,
    pub(crate) watch: &'a str,
    pub(crate) events: &'a [ChangeType],
    pub(crate) ignore_namespaces: &'a [String],
    pub(crate) redact: Option<&'a SecretKey>,
    pub(crate) tx: &'a mpsc::Sender<ChangeEvent>,
}

impl Replay<'_> {
    /// Replays the stream after `rv` into the change stream. Returns how many
    /// changes were replayed; failures are logged (the list that follows
    /// still reports the latest states).
    pub(crate) async fn run(&self, rv: u64) -> usize {
        let mut wp = WatchParams::default().timeout(REPLAY_SECONDS);
        if let Some(labels) = &self.config.label_selector {
            wp = wp.labels(labels);
        }
        if let Some(fields) = &self.config.field_selector {
            wp = wp.fields(fields);
        }
        let rv_text = rv.to_string();
        let stream = match tokio::time::timeout(
            Duration::from_secs(10),
            self.api.watch(&wp, &rv_text),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!(
                    "cannot resume after resourceVersion {rv} ({e}); the list reports the latest states"
                );
                return 0;
            }
            Err(_) => return 0,
        };
        let mut stream = Box::pin(stream);
        let gvk = Gvk::from(self.resource);
        // The state before each object's next replayed change.
        let mut last: HashMap<String, crate::change::Doc> = HashMap::new();
        let mut n = 0;
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(10 + u64::from(REPLAY_SECONDS));
        loop {
            let next = match tokio::time::timeout_at(deadline, stream.try_next()).await {
                Ok(Ok(Some(ev))) => ev,
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(e)) => {
                    tracing::info!("replay ended: {e}");
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
                        code = e.code,
                        "cannot resume after resourceVersion {rv}: {}; the list reports the latest states",
                        e.message
                    );
                    break;
                }
            };
            if obj
                .namespace()
                .is_some_and(|ns| self.ignore_namespaces.iter().any(|i| i == ns))
            {
                continue;
            }
            let cached = std::sync::Arc::new(obj.into_cached(self.resource, self.redact));
            let object = crate::change::Doc::stored(cached.clone());
            let uid = cached.uid().unwrap_or_default().to_string();
            let old = last.insert(uid, object.clone());
            if !self.events.contains(&change) {
                continue;
            }
            let old = if change == ChangeType::Added {
                None
            } else {
                old
            };
            let mut ev = ChangeEvent::of_docs(change, gvk.clone(), object, old)
                .with_watch(self.watch.to_string());
            ev.replayed = true;
            if self.tx.send(ev).await.is_err() {
                return n;
            }
            n += 1;
        }
        if n > 0 {
            tracing::info!(
                changes = n,
                "resumed after resourceVersion {rv}: replayed what changed while herald was down"
            );
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_per_listed_namespace() {
        assert_eq!(stream_key("w", Some("a"), true), "w/a");
        assert_eq!(stream_key("w", Some("a"), false), "w");
        assert_eq!(stream_key("w", None, true), "w");
    }
}
