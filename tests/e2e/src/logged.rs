//! `herald run` with its log collected as JSON lines, and its metrics read
//! from `/metrics`: for tests that assert what herald says and counts.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::Cluster;

/// `herald run` with its log as JSON lines at info, collected.
pub struct LoggedHerald {
    child: Child,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Drop for LoggedHerald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LoggedHerald {
    /// Starts `bin run --config config` (`bin`: the test's
    /// `env!("CARGO_BIN_EXE_herald")`), its log at info as JSON.
    pub fn start(bin: &str, config: &std::path::Path) -> LoggedHerald {
        Self::start_at(bin, config, "info")
    }

    /// [`LoggedHerald::start`] with `HERALD_LOG` set to `level`.
    pub fn start_at(bin: &str, config: &std::path::Path, level: &str) -> LoggedHerald {
        let mut child = Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env("HERALD_LOG", level)
            .env("HERALD_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start herald run");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    keep.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                }
            }
        });
        LoggedHerald { child, log }
    }

    /// Kills the process (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every log line so far.
    pub fn all(&self) -> Vec<Value> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The log lines whose message starts with `prefix`.
    pub fn lines(&self, prefix: &str) -> Vec<Value> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(prefix))
            })
            .cloned()
            .collect()
    }

    /// Waits up to 30 s for `n` lines starting with `prefix`. What the
    /// lines report (a reload: a file event, then compiling a plugin) can
    /// take several seconds while the whole suite loads the machine.
    pub async fn wait_line(&self, prefix: &str, n: usize) -> Vec<Value> {
        const WAIT: Duration = Duration::from_secs(30);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            let l = self.lines(prefix);
            if l.len() >= n {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let l = self.lines(prefix);
        if l.len() >= n {
            return l;
        }
        // What herald did say, so a failure can be read from the test's
        // output alone.
        let all = self.all();
        let tail: Vec<String> = all[all.len().saturating_sub(30)..]
            .iter()
            .map(Value::to_string)
            .collect();
        panic!(
            "no {n} log lines starting {prefix:?} within {WAIT:?}; herald's last {} log lines:\n{}",
            tail.len(),
            tail.join("\n")
        )
    }
}

/// The value of metric `name{labels}` (labels as written in the text).
pub async fn metric(c: &Cluster, name: &str, labels: &str) -> Option<f64> {
    let url = c.probe("/metrics");
    let text = raw_get(&url).await;
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

/// The body of GET `url` as text (the metrics are not JSON).
pub async fn raw_get(url: &str) -> String {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap_or_default());
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

/// Waits up to 10 s for `name{labels}` to be `want`.
pub async fn wait_metric(c: &Cluster, name: &str, labels: &str, want: f64) {
    for _ in 0..400 {
        if metric(c, name, labels).await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{name}{{{labels}}} never became {want}: {:?}",
        metric(c, name, labels).await
    );
}
