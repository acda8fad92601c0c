//! The plugin stage shared by `herald run` and `herald demo`: takes changes
//! off the source's channel, runs each through its watch's chain on a thread
//! of its own (plugins are synchronous and fast), and hands every outcome on.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::change::{ChangeEvent, ChangeType, Gvk};
use crate::plugin::{Chain, EventData, Fate};

/// One change after its chain.
#[derive(Debug)]
pub struct Outcome {
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// The watched type.
    pub gvk: Gvk,
    /// The watch that saw the change.
    pub watch: String,
    /// `metadata.namespace` as the API server sent it.
    pub namespace: Option<String>,
    /// `metadata.name` as the API server sent it.
    pub name: String,
    /// `metadata.uid` as the API server sent it.
    pub uid: String,
    /// When herald saw the change.
    pub observed_at: std::time::SystemTime,
    /// The object as the chain left it.
    pub object: Value,
    /// The previous state, if any.
    pub old: Option<Value>,
    /// Where it goes.
    pub fate: Fate,
}

/// Starts the plugin thread. `chains` are keyed by watch id; a watch without
/// a chain delivers its changes as they are. `deliver` sees every outcome,
/// in order, and stops the thread by returning `Break`. The thread ends when
/// every sender of `rx` is gone.
pub fn spawn(
    rx: mpsc::Receiver<ChangeEvent>,
    chains: BTreeMap<String, Chain>,
    deliver: impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let (_keep, updates) = std::sync::mpsc::channel();
    spawn_reloadable(rx, chains, updates, deliver)
}

/// Like [`spawn`], and takes new chains from `updates` between two events:
/// an event runs wholly on the chains it started with, and the next one on
/// the newest chains sent. The old chains are dropped on the pipeline's
/// thread once replaced.
pub fn spawn_reloadable(
    mut rx: mpsc::Receiver<ChangeEvent>,
    mut chains: BTreeMap<String, Chain>,
    updates: std::sync::mpsc::Receiver<BTreeMap<String, Chain>>,
    mut deliver: impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("herald-pipeline".into())
        .spawn(move || {
            while let Some(mut ev) = rx.blocking_recv() {
                while let Ok(newer) = updates.try_recv() {
                    chains = newer;
                }
                // The identity is taken before the object moves into the
                // chain: the object itself is moved, never copied.
                let namespace = ev.namespace().map(str::to_string);
                let name = ev.name().to_string();
                let uid = ev.uid().to_string();
                let data = EventData::new(ev.change, std::mem::take(&mut ev.object), ev.old.take());
                let (event, fate) = match chains.get_mut(&ev.watch) {
                    Some(chain) => match chain.run(vec![data]).pop() {
                        Some(o) => (o.event, o.fate),
                        None => continue,
                    },
                    None => (data, Fate::Deliver { routes: vec![] }),
                };
                let outcome = Outcome {
                    change: ev.change,
                    gvk: ev.gvk,
                    watch: ev.watch,
                    namespace,
                    name,
                    uid,
                    observed_at: ev.observed_at,
                    object: event.object,
                    old: event.old,
                    fate,
                };
                if deliver(outcome).is_break() {
                    break;
                }
            }
        })
}
