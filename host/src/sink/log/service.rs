//! A built log sink, and the thread that owns standard output.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

use tokio::sync::oneshot;

use serde_json::{Map, Value};

use super::config::LogConfig;
use crate::sink::config::OldState;
use crate::sink::http::Attempt;
use crate::sink::notification::Notification;

/// A built log sink.
#[derive(Debug, Clone)]
pub(crate) struct LogOut {
    sink: String,
    old: OldState,
    metadata: Map<String, Value>,
}

impl LogOut {
    /// Builds the sink `name`.
    pub(crate) fn new(name: &str, cfg: &LogConfig) -> Self {
        LogOut {
            sink: name.to_string(),
            old: cfg.old,
            metadata: cfg.metadata.clone().into_iter().collect(),
        }
    }

    /// Writes one line. A closed stdout is retried (and logged) like any
    /// failing endpoint. The write and flush happen on herald's stdout
    /// thread: a slow reader of stdout (a pipe, a terminal) never blocks the
    /// async runtime.
    pub(crate) async fn write(&self, n: &Notification) -> Attempt {
        let line = self.line(n);
        match stdout_writer().write(line).await {
            Ok(()) => Attempt::Delivered,
            Err(e) => Attempt::Retry {
                after: None,
                reason: format!("cannot write to standard output: {e}"),
            },
        }
    }

    /// The line [`LogOut::write`] writes for `n`, newline included.
    pub fn line(&self, n: &Notification) -> Vec<u8> {
        let mut line = n
            .envelope_ref(&self.sink, &self.metadata, self.old)
            .to_vec();
        line.push(b'\n');
        line
    }
}

/// One line to write, and where to say how it went.
type Line = (Vec<u8>, oneshot::Sender<std::io::Result<()>>);

/// The thread that owns standard output for every log sink: lines are
/// written whole and in the order they arrive.
struct StdoutWriter(Sender<Line>);

impl StdoutWriter {
    async fn write(&self, line: Vec<u8>) -> std::io::Result<()> {
        let (done, result) = oneshot::channel();
        self.0
            .send((line, done))
            .map_err(|_| std::io::Error::other("the stdout writer stopped"))?;
        result
            .await
            .map_err(|_| std::io::Error::other("the stdout writer stopped"))?
    }
}

fn stdout_writer() -> &'static StdoutWriter {
    static WRITER: OnceLock<StdoutWriter> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (tx, rx) = channel::<Line>();
        let spawned = std::thread::Builder::new()
            .name("herald-stdout".into())
            .spawn(move || {
                for (line, done) in rx {
                    let mut out = std::io::stdout().lock();
                    let r = out.write_all(&line).and_then(|_| out.flush());
                    let _ = done.send(r);
                }
            });
        if let Err(e) = spawned {
            // Every write then fails, and says why, as a retried delivery.
            tracing::error!("cannot start the stdout writer thread: {e}");
        }
        StdoutWriter(tx)
    })
}
