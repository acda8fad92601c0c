//! What the sinks say about themselves: `GET /sinks`.

use std::sync::atomic::Ordering;

use axum::routing::get;

use super::queue::lock;
use super::{SinkStatus, Sinks};

impl Sinks {
    /// Every sink's figures, in config order.
    pub fn status(&self) -> Vec<SinkStatus> {
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        let Some(state) = guard.as_ref() else {
            return vec![];
        };
        let handles = &state.handles;
        state
            .order
            .iter()
            .filter_map(|name| {
                let h = handles.get(name)?;
                let s = &h.stats;
                Some(SinkStatus {
                    name: name.clone(),
                    kind: h.kind.as_str().into(),
                    depth: s.depth.load(Ordering::Relaxed),
                    capacity: h.capacity,
                    spilled: lock(&h.overflow.state).spilled.len() as u64,
                    in_flight: s.in_flight.load(Ordering::Relaxed),
                    delivered: s.delivered.load(Ordering::Relaxed),
                    retries: s.retries.load(Ordering::Relaxed),
                    dead_lettered: s.dead_lettered.load(Ordering::Relaxed),
                    disabled: s.disabled.load(Ordering::Relaxed),
                    last_error: lock(&s.last_error).clone(),
                })
            })
            .collect()
    }

    /// `GET /sinks`: every sink's queue depth and figures.
    pub fn router(&self) -> axum::Router {
        let sinks = self.clone();
        axum::Router::new().route(
            "/sinks",
            get(move || {
                let s = sinks.clone();
                async move { axum::Json(s.status()) }
            }),
        )
    }
}
