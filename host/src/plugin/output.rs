//! What a plugin writes on its way to herald's log: `log` lines, stdout and
//! stderr, and the text of its verdicts.
//!
//! A plugin is untrusted text in herald's log, so every line is
//!
//! - **tagged** with the plugin (`plugin=<name>`, and `stream=stdout|stderr`
//!   for standard output and error);
//! - **sanitised**: control characters are escaped (`\n`, `\r`, `\u{1b}`…),
//!   so a message cannot forge a line of its own in the plain log format or
//!   move the terminal's cursor;
//! - **capped** at [`MAX_LINE`] bytes, with a marker saying how much was cut;
//! - **rate-limited** per plugin (all its instances, across reloads):
//!   [`BURST`] lines at once, [`PER_SECOND`] a second after that. Lines over
//!   the limit are counted, not written; the count is reported in one line
//!   (at most once a second, and when the plugin's log goes away) and kept
//!   in [`PluginLog::suppressed`].
//!
//! Drop reasons and route names are capped ([`MAX_REASON`], [`MAX_ROUTE`],
//! [`MAX_ROUTES`]) and sanitised the same way: they end up in log lines and
//! notifications.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::bindings::herald::plugin::types::Level;

/// Longest line taken from a plugin, in bytes.
pub(super) const MAX_LINE: usize = 4 << 10;
/// Longest drop reason, in bytes.
pub const MAX_REASON: usize = 1 << 10;
/// Longest route (sink) name: a DNS name's length, far above any sink name.
pub const MAX_ROUTE: usize = 253;
/// Most routes one verdict may name.
pub const MAX_ROUTES: usize = 64;
/// Lines a plugin may write at once.
pub const BURST: u32 = 100;
/// Lines a plugin may write per second after a burst.
pub const PER_SECOND: u32 = 20;
/// Least time between two reports of suppressed lines: a plugin that floods
/// every call must not get a report line per call instead.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Lines of stderr kept per call, to report a panic that bypassed the SDK.
const STDERR_TAIL: usize = 16;

/// Where a plugin's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The `log` import, at its level.
    Log(Level),
    /// Standard output (info level).
    Stdout,
    /// Standard error (warn level).
    Stderr,
}

/// One plugin's log budget and suppression count, shared by its instances.
pub struct PluginLog {
    plugin: Arc<str>,
    limiter: DefaultDirectRateLimiter,
    /// Lines suppressed since the process started.
    suppressed: AtomicU64,
    /// Lines suppressed since the last report of them.
    unreported: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for PluginLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLog")
            .field("plugin", &self.plugin)
            .field("suppressed", &self.suppressed())
            .finish()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl PluginLog {
    /// A fresh budget for plugin `plugin`.
    pub fn new(plugin: &str) -> Self {
        PluginLog {
            plugin: Arc::from(plugin),
            limiter: RateLimiter::direct(
                Quota::per_second(nonzero(PER_SECOND)).allow_burst(nonzero(BURST)),
            ),
            suppressed: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            last_report: Mutex::new(None),
        }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Lines over the rate limit, not written, since the process started.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// Writes one line of the plugin's to herald's log, if the level is
    /// enabled and the budget allows.
    pub(crate) fn line(&self, source: Source, text: &str) {
        let enabled = match source {
            Source::Log(Level::Trace) => tracing::enabled!(tracing::Level::TRACE),
            Source::Log(Level::Debug) => tracing::enabled!(tracing::Level::DEBUG),
            Source::Log(Level::Info) | Source::Stdout => tracing::enabled!(tracing::Level::INFO),
            Source::Log(Level::Warn) | Source::Stderr => tracing::enabled!(tracing::Level::WARN),
            Source::Log(Level::Error) => tracing::enabled!(tracing::Level::ERROR),
        };
        // A line nobody would see costs no budget.
        if !enabled {
            return;
        }
        if self.limiter.check().is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            self.unreported.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.report_suppressed(REPORT_INTERVAL);
        let text = sanitise(text, MAX_LINE);
        let plugin = &*self.plugin;
        match source {
            Source::Log(Level::Trace) => tracing::trace!(plugin, "{text}"),
            Source::Log(Level::Debug) => tracing::debug!(plugin, "{text}"),
            Source::Log(Level::Info) => tracing::info!(plugin, "{text}"),
            Source::Log(Level::Warn) => tracing::warn!(plugin, "{text}"),
            Source::Log(Level::Error) => tracing::error!(plugin, "{text}"),
            Source::Stdout => tracing::info!(plugin, stream = "stdout", "{text}"),
            Source::Stderr => tracing::warn!(plugin, stream = "stderr", "{text}"),
        }
    }

    /// Reports lines suppressed since the last report, unless one was made
    /// less than `min_interval` ago.
    pub(crate) fn report_suppressed(&self, min_interval: Duration) {
        if self.unreported.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut last = self.last_report.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < min_interval) {
            return;
        }
        let n = self.unreported.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            plugin = &*self.plugin,
            suppressed = n,
            total = self.suppressed(),
            "plugin wrote too much: {n} log lines suppressed (limit {BURST} lines at once, {PER_SECOND} a second)"
        );
    }
}

impl Drop for PluginLog {
    /// The last count is not lost when the process (or `plugin test`) ends.
    fn drop(&mut self) {
        self.report_suppressed(Duration::ZERO);
    }
}

/// `text` fit for one log line: control characters escaped, cut to about
/// `max` bytes with a marker that says how long it was.
pub(super) fn sanitise(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 32);
    for c in text.chars() {
        if out.len() >= max {
            out.push_str(&format!("… [cut: {} bytes in all]", text.len()));
            return out;
        }
        match c {
            '\t' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            // C0, DEL, C1 (ESC among them) and the Unicode line and
            // paragraph separators.
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
    }
    out
}

/// Caps a drop reason.
pub(crate) fn reason(text: String) -> String {
    if text.len() <= MAX_REASON && !text.chars().any(needs_escape) {
        return text;
    }
    sanitise(&text, MAX_REASON)
}

/// Caps route names and their number.
pub(crate) fn routes(mut sinks: Vec<String>) -> Vec<String> {
    sinks.truncate(MAX_ROUTES);
    for s in &mut sinks {
        if s.len() > MAX_ROUTE || s.chars().any(needs_escape) {
            *s = sanitise(s, MAX_ROUTE);
        }
    }
    sinks
}

fn needs_escape(c: char) -> bool {
    c != '\t' && (c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

/// Standard output or error of one plugin instance: cut into lines, each
/// written to herald's log through the plugin's [`PluginLog`].
#[derive(Clone)]
pub(crate) struct PluginOutput {
    inner: Arc<Mutex<Lines>>,
}

struct Lines {
    log: Arc<PluginLog>,
    source: Source,
    /// The line being written.
    partial: Vec<u8>,
    /// Bytes dropped from the current line past [`MAX_LINE`].
    overflow: usize,
    /// The last lines of this call (stderr), for panic reports.
    tail: VecDeque<String>,
}

impl PluginOutput {
    pub(crate) fn new(log: Arc<PluginLog>, source: Source) -> Self {
        PluginOutput {
            inner: Arc::new(Mutex::new(Lines {
                log,
                source,
                partial: Vec::new(),
                overflow: 0,
                tail: VecDeque::new(),
            })),
        }
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes out a line left unterminated (at the end of a call).
    pub(crate) fn flush(&self) {
        self.lines().end_line();
    }

    /// Forgets the lines of the previous call.
    pub(crate) fn start_call(&self) {
        self.lines().tail.clear();
    }

    /// The last lines written in this call.
    pub(crate) fn tail(&self) -> Vec<String> {
        self.lines().tail.iter().cloned().collect()
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut lines = self.lines();
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match chunk.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (chunk, false),
            };
            let room = MAX_LINE.saturating_sub(lines.partial.len());
            let take = body.len().min(room);
            lines.partial.extend_from_slice(&body[..take]);
            lines.overflow += body.len() - take;
            if ends {
                lines.end_line();
            }
        }
    }
}

impl Lines {
    fn end_line(&mut self) {
        if self.partial.is_empty() && self.overflow == 0 {
            return;
        }
        let mut text = String::from_utf8_lossy(&self.partial).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if self.overflow > 0 {
            text.push_str(&format!(
                "… [cut: {} bytes in all]",
                self.partial.len() + self.overflow
            ));
        }
        self.partial.clear();
        self.overflow = 0;
        if self.source == Source::Stderr {
            if self.tail.len() == STDERR_TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(text.clone());
        }
        self.log.line(self.source, &text);
    }
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PluginOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for PluginOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Lines go out as they end; an unterminated one at the end of the
        // call (the host flushes it then).
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always room: what does not fit a line is counted and dropped.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for PluginOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_escapes_control_characters_and_caps_with_a_marker() {
        assert_eq!(
            sanitise("a\nb\rc\u{1b}[31md\te", 100),
            "a\\nb\\rc\\u{1b}[31md\te"
        );
        let long = "x".repeat(5000);
        let s = sanitise(&long, MAX_LINE);
        assert!(s.starts_with(&"x".repeat(MAX_LINE)));
        assert!(s.ends_with("… [cut: 5000 bytes in all]"), "{s}");
        // Never cuts inside a character.
        let s = sanitise(&"é".repeat(10), 5);
        assert!(s.starts_with("ééé…"), "{s}");
    }

    #[test]
    fn reasons_and_routes_are_capped() {
        assert_eq!(reason("fine".into()), "fine");
        let r = reason("r".repeat(8 << 20));
        assert!(r.len() < MAX_REASON + 64, "{}", r.len());
        assert!(r.ends_with(&format!("[cut: {} bytes in all]", 8 << 20)));
        assert_eq!(reason("a\nb".into()), "a\\nb");
        let rs = routes(vec!["s".repeat(1000); 100]);
        assert_eq!(rs.len(), MAX_ROUTES);
        assert!(rs[0].starts_with(&"s".repeat(MAX_ROUTE)));
        assert!(rs[0].len() < MAX_ROUTE + 64);
        assert_eq!(routes(vec!["ok".into()]), vec!["ok".to_string()]);
    }

    #[test]
    fn the_budget_counts_what_it_suppresses() {
        let log = PluginLog::new("p");
        // No subscriber: nothing is enabled, nothing is spent.
        for _ in 0..1000 {
            log.line(Source::Stdout, "x");
        }
        assert_eq!(log.suppressed(), 0);
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(std::io::sink)
                .finish(),
        );
        for _ in 0..1000 {
            log.line(Source::Stdout, "x");
        }
        let s = log.suppressed();
        assert!(
            (1000 - u64::from(BURST) - 5..=1000 - u64::from(BURST)).contains(&s),
            "{s}"
        );
    }

    #[test]
    fn output_is_cut_into_lines_and_long_lines_are_capped() {
        let log = Arc::new(PluginLog::new("p"));
        let out = PluginOutput::new(log, Source::Stderr);
        out.write_bytes(b"one\ntw");
        out.write_bytes(b"o\r\n");
        out.write_bytes(&vec![b'z'; MAX_LINE + 10]);
        out.write_bytes(b"\npartial");
        out.flush();
        let tail = out.tail();
        assert_eq!(tail[..2], ["one".to_string(), "two".to_string()]);
        assert!(tail[2].ends_with(&format!("[cut: {} bytes in all]", MAX_LINE + 10)));
        assert_eq!(tail[3], "partial");
    }
}
