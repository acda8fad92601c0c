//! A real HTTP/1.1 receiver on loopback for the sink tests: it records every
//! request (when it arrived, method, path, headers, body, what it answered)
//! and answers from a script the test gives, so faults are injected at the
//! receiver, never inside herald.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use herald_e2e::receiver::{Receiver, Reply};
//! // 500 for the first 30 s after the first request, then 200.
//! let r = Receiver::start(|_req, since_first| {
//!     if since_first < Duration::from_secs(30) { Reply::status(500) } else { Reply::ok() }
//! })
//! .await;
//! let url = r.url("/hook");
//! # }
//! ```
//!
//! [`verify_signature`] checks Standard Webhooks signatures with its own
//! implementation (HMAC-SHA256 written here, not herald's).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Response};
use sha2::Sha256;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Request {
    /// 0 for the first request, then 1, 2, …
    pub seq: usize,
    /// When its body had been read (before the answer).
    pub at: Instant,
    /// The same moment on the wall clock.
    pub time: SystemTime,
    /// `POST`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The status answered; `None` when the script said [`Reply::Hang`].
    pub status: Option<u16>,
}

impl Request {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// When it is not JSON (the message shows the body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request {} to {}: body is not JSON ({e}): {}",
                self.seq,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Answered with a 2xx.
    pub fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What the receiver does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status, headers and body.
    Respond {
        /// The status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Read the request and never answer (the connection stays open).
    Hang,
}

impl Reply {
    /// `200 OK`, empty body.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    /// This status, empty body.
    pub fn status(status: u16) -> Reply {
        Reply::Respond {
            status,
            headers: vec![],
            body: vec![],
        }
    }

    /// Adds a header (no effect on [`Reply::Hang`]).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// Sets the body (no effect on [`Reply::Hang`]).
    pub fn body(mut self, text: impl Into<Vec<u8>>) -> Reply {
        if let Reply::Respond { body, .. } = &mut self {
            *body = text.into();
        }
        self
    }
}

type Script = dyn Fn(&Request, Duration) -> Reply + Send + Sync;

struct State {
    script: Box<Script>,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    first: Option<Instant>,
    requests: Vec<Request>,
}

/// A running receiver; stops (and drops its connections) when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts on `127.0.0.1:<free port>`. `script` gets each request (its
    /// `status` not yet set) and the time since the receiver's first
    /// request, and decides the answer. It runs under the receiver's lock,
    /// one request at a time, so it may keep state in a `Mutex` or atomics.
    pub async fn start(
        script: impl Fn(&Request, Duration) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(State {
            script: Box::new(script),
            log: Mutex::new(Log::default()),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            // Owned here so that aborting the accept loop drops every
            // connection, hanging ones included.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Receiver { addr, state, task }
    }

    /// A receiver that answers 200 to everything.
    pub async fn ok() -> Receiver {
        Receiver::start(|_, _| Reply::ok()).await
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// How many requests so far.
    pub fn count(&self) -> usize {
        self.lock().requests.len()
    }

    /// Waits until `pred` holds for the requests so far; false after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Request]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.lock().requests) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.state.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(
    state: Arc<State>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let reply = {
        let mut log = state.log.lock().unwrap_or_else(|p| p.into_inner());
        let at = Instant::now();
        let first = *log.first.get_or_insert(at);
        let mut r = Request {
            seq: log.requests.len(),
            at,
            time: SystemTime::now(),
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".into(), |p| p.to_string()),
            headers: parts.headers,
            body,
            status: None,
        };
        let reply = (state.script)(&r, at - first);
        if let Reply::Respond { status, .. } = &reply {
            r.status = Some(*status);
        }
        log.requests.push(r);
        reply
    };
    match reply {
        Reply::Hang => std::future::pending().await,
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut resp = Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok(resp
                .body(Full::new(Bytes::from(body)))
                .expect("a valid response"))
        }
    }
}

// === Standard Webhooks, written here and not taken from herald ===

/// The `v1,<base64>` signature of `id.timestamp.body` under `secret`
/// (`whsec_<base64 key>`, or the raw key without the prefix).
pub fn standard_webhooks_signature(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<String, String> {
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .map_err(|e| format!("secret is not base64: {e}"))?,
        None => secret.as_bytes().to_vec(),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks a request the way a Standard Webhooks receiver does: the three
/// headers are there, the timestamp is within `tolerance` of the receipt
/// time, and one of the space-separated `v1,` signatures is `secret`'s.
pub fn verify_signature(req: &Request, secret: &str, tolerance: Duration) -> Result<(), String> {
    let id = req.header("webhook-id").ok_or("no webhook-id header")?;
    let ts = req
        .header("webhook-timestamp")
        .ok_or("no webhook-timestamp header")?;
    let sigs = req
        .header("webhook-signature")
        .ok_or("no webhook-signature header")?;
    let secs: u64 = ts
        .parse()
        .map_err(|_| format!("webhook-timestamp {ts:?} is not seconds"))?;
    let received = req
        .time
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    if secs.abs_diff(received) > tolerance.as_secs() {
        return Err(format!(
            "webhook-timestamp {secs} is {}s away from the receipt time {received}",
            secs.abs_diff(received)
        ));
    }
    let expected = standard_webhooks_signature(secret, id, ts, &req.body)?;
    let expected = expected.as_bytes();
    // Constant-time comparison, as receivers should.
    let matches = |s: &str| {
        let s = s.as_bytes();
        s.len() == expected.len()
            && s.iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    if sigs.split(' ').any(matches) {
        Ok(())
    } else {
        Err(format!("no signature in {sigs:?} matches the secret"))
    }
}
