//! Fault injection state: failing requests, and the signals open watches obey
//! (cut, close mid-chunk, stall).

use std::sync::Mutex;

use tokio::sync::watch;

use crate::error::ApiError;

/// What open watches must do; each watch compares generations with the ones it
/// started under, so a fault hits only watches open when it was injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchFaults {
    /// Bumped by [`Faults::cut_watches`]: end the stream cleanly.
    pub cut_gen: u64,
    /// Bumped by [`Faults::close_mid_chunk`]: write half of the next event, then abort.
    pub mid_chunk_gen: u64,
    /// Send nothing at all while set.
    pub stalled: bool,
}

/// Faults, shared by the HTTP front end and the watches.
pub struct Faults {
    fail: Mutex<Option<(usize, u16)>>,
    /// Resources (plurals) whose list and watch are forbidden, as RBAC would.
    forbidden: Mutex<std::collections::BTreeSet<String>>,
    watches: watch::Sender<WatchFaults>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            fail: Mutex::new(None),
            forbidden: Mutex::new(Default::default()),
            watches: watch::channel(WatchFaults::default()).0,
        }
    }
}

impl Faults {
    /// Fails the next `n` requests with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        *self.fail.lock().unwrap_or_else(|e| e.into_inner()) = (n > 0).then_some((n, status));
    }

    /// Takes one injected failure, if any are pending.
    pub fn take_failure(&self) -> Option<ApiError> {
        let mut g = self.fail.lock().unwrap_or_else(|e| e.into_inner());
        let (n, status) = (*g)?;
        *g = (n > 1).then_some((n - 1, status));
        Some(ApiError::injected(status))
    }

    /// Forbids (or allows again) list and watch of `resource` (a plural).
    pub fn forbid(&self, resource: &str, forbidden: bool) {
        let mut g = self.forbidden.lock().unwrap_or_else(|e| e.into_inner());
        if forbidden {
            g.insert(resource.to_string());
        } else {
            g.remove(resource);
        }
    }

    /// Whether list and watch of `resource` are forbidden.
    pub fn is_forbidden(&self, resource: &str) -> bool {
        self.forbidden
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(resource)
    }

    /// Ends every open watch cleanly.
    pub fn cut_watches(&self) {
        self.watches.send_modify(|f| f.cut_gen += 1);
    }

    /// Aborts every open watch half-way through its next event.
    pub fn close_mid_chunk(&self) {
        self.watches.send_modify(|f| f.mid_chunk_gen += 1);
    }

    /// Stalls (or releases) every watch.
    pub fn stall_watches(&self, stalled: bool) {
        self.watches.send_modify(|f| f.stalled = stalled);
    }

    /// A receiver that changes with every watch fault.
    pub fn subscribe(&self) -> watch::Receiver<WatchFaults> {
        self.watches.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_exactly_n() {
        let f = Faults::default();
        f.fail_next(2, 429);
        let e = f.take_failure().expect("first");
        assert_eq!((e.code, e.retry_after), (429, Some(1)));
        assert!(f.take_failure().is_some());
        assert!(f.take_failure().is_none());
    }
}
