//! Support for herald's end-to-end tests (the tests themselves are in
//! `tests/e2e/tests/`, built as the `e2e` test of the `herald` package so
//! they run the real binary).
//!
//! - [`wasm`]: the path of a plugin built by `scripts/build-plugins`.
//! - [`receiver`]: loopback HTTP receivers with scripted answers, for sinks.
//! - [`k8s`]: a real kube-apiserver on loopback, for the real-apiserver tier.
//! - [`nats`]: a real `nats-server` with JetStream, and a stream reader.
//! - [`browser`]: a real headless Chromium driven over the DevTools protocol.

pub mod browser;
pub mod certs;
pub mod k8s;
pub mod logged;
pub mod nats;
pub mod receiver;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("workspace root: {e}"))
}

/// The `.wasm` of plugin crate `name` (underscored, e.g. `label_filter`).
///
/// # Panics
/// When it has not been built: run `scripts/build-plugins` (the README's test
/// command does).
pub fn wasm(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target
        .join("wasm32-wasip2/plugin")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins with scripts/build-plugins (scripts/test does)",
        path.display()
    );
    path
}

/// A `herald` process started by a test; killed on drop. Its stdout lines
/// (notifications from the log sink) arrive parsed on [`HeraldProcess::next`].
pub struct HeraldProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HeraldProcess {
    /// Starts `bin run --config config` with its log at warn level.
    pub fn run(bin: &str, config: &std::path::Path) -> HeraldProcess {
        Self::run_with_env(bin, config, &[])
    }

    /// [`HeraldProcess::run`] with extra environment variables (secrets the
    /// config names, or `HERALD_LOG` to change the level).
    pub fn run_with_env(
        bin: &str,
        config: &std::path::Path,
        env: &[(&str, &str)],
    ) -> HeraldProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env("HERALD_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start herald run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("herald wrote a line that is not JSON ({e}): {line}")
                });
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        HeraldProcess { child, lines }
    }

    /// Sends SIGTERM and waits up to `wait` for the process to exit; its
    /// exit status, or `None` if it is still running.
    pub fn terminate(&mut self, wait: std::time::Duration) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// The process id (to read its CPU time in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The next notification; panics after 20 s.
    pub fn next(&self) -> serde_json::Value {
        self.lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a notification within 20s")
    }

    /// The next notification within `wait`, if any.
    pub fn next_within(&self, wait: std::time::Duration) -> Option<serde_json::Value> {
        self.lines.recv_timeout(wait).ok()
    }
}

/// A loopback port that is free now and stays free until the process a
/// test starts binds it.
///
/// A port from `bind(0)` is released when its probe socket closes, and the
/// kernel may then hand it to any outgoing connection's local end (those
/// come from the same ephemeral range) before herald binds it: herald then
/// fails to start, or a probe reaches another test's herald. So the port is
/// taken below the ephemeral range (`ip_local_port_range`), where neither
/// `bind(0)` (receivers, simulators) nor an outgoing connection ever lands;
/// each call moves on from the last (from a start that depends on the
/// process id), so this process never hands out a port twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // The range's low end, read once per process.
    static LOW: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let low = *LOW.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or(32768)
    });
    // Ports below 1024 are privileged; keep clear of them.
    let span = low.saturating_sub(2048).min(10_000);
    if span < 100 {
        // No room below the ephemeral range: the kernel's choice.
        return std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
    }
    let base = low - span;
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (base + (start + i) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {base}..{low}");
}

/// GET `url` over a real socket; the status and the body parsed as JSON
/// (`Null` when it is not JSON).
pub async fn http_get(url: &str) -> Result<(u16, serde_json::Value), String> {
    http_send("GET", url, None).await
}

/// `method` `url` with a JSON `body` over a real socket; the status and the
/// body parsed as JSON (`Null` when it is not JSON).
pub async fn http_send(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), String> {
    http_send_as(method, url, body, None).await
}

/// As [`http_send`], with `Authorization: Bearer <token>` when `token` is set.
pub async fn http_send_as(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> Result<(u16, serde_json::Value), String> {
    let (code, body) = http_send_raw(method, url, body, token).await?;
    Ok((
        code,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// GET `url` over a real socket; the status and the body's bytes as they
/// came (key order included).
pub async fn http_get_bytes(url: &str) -> Result<(u16, Vec<u8>), String> {
    http_send_raw("GET", url, None, None).await
}

/// As [`http_send_as`], the body's bytes as they came.
async fn http_send_raw(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let addr = format!(
        "{}:{}",
        uri.host().unwrap_or("127.0.0.1"),
        uri.port_u16().unwrap_or(80)
    );
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((code, body.to_vec()))
}

/// Waits until `url` answers 200, for at most 30 s: a herald that starts
/// several plugin workers while the whole suite shares two cores has taken
/// more than 10 s to list and be ready. (Only a failing test waits that
/// long; every caller asserts that it becomes ready.)
pub async fn wait_http_ok(url: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http_get(url).await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The directory the built plugins are in.
pub fn plugin_dir() -> PathBuf {
    let any = wasm("prune");
    any.parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{} has no parent", any.display()))
}

/// An API-server simulator, a kubeconfig for it, a scratch directory and a
/// free port for herald's API: what every `herald run` test starts from.
pub struct Cluster {
    /// The simulator.
    pub sim: herald_sim::Sim,
    /// Scratch directory (kubeconfig, config files); removed on drop.
    pub dir: tempfile::TempDir,
    /// The simulator's kubeconfig.
    pub kubeconfig: PathBuf,
    /// The port herald's API listens on (written into [`Cluster::config`]).
    pub api_port: u16,
    /// The port of herald's metrics and probes (written into [`Cluster::config`]).
    pub metrics_port: u16,
}

impl Cluster {
    /// Starts a simulator with this bookmark interval.
    pub async fn start(bookmark_interval: std::time::Duration) -> Cluster {
        Self::start_with(herald_sim::Simulator::builder().bookmark_interval(bookmark_interval))
            .await
    }

    /// Starts the simulator `builder` describes.
    pub async fn start_with(builder: herald_sim::SimBuilder) -> Cluster {
        let sim = builder.start().await.expect("simulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Cluster {
            sim,
            dir,
            kubeconfig,
            api_port: free_port(),
            metrics_port: free_port(),
        }
    }

    /// Writes `herald.yaml`: `body` (top-level keys other than `kubeconfig`,
    /// `api` and `metrics`) plus this cluster's kubeconfig, an unauthenticated
    /// API on loopback and the metrics address.
    pub fn config(&self, body: &str) -> PathBuf {
        self.config_with_api(body, "auth: none")
    }

    /// As [`Cluster::config`], with `api_settings` (YAML lines of `api:`
    /// other than `listen`) instead of `auth: none`.
    pub fn config_with_api(&self, body: &str, api_settings: &str) -> PathBuf {
        let path = self.dir.path().join("herald.yaml");
        let api: String = api_settings.lines().map(|l| format!("  {l}\n")).collect();
        let text = format!(
            "kubeconfig: {}\napi:\n  listen: 127.0.0.1:{}\n{api}metrics:\n  listen: 127.0.0.1:{}\n{body}",
            self.kubeconfig.display(),
            self.api_port,
            self.metrics_port,
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// The URL of `path` on herald's API.
    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    /// The URL of `path` (`/metrics`, `/healthz`, `/readyz`) on herald's
    /// metrics listener.
    pub fn probe(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.metrics_port)
    }
}
