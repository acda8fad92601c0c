//! `herald record`: the change stream herald's watches emit, one JSON line
//! per change, for `herald replay` ([`super::replay`]).
//!
//! The recording starts through [`Herald::start`] as `herald run` does: the
//! same sources (namespace scopes, selectors, `events`, `initialList`,
//! backoff, resync) and the same Secret redaction (`secretData`, applied by
//! the source before anything else sees an object). What changes is what
//! runs after the source: the changes go to the file instead of the
//! pipeline, and nothing that could notify or act on the cluster runs — no
//! state dir (its lock is herald run's), no leader election, no API or
//! metrics listeners, no plugins, no sinks ([`for_recording`]).

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{Config, Herald, Options};
use crate::change::{ChangeEvent, ChangeType};

/// How many recent changes the recorder remembers to write a change two
/// watches saw (overlapping watches of one type) once.
const SEEN: usize = 65_536;

/// One line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// When herald saw the change (RFC 3339).
    pub time: String,
    /// The watch that saw it (the recording config's watch id).
    pub watch: String,
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// A periodic resync re-offering the current state (`resyncInterval`),
    /// not a change the API server reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resync: bool,
    /// The object (for a deletion: its last state), Secret values as the
    /// watch's `secretData` left them.
    pub object: Value,
    /// The previous state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
}

/// `config` stripped of everything but its watches: what a recording runs.
pub(crate) fn for_recording(mut config: Config) -> Config {
    config.state_dir = None;
    config.ha = None;
    config.api = None;
    config.metrics = None;
    config.sinks.clear();
    config.plugins.config.clear();
    config.plugins.policy.clear();
    for w in &mut config.watch {
        w.plugins.clear();
        w.sinks.clear();
    }
    config
}

/// Writes each change a line, flushed as it is written.
pub(crate) struct Recorder {
    out: Box<dyn Write + Send>,
    seen: HashSet<(String, String, ChangeType, bool)>,
    order: VecDeque<(String, String, ChangeType, bool)>,
    written: Arc<AtomicU64>,
    failed: Option<oneshot::Sender<String>>,
    path: String,
}

impl Recorder {
    /// Writes to `out` (named `path` in errors), counting lines in `written`;
    /// the first write error is sent on `failed`.
    pub(crate) fn new(
        out: Box<dyn Write + Send>,
        path: String,
        written: Arc<AtomicU64>,
        failed: oneshot::Sender<String>,
    ) -> Self {
        Recorder {
            out,
            seen: HashSet::new(),
            order: VecDeque::new(),
            written,
            failed: Some(failed),
            path,
        }
    }

    /// Writes `ev` unless another watch's line already holds this change.
    fn write(&mut self, ev: &ChangeEvent) -> std::io::Result<()> {
        let rv = ev
            .object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = (ev.uid().to_string(), rv.to_string(), ev.change, ev.resync);
        if !key.0.is_empty() && !rv.is_empty() {
            if !self.seen.insert(key.clone()) {
                return Ok(());
            }
            self.order.push_back(key);
            if self.order.len() > SEEN
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
        // The same fields as `Recorded`, borrowed: no copy of the objects.
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            watch: &'a str,
            change: ChangeType,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            resync: bool,
            object: &'a crate::change::Doc,
            #[serde(skip_serializing_if = "Option::is_none")]
            old: Option<&'a crate::change::Doc>,
        }
        let line = Line {
            time: humantime::format_rfc3339_millis(ev.observed_at).to_string(),
            watch: &ev.watch,
            change: ev.change,
            resync: ev.resync,
            object: &ev.object,
            old: ev.old.as_ref(),
        };
        let mut text = serde_json::to_vec(&line)?;
        text.push(b'\n');
        self.out.write_all(&text)?;
        self.out.flush()?;
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The thread that takes the source's changes in place of the pipeline.
/// It ends when every sender of `rx` is gone (the watches stopped), with
/// every line written.
pub(crate) fn spawn(
    mut rx: mpsc::Receiver<ChangeEvent>,
    mut recorder: Recorder,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("herald-record".into())
        .spawn(move || {
            while let Some(ev) = rx.blocking_recv() {
                if recorder.failed.is_none() {
                    // Failed before: keep taking changes so the watches do
                    // not block while the command stops.
                    continue;
                }
                if let Err(e) = recorder.write(&ev) {
                    let msg = format!("{}: cannot write: {e}", recorder.path);
                    tracing::error!("{msg}");
                    if let Some(tx) = recorder.failed.take() {
                        let _ = tx.send(msg);
                    }
                }
            }
        })
}

/// Records what `config`'s watches see into `out` until `stop` completes,
/// `duration` passes or a write fails; the number of changes written.
///
/// # Errors
/// The file cannot be created or written; herald does not start.
pub(crate) async fn record(
    config: Config,
    client: kube::Client,
    out: &Path,
    duration: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<u64> {
    let file = std::fs::File::create(out)
        .with_context(|| format!("--out {}: cannot create it", out.display()))?;
    let written = Arc::new(AtomicU64::new(0));
    let (failed_tx, failed_rx) = oneshot::channel();
    // Unbuffered: each line goes out in one write as soon as it is made.
    let recorder = Recorder::new(
        Box::new(file),
        out.display().to_string(),
        written.clone(),
        failed_tx,
    );
    let herald = Herald::start(
        for_recording(config),
        client,
        Options {
            record: Some(recorder),
            ..Options::default()
        },
    )
    .await?;
    tracing::info!(out = %out.display(), "recording");
    let failure = Arc::new(std::sync::Mutex::new(None));
    let slot = failure.clone();
    let until = async move {
        let timer = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = timer => {}
            Ok(msg) = failed_rx => {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(msg);
                }
            }
        }
    };
    herald.run_until(until).await;
    if let Some(msg) = failure.lock().ok().and_then(|mut s| s.take()) {
        bail!("{msg}");
    }
    Ok(written.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Gvk;
    use serde_json::json;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(watch: &str, rv: &str, change: ChangeType) -> ChangeEvent {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d", "uid": "u1", "resourceVersion": rv}});
        let gvk = Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        };
        ChangeEvent::new(change, gvk, pod, None).with_watch(watch)
    }

    #[test]
    fn a_change_two_watches_see_is_one_line_and_lines_read_back() {
        let out = Shared::default();
        let written = Arc::new(AtomicU64::new(0));
        let (tx, _rx) = oneshot::channel();
        let mut r = Recorder::new(Box::new(out.clone()), "t".into(), written.clone(), tx);
        r.write(&event("a", "1", ChangeType::Added)).expect("write");
        r.write(&event("b", "1", ChangeType::Added)).expect("write");
        r.write(&event("a", "2", ChangeType::Modified))
            .expect("write");
        let mut resync = event("a", "2", ChangeType::Modified);
        resync.resync = true;
        r.write(&resync).expect("write");
        assert_eq!(written.load(Ordering::Relaxed), 3);
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<Recorded> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a recorded change"))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0].watch, "a");
        assert_eq!(lines[1].change, ChangeType::Modified);
        assert!(lines[2].resync && !lines[1].resync);
        assert!(
            humantime::parse_rfc3339(&lines[0].time).is_ok(),
            "{}",
            lines[0].time
        );
        assert!(
            !text.contains("\"old\""),
            "no previous state, no field: {text}"
        );
    }

    #[test]
    fn recording_runs_only_the_watches() {
        let text = "watch:\n  - {version: v1, kind: Pod, plugins: [f], sinks: [s]}\n\
                    plugins: {dir: /p, config: {f: {}}}\nsinks:\n  - {name: s, type: log}\n\
                    stateDir: /var/lib/herald\nha: {enabled: true}\n";
        let config = super::super::parse_config(text, Path::new("h.yaml")).expect("config");
        let c = for_recording(config);
        assert!(c.state_dir.is_none() && c.ha.is_none() && c.api.is_none());
        assert!(c.sinks.is_empty() && c.watch[0].plugins.is_empty());
        assert_eq!(c.watch.len(), 1);
    }
}
