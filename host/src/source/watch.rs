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
    /// The checkpoint to resume the stream after, before the first list.
    pub(crate) resume: Option<u64>,
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
    ///
    /// # Recovery
    ///
    /// kube's own stream backoff starts over at every `Ok` item, and the watcher
    /// yields `Ok(Init)` before each list attempt, so a list that keeps failing
    /// (forbidden, say) would be retried at the shortest delay forever. The
    /// backoff is kept here instead: it grows with each failed request and starts
    /// over only once the server has answered a request successfully since the
    /// last failure (a list page, a watch that opened) or sent an event. A
    /// `410 Gone` is an answer too: the watch relists at once, as client-go's
    /// reflector does, rather than after the delay an outage grew.
    pub(crate) async fn run(mut self) {
        let check_every =
            (self.stall_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        let mut receiver_gone = false;
        // Resuming => Listing: what changed while herald was down first.
        if let Some(rv) = self.resume.take() {
            self.differ
                .replay(&self.api, &self.config, &self.tx)
                .run(rv)
                .await;
        }
        let mut backoff = self.settings.backoff();
        // Successful answers counted at the last failure.
        let mut answered_at_failure = self.status.activity.answered();
        loop {
            let mut stream = watcher::watcher(self.api.clone(), self.config.clone()).boxed();
            let mut check = tokio::time::interval(check_every);
            check.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // Watching => (Watching | Failed | Gone | Stalled)
            loop {
                tokio::select! {
                    item = stream.next() => match item {
                        Some(Ok(event)) => {
                            if !matches!(event, Event::Init) {
                                // The server sent data: a list page's object, the end
                                // of a list, or a watch event.
                                backoff.reset();
                            }
                            self.handle(event, &mut receiver_gone).await;
                        }
                        Some(Err(error)) => match gone(&error) {
                            // Gone => Listing, at once: the server is there.
                            Some(gone) => {
                                let reason = describe(&error);
                                tracing::info!(error = %reason, "resourceVersion too old; relisting now");
                                self.status.failed(reason);
                                backoff.reset();
                                answered_at_failure = self.status.activity.answered();
                                if gone == Gone::Restart {
                                    break;
                                }
                            }
                            // Failed => (Listing | Watching) after the backoff
                            None => {
                                let answered = self.status.activity.answered();
                                if answered != answered_at_failure {
                                    backoff.reset();
                                }
                                let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                                let reason = describe(&error);
                                tracing::warn!(error = %reason, retry_in = ?delay, "watch request failed; retrying after backoff");
                                self.status.failed(reason);
                                tokio::time::sleep(delay).await;
                                answered_at_failure = self.status.activity.answered();
                            }
                        },
                        // kube's watcher stream does not end.
                        None => break,
                    },
                    _ = check.tick() => if self.status.activity.stalled(self.stall_timeout) {
                        // Stalled => Listing (a new watcher, which relists)
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

/// What a `410 Gone` asks of the watch.
#[derive(Debug, PartialEq, Eq)]
enum Gone {
    /// kube's watcher relists by itself on its next step.
    Relisting,
    /// kube's watcher would retry the same resourceVersion: a new one relists.
    Restart,
}

fn gone(error: &watcher::Error) -> Option<Gone> {
    match error {
        watcher::Error::WatchError(status) if status.code == 410 => Some(Gone::Relisting),
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
            if status.code == 410 =>
        {
            Some(Gone::Restart)
        }
        _ => None,
    }
}

/// A failed request as a reader wants it: what herald was doing, and the API
/// server's reason and message when it answered (`list: Forbidden (403):
/// configmaps is forbidden: …`), else the transport error.
pub(crate) fn describe(error: &watcher::Error) -> String {
    let (doing, cause) = match error {
        watcher::Error::InitialListFailed(e) => ("list", e),
        watcher::Error::WatchStartFailed(e) => ("watch", e),
        watcher::Error::WatchFailed(e) => ("watch stream", e),
        watcher::Error::WatchError(status) => {
            return format!(
                "watch: {} ({}): {}",
                reason_or(&status.reason, status.code),
                status.code,
                status.message
            );
        }
        watcher::Error::NoResourceVersion => return error.to_string(),
    };
    match cause {
        kube::Error::Api(status) => format!(
            "{doing}: {} ({}): {}",
            reason_or(&status.reason, status.code),
            status.code,
            status.message
        ),
        other => format!("{doing}: {}", error_chain(other)),
    }
}

fn reason_or(reason: &str, code: u16) -> String {
    if !reason.is_empty() {
        return reason.to_string();
    }
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("Error")
        .to_string()
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

    fn status(code: u16, reason: &str, message: &str) -> Box<kube::core::Status> {
        let mut s = kube::core::Status::failure(message, reason);
        s.code = code;
        Box::new(s)
    }

    #[test]
    fn a_410_relists_at_once_and_only_a_410() {
        let in_stream =
            watcher::Error::WatchError(status(410, "Expired", "too old resource version: 1 (9)"));
        assert_eq!(gone(&in_stream), Some(Gone::Relisting));
        let at_start = watcher::Error::WatchStartFailed(kube::Error::Api(status(410, "Gone", "")));
        assert_eq!(gone(&at_start), Some(Gone::Restart));
        let forbidden =
            watcher::Error::InitialListFailed(kube::Error::Api(status(403, "Forbidden", "no")));
        assert_eq!(gone(&forbidden), None);
    }

    #[test]
    fn describe_gives_the_api_servers_reason_and_message() {
        let e = watcher::Error::InitialListFailed(kube::Error::Api(status(
            403,
            "Forbidden",
            "configmaps is forbidden: User \"u\" cannot list resource \"configmaps\"",
        )));
        assert_eq!(
            describe(&e),
            "list: Forbidden (403): configmaps is forbidden: User \"u\" cannot list resource \"configmaps\""
        );
        let e = watcher::Error::WatchError(status(410, "", "too old"));
        assert_eq!(describe(&e), "watch: Gone (410): too old");
    }

    #[test]
    fn server_timeout_is_half_the_stall_timeout_within_bounds() {
        assert_eq!(server_timeout(Duration::from_millis(500)), 1);
        assert_eq!(server_timeout(Duration::from_secs(60)), 30);
        assert_eq!(server_timeout(Duration::from_secs(3600)), 290);
    }
}
