//! State shared by the server, the watches and the [`Sim`](crate::Sim) handle.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::api::Api;
use crate::faults::Faults;

/// Settings fixed at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Largest page a LIST returns, whatever `limit` asks for.
    pub page_size_cap: Option<usize>,
    /// The bearer token written to kubeconfigs.
    pub token: String,
    /// Whether requests without the token get 401.
    pub require_token: bool,
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method. Example: `GET`.
    pub method: String,
    /// Path and query. Example: `/api/v1/pods?limit=500`.
    pub path: String,
}

impl RequestRecord {
    /// Whether this was a watch request.
    pub fn is_watch(&self) -> bool {
        self.path.contains("watch=true")
            || self.path.contains("watch=1")
            || self.path.contains("/watch/")
    }
}

/// Everything the server and the handle share.
pub struct Shared {
    /// Objects, history and served types.
    pub api: Api,
    /// Fault injection.
    pub faults: Faults,
    /// Tokens and permissions for TokenReview and SubjectAccessReview.
    pub reviews: crate::review::Reviews,
    /// Settings.
    pub config: Config,
    /// Every request so far.
    pub requests: Mutex<Vec<RequestRecord>>,
    /// Watch streams currently open.
    pub open_watches: AtomicUsize,
    /// Where the server listens.
    pub addr: Mutex<SocketAddr>,
}

impl Shared {
    /// Records a request.
    pub fn record(&self, method: &str, path: &str) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RequestRecord {
                method: method.to_string(),
                path: path.to_string(),
            });
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        *self.addr.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts a watch as open for as long as it lives.
pub struct OpenWatch<'a>(&'a AtomicUsize);

impl<'a> OpenWatch<'a> {
    /// Counts one more open watch.
    pub fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for OpenWatch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
