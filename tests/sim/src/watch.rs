//! WATCH streams: one JSON event per line, from the store's history, with selectors,
//! bookmarks, `410 Expired`, timeouts and the injected faults.
//!
//! Each watch is a task that reads its type's history from a cursor (so a slow client
//! never makes the store buffer for it) and sends lines through a small channel that
//! becomes the chunked response body.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ApiError;
use crate::object::{Obj, View, put_json_str};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{OpenWatch, Shared};
use crate::store::ChangeType;
use crate::types::ResourceType;

/// A body chunk; an `Err` aborts the connection (used for `close_mid_chunk`).
pub type Chunk = Result<Bytes, std::io::Error>;

/// Lines are batched into chunks of about this size.
const CHUNK_BYTES: usize = 256 * 1024;
/// History events read per lock.
const BATCH_EVENTS: usize = 512;

/// What a watch asks for.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    /// The type and version watched.
    pub rt: ResourceType,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// `resourceVersion` as sent.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch` as sent.
    pub resource_version_match: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// Accept asked for `PartialObjectMetadata`.
    pub metadata_only: bool,
}

impl WatchRequest {
    fn matches(&self, o: &Obj) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| o.namespace() == ns)
            && self.labels.matches(&o.labels)
            && self.fields.matches(|f| o.field(f))
    }
}

enum Start {
    /// Synthetic ADDED events for the current state first; then, if asked, a bookmark
    /// marking their end.
    Initial { end_bookmark: bool },
    /// Events after this resourceVersion.
    From(u64),
}

/// Validates a watch and starts it; the receiver yields the response body.
///
/// # Errors
/// `400` for parameters a real server rejects before answering 200.
pub fn spawn(shared: Arc<Shared>, w: WatchRequest) -> Result<mpsc::Receiver<Chunk>, ApiError> {
    let sie = w.send_initial_events;
    match (sie, w.resource_version_match.as_deref()) {
        (Some(true), Some("NotOlderThan")) => {}
        (Some(true), _) => {
            return Err(ApiError::invalid(
                "ListOptions",
                "",
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        (_, None) | (_, Some("")) => {}
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "ListOptions",
                "",
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
    }
    if sie == Some(true) && !w.bookmarks {
        return Err(ApiError::invalid(
            "ListOptions",
            "",
            "allowWatchBookmarks: Required value: allowWatchBookmarks must be set to true when sendInitialEvents is true",
        ));
    }
    let start = match w.resource_version.as_deref().unwrap_or("") {
        "" | "0" if sie == Some(false) => Start::From(shared.api.store.current_rv()),
        "" | "0" => Start::Initial {
            end_bookmark: sie == Some(true),
        },
        n => {
            let rv: u64 = n.parse().map_err(|_| {
                ApiError::invalid(
                    "ListOptions",
                    "",
                    format!("resourceVersion: Invalid value: {n:?}: must be a number"),
                )
            })?;
            if sie == Some(true) {
                Start::Initial { end_bookmark: true }
            } else {
                Start::From(rv)
            }
        }
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut out = Out {
            tx,
            buf: BytesMut::new(),
            abort_next: false,
        };
        // The stream just ends when the client is gone or a fault cuts it.
        let _ = run(&shared, &w, start, &mut out).await;
    });
    Ok(rx)
}

/// The client went away or the stream was aborted.
struct Closed;

struct Out {
    tx: mpsc::Sender<Chunk>,
    buf: BytesMut,
    /// Set by `close_mid_chunk`: write half of the next line, then abort.
    abort_next: bool,
}

impl Out {
    async fn flush(&mut self) -> Result<(), Closed> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.abort_next {
            let line_end = self
                .buf
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(self.buf.len());
            let half = self.buf.split_to((line_end / 2).max(1)).freeze();
            self.buf.clear();
            self.tx.send(Ok(half)).await.map_err(|_| Closed)?;
            // Let the half line reach the socket before the connection is torn down.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = self
                .tx
                .send(Err(std::io::Error::other("herald-sim: closed mid-chunk")))
                .await;
            return Err(Closed);
        }
        let chunk = self.buf.split().freeze();
        self.tx.send(Ok(chunk)).await.map_err(|_| Closed)
    }

    async fn maybe_flush(&mut self) -> Result<(), Closed> {
        if self.buf.len() >= CHUNK_BYTES || self.abort_next {
            self.flush().await
        } else {
            Ok(())
        }
    }

    fn event(&mut self, typ: &str, obj: &Obj, w: &WatchRequest, api_version: &str) {
        self.buf.put_slice(b"{\"type\":\"");
        self.buf.put_slice(typ.as_bytes());
        self.buf.put_slice(b"\",\"object\":");
        let view = if w.metadata_only {
            View::Metadata
        } else {
            View::Full {
                api_version,
                kind: &w.rt.kind,
            }
        };
        obj.write_as(&mut self.buf, &view);
        self.buf.put_slice(b"}\n");
    }

    fn bookmark(&mut self, rv: u64, w: &WatchRequest, api_version: &str, initial_end: bool) {
        let (av, kind) = if w.metadata_only {
            ("meta.k8s.io/v1", "PartialObjectMetadata")
        } else {
            (api_version, w.rt.kind.as_str())
        };
        self.buf
            .put_slice(b"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":");
        put_json_str(&mut self.buf, kind);
        self.buf.put_slice(b",\"apiVersion\":");
        put_json_str(&mut self.buf, av);
        self.buf.put_slice(b",\"metadata\":{\"resourceVersion\":\"");
        self.buf.put_slice(rv.to_string().as_bytes());
        self.buf.put_slice(b"\"");
        if initial_end {
            self.buf
                .put_slice(b",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}");
        }
        self.buf.put_slice(b"}}}\n");
    }

    fn error(&mut self, e: &ApiError) {
        let line = json!({"type": "ERROR", "object": e.to_status()});
        self.buf.put_slice(line.to_string().as_bytes());
        self.buf.put_u8(b'\n');
    }
}

/// `prev` as the server sends it in a DELETED event for an object that stopped
/// matching: the old state at the new resourceVersion.
fn restamp(prev: &Obj, rv: u64, api_version: &str, kind: &str) -> Obj {
    let mut v = prev.to_value(api_version, kind);
    if let Some(m) = v
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        m.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    Obj::from_value(v, &[])
}

async fn run(shared: &Shared, w: &WatchRequest, start: Start, out: &mut Out) -> Result<(), Closed> {
    let _open = OpenWatch::new(&shared.open_watches);
    let store = &shared.api.store;
    let gr = w.rt.group_resource();
    let api_version = w.rt.api_version();
    let mut faults = shared.faults.subscribe();
    let base = *faults.borrow_and_update();
    let mut changes = store.subscribe();
    changes.borrow_and_update();
    let interval = shared
        .config
        .bookmark_interval
        .max(Duration::from_millis(1));
    let mut bookmarks = tokio::time::interval_at(Instant::now() + interval, interval);
    bookmarks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = w.timeout.map(|t| Instant::now() + t);

    // A stalled server sends nothing, not even the first event.
    while faults.borrow().stalled {
        tokio::select! {
            r = faults.changed() => if r.is_err() { return Ok(()) },
            _ = out.tx.closed() => return Err(Closed),
        }
    }

    let mut cursor = match start {
        Start::From(rv) => rv,
        Start::Initial { end_bookmark } => {
            let (objs, rv) = store.snapshot(&gr, w.namespace.as_deref());
            for o in objs.iter().filter(|o| w.matches(o)) {
                out.event("ADDED", o, w, &api_version);
                out.maybe_flush().await?;
            }
            if end_bookmark {
                out.bookmark(rv, w, &api_version, true);
            }
            out.flush().await?;
            rv
        }
    };

    loop {
        let f = *faults.borrow_and_update();
        if f.cut_gen != base.cut_gen {
            out.flush().await?;
            return Ok(());
        }
        if f.mid_chunk_gen != base.mid_chunk_gen {
            out.abort_next = true;
        }
        if f.stalled {
            tokio::select! {
                r = faults.changed() => if r.is_err() { return Ok(()) },
                _ = out.tx.closed() => return Err(Closed),
            }
            continue;
        }
        if shared
            .api
            .registry()
            .lookup(&w.rt.group, &w.rt.version, &w.rt.plural)
            .is_none()
        {
            // The type went away (its CRD was deleted): the server ends the watch.
            out.flush().await?;
            return Ok(());
        }
        match store.events_after(&gr, cursor, BATCH_EVENTS) {
            Err(e) => {
                out.error(&e);
                out.flush().await?;
                return Ok(());
            }
            Ok(c) => {
                for ev in &c.events {
                    cursor = ev.rv;
                    let now = w.matches(&ev.obj);
                    match ev.change {
                        ChangeType::Added if now => out.event("ADDED", &ev.obj, w, &api_version),
                        ChangeType::Deleted if now => {
                            out.event("DELETED", &ev.obj, w, &api_version)
                        }
                        ChangeType::Modified => {
                            let before = ev.prev.as_deref().is_some_and(|p| w.matches(p));
                            match (before, now) {
                                (true, true) => out.event("MODIFIED", &ev.obj, w, &api_version),
                                (false, true) => out.event("ADDED", &ev.obj, w, &api_version),
                                (true, false) => {
                                    if let Some(p) = &ev.prev {
                                        let gone = restamp(p, ev.rv, &api_version, &w.rt.kind);
                                        out.event("DELETED", &gone, w, &api_version);
                                    }
                                }
                                (false, false) => {}
                            }
                        }
                        _ => {}
                    }
                    out.maybe_flush().await?;
                }
                if !c.more {
                    // Nothing of this type happened up to `current`.
                    cursor = cursor.max(c.current);
                }
                out.flush().await?;
                if c.more {
                    continue;
                }
            }
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = changes.changed() => if r.is_err() { return Ok(()) },
            r = faults.changed() => if r.is_err() { return Ok(()) },
            _ = bookmarks.tick(), if w.bookmarks => {
                // Bookmarks are sent only while not stalled; this branch runs after the
                // stall check above, and a stall arriving now is seen next loop.
                if !faults.borrow().stalled {
                    out.bookmark(cursor, w, &api_version, false);
                    out.flush().await?;
                }
            }
            _ = sleep => {
                if !faults.borrow().stalled {
                    out.flush().await?;
                    return Ok(());
                }
            }
            _ = out.tx.closed() => return Err(Closed),
        }
    }
}
