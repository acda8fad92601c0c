//! Knowing when the server last sent anything for one watch, bookmarks included.
//!
//! kube's watcher consumes bookmarks itself, so its output cannot tell a quiet type
//! from a dead connection. Each watch therefore talks through its own [`Client`] that
//! wraps the shared one and stamps every response head and body frame; the stall
//! check reads the stamp. The wrapper adds one in-process hop per request, not a
//! connection: the shared client's pool still carries the traffic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use kube::Client;
use tokio::time::Instant;

/// When the server last spoke, and whether a request is waiting on it.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Reference point of `last` (tokio time, so paused-time tests work).
    epoch: Instant,
    /// Milliseconds after `epoch` of the last sign of life.
    last: AtomicU64,
    /// Wall clock of the last byte from the server, ms since the Unix epoch (0: never).
    last_seen_wall: AtomicU64,
    /// Requests sent whose response has not finished.
    in_flight: AtomicUsize,
    /// Responses with a 2xx status: the server answered and agreed.
    answered: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            last_seen_wall: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Something happened: a request went out, or the consumer made progress.
    pub(crate) fn touch(&self) {
        self.last.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// The server sent something.
    fn heard(&self) {
        self.touch();
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_seen_wall.store(wall, Ordering::Relaxed);
    }

    /// How many requests the server has answered with a 2xx status so far. A
    /// watcher compares two readings to tell whether the server answered since its
    /// last failure (then its backoff starts over).
    pub(crate) fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// When the server last sent anything (an event, a bookmark, a list page).
    pub(crate) fn last_seen(&self) -> Option<SystemTime> {
        match self.last_seen_wall.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// Whether a request has waited on a silent server for longer than `limit`. A
    /// watcher sleeping in backoff has no request out, so it never looks stalled.
    pub(crate) fn stalled(&self, limit: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
            && Duration::from_millis(
                self.elapsed_ms()
                    .saturating_sub(self.last.load(Ordering::Relaxed)),
            ) > limit
    }
}

/// Counts a request as in flight until its response body is dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

type ResponseBody = UnsyncBoxBody<Bytes, kube::Error>;

/// The tower service behind a tracked client: the shared client plus stamps.
#[derive(Clone)]
struct Tracked {
    client: Client,
    activity: Arc<Activity>,
}

impl tower::Service<http::Request<kube::client::Body>> for Tracked {
    type Response = http::Response<ResponseBody>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The shared client queues requests itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let client = self.client.clone();
        let guard = InFlight::new(self.activity.clone());
        Box::pin(async move {
            let resp = client.send(req).await?;
            guard.0.heard();
            if resp.status().is_success() {
                guard.0.answered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(resp.map(move |body| {
                body.map_frame(move |frame| {
                    guard.0.heard();
                    frame
                })
                .boxed_unsync()
            }))
        })
    }
}

/// A client that shares `client`'s connections and records activity in `activity`.
pub(crate) fn tracked(client: &Client, activity: Arc<Activity>) -> Client {
    Client::new(
        Tracked {
            client: client.clone(),
            activity,
        },
        client.default_namespace().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stalled_only_while_a_request_waits() {
        let a = Activity::new();
        let limit = Duration::from_secs(5);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!a.stalled(limit), "nothing in flight");
        let guard = InFlight::new(a.clone());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!a.stalled(limit));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(a.stalled(limit));
        a.heard();
        assert!(!a.stalled(limit));
        assert!(a.last_seen().is_some());
        tokio::time::advance(Duration::from_secs(6)).await;
        drop(guard);
        assert!(!a.stalled(limit), "response finished");
    }
}
