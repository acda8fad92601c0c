//! One namespace scope of a watch: kube's watcher with backoff, the [`Differ`], and a
//! stall check that restarts a watcher the server has gone silent on.
//!
//! # Recovery
//!
//! - A watch stream that ends is resumed by kube's watcher from the last
//!   resourceVersion; `410 Gone` makes it relist, and the differ reports what the
//!   relist changed.
//! - Failed requests are retried after the configured backoff.
//! - A request that hears nothing (no event, no bookmark, no page) for the stall
//!   timeout gets its watcher dropped and a new one started, which relists.
//!
//! [`Differ`]: super::diff::Differ

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::change::ChangeEvent;

use super::diff::Differ;
use super::object::WatchedObject;
use super::settings::SourceSettings;
use super::status::ScopeStatus;

/// Everything one scope task needs.
pub(crate) struct ScopeWatch {
    pub(crate) api: Api<WatchedObject>,
    pub(crate) config: watcher::Config,
    pub(crate) differ: Differ,
    pub(crate) tx: mpsc::Sender<ChangeEvent>,
    pub(crate) status: Arc<ScopeStatus>,
    pub(crate) stall_timeout: Duration,
    pub(crate) settings: SourceSettings,
}

/// The server-side `timeoutSeconds` for a stall timeout. kube's watcher also drops a
/// stream that is silent for `timeoutSeconds` + 5 s and resumes from its last
/// resourceVersion, which is cheaper than our restart (a relist); half the stall
/// timeout lets that cheap path act first.
pub(crate) fn server_timeout(stall: Duration) -> u32 {
    u32::try_from((stall.as_secs() / 2).clamp(1, 290)).unwrap_or(290)
}

impl ScopeWatch {
    /// Runs until the task is aborted.
    pub(crate) async fn run(mut self) {
        let check_every =
            (self.stall_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        let mut receiver_gone = false;
        loop {
            let mut stream = watcher::watcher(self.api.clone(), self.config.clone())
                .backoff(self.settings.backoff())
                .boxed();
            let mut check = tokio::time::interval(check_every);
            check.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // Watching => (Watching | Stalled)
            loop {
                tokio::select! {
                    item = stream.next() => match item {
                        Some(Ok(event)) => self.handle(event, &mut receiver_gone).await,
                        Some(Err(error)) => {
                            tracing::warn!(error = %error_chain(&error), "watch request failed; retrying after backoff");
                            self.status.failed(error_chain(&error));
                        }
                        // Only a backoff that gives up ends the stream; ours never do.
                        None => break,
                    },
                    _ = check.tick() => if self.status.activity.stalled(self.stall_timeout) {
                        // Stalled => Watching (a new watcher, which relists)
                        tracing::warn!(stall_timeout = ?self.stall_timeout, "watch silent past its stall timeout; restarting it");
                        self.status.restarted();
                        break;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, event: Event<WatchedObject>, receiver_gone: &mut bool) {
        let done = matches!(event, Event::InitDone);
        if matches!(event, Event::Init) {
            self.status.listing();
        }
        for change in self.differ.apply(event) {
            if self.tx.send(change).await.is_err() && !*receiver_gone {
                // Keep the cache up to date for the query API all the same.
                tracing::warn!("change stream closed; changes are no longer emitted");
                *receiver_gone = true;
            }
        }
        if done {
            if !self.status.synced() {
                tracing::info!(objects = self.status.store.len(), "initial list complete");
            }
            self.status.set_synced();
        }
        // Time spent waiting for the change stream to take an event is not silence
        // from the server.
        self.status.activity.touch();
    }
}

/// `error: cause: cause`, for logs and status.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timeout_is_half_the_stall_timeout_within_bounds() {
        assert_eq!(server_timeout(Duration::from_millis(500)), 1);
        assert_eq!(server_timeout(Duration::from_secs(60)), 30);
        assert_eq!(server_timeout(Duration::from_secs(3600)), 290);
    }
}
