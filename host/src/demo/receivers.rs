//! The demo's loopback receivers: a Slack Incoming Webhook, a signed
//! CloudEvents webhook (its signatures checked as Standard Webhooks says) and
//! a batch endpoint, each printing what it gets.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{LABEL, SLACK_LINES, TOLERANCE};

/// What the receivers got.
#[derive(Debug, Default)]
pub(super) struct Received {
    pub(super) slack: usize,
    pub(super) webhook: usize,
    pub(super) verified: usize,
    pub(super) batches: usize,
    pub(super) batched: usize,
}

/// The loopback receivers: a Slack Incoming Webhook, a CloudEvents endpoint
/// that checks signatures, and a batch endpoint. Each prints one line per
/// request as it arrives.
pub(super) struct Receivers {
    pub(super) key: Vec<u8>,
    pub(super) got: Mutex<Received>,
}

impl Receivers {
    fn count(&self, f: impl FnOnce(&mut Received)) {
        f(&mut self.got.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub(super) fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/services/T0DEMO/B0DEMO/demo", post(slack))
            .route("/webhook", post(webhook))
            .route("/batch", post(batch))
            .with_state(self)
    }
}

/// Slack's mrkdwn escapes, undone for the terminal.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The diff lines of a Block Kit message: the contents of its code sections.
fn block_kit_diff(m: &Value) -> Vec<String> {
    let texts = m["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.pointer("/text/text").and_then(Value::as_str));
    let mut lines = Vec::new();
    for t in texts {
        if let Some(code) = t.strip_prefix("```\n") {
            let code = code.split("\n```").next().unwrap_or_default();
            lines.extend(code.lines().map(unescape));
        }
    }
    lines
}

async fn slack(State(r): State<Arc<Receivers>>, body: Bytes) -> (StatusCode, &'static str) {
    let Ok(m) = serde_json::from_slice::<Value>(&body) else {
        println!("{:<LABEL$} ← a body that is not JSON", "slack");
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let text = m["text"].as_str().unwrap_or_default();
    let mut out = format!("{:<LABEL$} ← {text:?}", "slack");
    let lines = block_kit_diff(&m);
    for l in lines.iter().take(SLACK_LINES) {
        out.push_str(&format!("\n{:LABEL$}     {l}", ""));
    }
    if lines.len() > SLACK_LINES {
        let more = lines.len() - SLACK_LINES;
        out.push_str(&format!("\n{:LABEL$}     … {more} more", ""));
    }
    println!("{out}");
    r.count(|c| c.slack += 1);
    (StatusCode::OK, "ok")
}

/// Checks a Standard Webhooks signature: any `v1,` entry of
/// `webhook-signature` that is the HMAC-SHA256 of `id.timestamp.body`, with
/// a timestamp no older than [`TOLERANCE`].
fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    match ts.parse::<u64>() {
        Ok(t) if now.abs_diff(t) <= TOLERANCE.as_secs() => {}
        _ => return false,
    }
    signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|b64| {
            let (Ok(sig), Ok(mut mac)) =
                (STANDARD.decode(b64), Hmac::<Sha256>::new_from_slice(key))
            else {
                return false;
            };
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            // Constant-time comparison, as a real receiver should.
            mac.verify_slice(&sig).is_ok()
        })
}

/// `msg_1a2b3c4d…`: enough of an id to tell two apart.
fn short_id(id: &str) -> String {
    match id.get(..12) {
        Some(head) if id.len() > 12 => format!("{head}…"),
        _ => id.to_string(),
    }
}

async fn webhook(State(r): State<Arc<Receivers>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        println!("{:<LABEL$} ← a body that is not JSON", "webhook");
        return StatusCode::BAD_REQUEST;
    };
    let signed = verify(&r.key, &headers, &body);
    let s = |k: &str| event[k].as_str().unwrap_or("?");
    let mut line = format!(
        "{:<LABEL$} ← {} {} id={} {}",
        "webhook",
        s("type"),
        s("subject"),
        short_id(s("id")),
        if signed {
            "signed v1 ✓"
        } else {
            "signature ✗ INVALID"
        }
    );
    // The Secret watch's prune plugin keeps the data out: say so, without
    // ever printing it.
    let object = &event["data"]["object"];
    if object["kind"] == "Secret" {
        line.push_str(if object.get("data").is_none() {
            ", no Secret data"
        } else {
            ", SECRET DATA RECEIVED ✗"
        });
    }
    println!("{line}");
    r.count(|c| {
        c.webhook += 1;
        c.verified += usize::from(signed);
    });
    StatusCode::OK
}

/// `added Pod shop/web-a1, shop/web-a2; deleted Pod shop/web-a1`: runs of
/// the same change and kind share their words.
fn batch_items(items: &[Value]) -> String {
    let mut out = String::new();
    let mut run: Option<(&str, &str)> = None;
    for item in items {
        let change = item["change"].as_str().unwrap_or("?");
        let kind = item["kind"].as_str().unwrap_or("?");
        let name = item["name"].as_str().unwrap_or("?");
        let subject = match item["namespace"].as_str() {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        if run == Some((change, kind)) {
            out.push_str(&format!(", {subject}"));
        } else {
            if run.is_some() {
                out.push_str("; ");
            }
            out.push_str(&format!("{change} {kind} {subject}"));
            run = Some((change, kind));
        }
    }
    out
}

async fn batch(State(r): State<Arc<Receivers>>, body: Bytes) -> StatusCode {
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        println!("{:<LABEL$} ← a body that is not JSON", "batch");
        return StatusCode::BAD_REQUEST;
    };
    let items = b["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    let n = items.len();
    println!(
        "{:<LABEL$} ← {n} item{}: {}",
        "batch",
        if n == 1 { "" } else { "s" },
        batch_items(items)
    );
    r.count(|c| {
        c.batches += 1;
        c.batched += items.len();
    });
    StatusCode::OK
}
