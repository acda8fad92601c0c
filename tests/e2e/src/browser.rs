//! A real headless Chromium (Debian's `chromium` package), started by the
//! test and driven over the DevTools protocol (one WebSocket, flat
//! sessions): open a page, evaluate JavaScript in it.
//!
//! # Panics
//! When Chromium is not installed, with what to install: `.ci/run`
//! installs it (`apt-get install -y chromium`); a test that needs it fails
//! rather than skips.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Where Chromium is looked for, in order (`HERALD_CHROMIUM` first).
const CANDIDATES: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];

/// A running headless Chromium; killed (and its profile removed) on drop.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page (a target attached with a flat session).
pub struct Page {
    session: String,
}

/// The Chromium binary: `HERALD_CHROMIUM`, else the first of
/// [`CANDIDATES`] that exists.
///
/// # Panics
/// When there is none, saying how to install it.
pub fn chromium() -> std::path::PathBuf {
    let chosen = std::env::var_os("HERALD_CHROMIUM").map(std::path::PathBuf::from);
    let looked: Vec<std::path::PathBuf> = match chosen {
        Some(p) => vec![p],
        None => CANDIDATES.iter().map(std::path::PathBuf::from).collect(),
    };
    looked
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            let names: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
            panic!(
                "Chromium is not installed (looked for {}; HERALD_CHROMIUM overrides): \
                 the status-page test needs a real browser. Install Debian's package: \
                 `apt-get install -y chromium` (.ci/run does)",
                names.join(", ")
            )
        })
}

impl Browser {
    /// Starts headless Chromium with a new profile and connects to it.
    pub fn start() -> Browser {
        let bin = chromium();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // Chromium says where its DevTools listen on stderr.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "{} did not open its DevTools port within 30 s",
                    bin.display()
                )
            });
        let (ws, _) = tungstenite::connect(url.as_str())
            .unwrap_or_else(|e| panic!("connecting to Chromium's DevTools at {url}: {e}"));
        Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        }
    }

    /// Sends `method` with `params` (to `session`'s page, or the browser)
    /// and waits for its answer; events in between are skipped.
    ///
    /// # Panics
    /// On an error answer, or none within 30 s.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "{method}: no answer within 30 s");
            let frame = self.ws.read().unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] != json!(id) {
                continue;
            }
            if let Some(e) = v.get("error") {
                panic!("{method} failed: {e}");
            }
            return v["result"].clone();
        }
    }

    /// Opens `url` in a new page and waits until it has loaded.
    pub fn open(&mut self, url: &str) -> Page {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        let page = Page {
            session: attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_string(),
        };
        self.call(Some(&page.session), "Page.enable", json!({}));
        self.call(Some(&page.session), "Page.navigate", json!({"url": url}));
        let loaded = self.wait_for(&page, Duration::from_secs(10), "document.readyState", |v| {
            v == "complete"
        });
        assert!(loaded.is_some(), "{url} did not load within 10 s");
        page
    }

    /// The value of `expression` in `page` (awaited if it is a promise).
    ///
    /// # Panics
    /// When it throws.
    pub fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let r = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` every 20 ms until `ok` holds for its value,
    /// for at most `within`; the value, or `None`.
    pub fn wait_for(
        &mut self,
        page: &Page,
        within: Duration,
        expression: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(page, expression);
            if ok(&v) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
