//! Helpers: start a simulator, a kube client for it, a raw HTTP client, waiting.

use std::time::Duration;

use bytes::Bytes;
use herald_sim::{Sim, Simulator};
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bookmark interval used by tests.
pub const BOOKMARKS: Duration = Duration::from_millis(100);

/// A simulator with fast bookmarks.
pub async fn start() -> Sim {
    Simulator::builder()
        .bookmark_interval(BOOKMARKS)
        .start()
        .await
        .expect("simulator starts")
}

/// A kube client configured from the simulator's kubeconfig, as herald would be.
pub async fn client(sim: &Sim) -> kube::Client {
    let kc =
        kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kube config");
    kube::Client::try_from(cfg).expect("kube client")
}

pub use herald_sim::check::eventually;

/// One HTTP/1.1 request on a fresh connection; returns status, headers and body.
pub async fn request(
    sim: &Sim,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(sim.addr()).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", sim.addr().to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

/// GET returning status and JSON body.
pub async fn get_json(sim: &Sim, path: &str) -> (u16, Value) {
    let (s, _, b) = request(sim, "GET", path, None, "").await;
    (
        s.as_u16(),
        serde_json::from_slice(&b).unwrap_or(Value::Null),
    )
}

/// A watch read byte by byte off the socket, to see exactly what the server sends.
pub struct RawWatch {
    stream: TcpStream,
    raw: Vec<u8>,
    /// Bytes of the body after chunked decoding.
    pub body: Vec<u8>,
    header_len: Option<usize>,
    decoded_upto: usize,
    /// The terminating chunk arrived.
    pub ended: bool,
    /// The connection closed.
    pub eof: bool,
    lines_taken: usize,
}

impl RawWatch {
    /// Sends the request; does not wait for an answer.
    pub async fn send(sim: &Sim, path: &str) -> Self {
        let mut stream = TcpStream::connect(sim.addr()).await.expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            sim.addr()
        );
        stream
            .write_all(req.as_bytes())
            .await
            .expect("write request");
        Self {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
            header_len: None,
            decoded_upto: 0,
            ended: false,
            eof: false,
            lines_taken: 0,
        }
    }

    /// Sends the request and waits for the response headers.
    pub async fn open(sim: &Sim, path: &str) -> Self {
        let mut w = Self::send(sim, path).await;
        assert!(
            w.wait_headers(Duration::from_secs(5)).await,
            "no response headers for {path}"
        );
        let status = w.status();
        assert_eq!(status, 200, "watch {path} answered {status}");
        w
    }

    /// The response status (0 before headers).
    pub fn status(&self) -> u16 {
        let Some(h) = self.header_len else { return 0 };
        let head = String::from_utf8_lossy(&self.raw[..h]);
        head.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Waits up to `timeout` for headers.
    pub async fn wait_headers(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.header_len.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.read_once(left).await == 0 {
                return self.header_len.is_some();
            }
        }
        true
    }

    /// Reads for `dur` (or until the stream ends); returns the number of raw bytes
    /// that arrived.
    pub async fn read_for(&mut self, dur: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + dur;
        let mut total = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.eof || self.ended {
                return total;
            }
            total += self.read_once(left).await;
        }
    }

    async fn read_once(&mut self, timeout: Duration) -> usize {
        let mut buf = vec![0u8; 64 * 1024];
        match tokio::time::timeout(timeout, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                0
            }
            Ok(Ok(n)) => {
                self.raw.extend_from_slice(&buf[..n]);
                self.decode();
                n
            }
            Err(_) => 0,
        }
    }

    fn decode(&mut self) {
        if self.header_len.is_none() {
            if let Some(i) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                self.header_len = Some(i + 4);
                self.decoded_upto = i + 4;
            } else {
                return;
            }
        }
        loop {
            let rest = &self.raw[self.decoded_upto..];
            let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_str = String::from_utf8_lossy(&rest[..nl]).to_string();
            let Ok(size) = usize::from_str_radix(size_str.trim(), 16) else {
                return;
            };
            if size == 0 {
                self.ended = true;
                return;
            }
            if rest.len() < nl + 2 + size + 2 {
                // Incomplete chunk: expose what arrived so a half-written line is visible.
                return;
            }
            self.body.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            self.decoded_upto += nl + 2 + size + 2;
        }
    }

    /// Body bytes after the last complete line (an event cut short).
    pub fn partial_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.rsplit_once('\n')
            .map_or(text.to_string(), |(_, tail)| tail.to_string())
    }

    /// Complete event lines received so far and not yet taken.
    pub fn take_events(&mut self) -> Vec<Value> {
        let text = String::from_utf8_lossy(&self.body).to_string();
        let lines: Vec<&str> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        let out = lines[self.lines_taken..]
            .iter()
            .map(|l| serde_json::from_str(l.trim()).expect("event line is JSON"))
            .collect();
        self.lines_taken = lines.len();
        out
    }

    /// Reads until `n` events (ignoring bookmarks unless `bookmarks`) arrived or `timeout`.
    pub async fn events(&mut self, n: usize, timeout: Duration, bookmarks: bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            out.extend(
                self.take_events()
                    .into_iter()
                    .filter(|e| bookmarks || e["type"] != "BOOKMARK"),
            );
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if out.len() >= n || left.is_zero() || self.eof || self.ended {
                return out;
            }
            self.read_once(left.min(Duration::from_millis(50))).await;
        }
    }
}

/// `(type, name)` of events, for compact assertions.
pub fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}
