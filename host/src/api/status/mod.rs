//! `GET /`: the status page. Server-rendered HTML of herald's own metrics
//! (watches, sinks, plugins: the numbers `/metrics` shows, each cell naming
//! its sample in `data-metric`), the sinks' last errors, and a live,
//! filterable tail of the decisions ring, which a little plain JavaScript
//! (`page.js`, no build step) polls from `/api/v1/decisions`. Served on the
//! API listener, behind the same authorization as the API.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::metrics::figures::{self, Sample};
use crate::sink::Sinks;

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// What the page reads.
#[derive(Clone)]
pub struct StatusParts {
    /// Its numbers.
    pub metrics: Metrics,
    /// The sinks' last errors.
    pub sinks: Sinks,
    /// The cluster's name, for the title.
    pub cluster: String,
}

/// `GET /` (the page) and `GET /status.js`.
pub fn status_router(parts: StatusParts) -> axum::Router {
    axum::Router::new()
        .route(
            "/",
            get(move || {
                let parts = parts.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        render(&parts),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/status.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
}

/// `&`, `<`, `>`, `"` and `'` as entities.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The samples, by name then by one label's value.
struct Figures(Vec<Sample>);

impl Figures {
    /// The sample `name` whose label `k` is `v`.
    fn get(&self, name: &str, k: &str, v: &str) -> Option<&Sample> {
        self.0.iter().find(|s| s.name == name && s.label(k) == v)
    }

    /// The values of label `k` of the samples named `name`, each once.
    fn keys(&self, name: &str, k: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.0.iter().filter(|s| s.name == name) {
            if !out.iter().any(|x| x == s.label(k)) {
                out.push(s.label(k).to_string());
            }
        }
        out
    }

    /// A cell with the sample's value, as `/metrics` has it; `show` words it.
    fn cell(&self, name: &str, k: &str, v: &str, show: fn(f64) -> String) -> String {
        match self.get(name, k, v) {
            Some(s) => format!(
                "<td class=\"num\" data-metric=\"{}\" data-value=\"{}\">{}</td>",
                esc(&s.key),
                s.value,
                esc(&show(s.value))
            ),
            None => "<td class=\"num\">–</td>".into(),
        }
    }
}

fn count(v: f64) -> String {
    format!("{v}")
}

fn yes_no(v: f64) -> String {
    if v > 0.0 { "yes" } else { "no" }.into()
}

fn age(v: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(v as u64)).to_string() + " ago"
}

fn render(parts: &StatusParts) -> String {
    let f = Figures(figures::parse(&parts.metrics.encode()));
    let mut h = String::with_capacity(16 * 1024);
    let title = if parts.cluster.is_empty() {
        "herald".to_string()
    } else {
        format!("herald · {}", parts.cluster)
    };
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\
         <h1>{t}</h1><p class=\"note\">The numbers are herald's metrics \
         at <span id=\"rendered\">{at}</span>; they refresh every 5 s.</p>\
         <div id=\"figures\">",
        t = esc(&title),
        at = esc(&humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()),
    );
    watches(&mut h, &f);
    sinks(&mut h, &f, parts);
    plugins(&mut h, &f);
    h.push_str("</div>");
    tail(&mut h);
    h.push_str("<script src=\"status.js\"></script></body></html>");
    h
}

fn watches(h: &mut String, f: &Figures) {
    h.push_str(
        "<h2>Watches</h2><table id=\"watches\"><tr><th>watch</th><th>ready</th>\
         <th>objects</th><th>last event</th><th>restarts</th><th>errors</th></tr>",
    );
    for w in f.keys("herald_watch_ready", "watch") {
        let _ = write!(
            h,
            "<tr data-watch=\"{id}\"><td>{id}</td>{}{}{}{}{}</tr>",
            f.cell("herald_watch_ready", "watch", &w, yes_no),
            f.cell("herald_watch_objects", "watch", &w, count),
            f.cell("herald_last_event_age_seconds", "watch", &w, age),
            f.cell("herald_watch_restarts_total", "watch", &w, count),
            f.cell("herald_watch_errors_total", "watch", &w, count),
            id = esc(&w),
        );
    }
    h.push_str("</table>");
}

fn sinks(h: &mut String, f: &Figures, parts: &StatusParts) {
    h.push_str(
        "<h2>Sinks</h2><table id=\"sinks\"><tr><th>sink</th><th>type</th><th>queue depth</th>\
         <th>delivered</th><th>retries</th><th>dead letters</th><th>disabled</th>\
         <th>last error</th></tr>",
    );
    for s in parts.sinks.status() {
        let n = &s.name;
        let _ = write!(
            h,
            "<tr data-sink=\"{id}\"><td>{id}</td><td>{kind}</td>{}{}{}{}{}<td class=\"err\">{err}</td></tr>",
            f.cell("herald_sink_queue_depth", "sink", n, count),
            f.cell("herald_sink_delivered_total", "sink", n, count),
            f.cell("herald_sink_retries_total", "sink", n, count),
            f.cell("herald_sink_dead_lettered_total", "sink", n, count),
            f.cell("herald_sink_disabled", "sink", n, yes_no),
            id = esc(n),
            kind = esc(&s.kind),
            err = esc(s.last_error.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>");
}

/// One plugin in one watch: its calls and errors samples, and its call-time
/// histogram's cumulative `(le, count)` buckets.
type PluginRow<'a> = (Option<&'a Sample>, Option<&'a Sample>, Vec<(f64, f64)>);

fn plugins(h: &mut String, f: &Figures) {
    h.push_str(
        "<h2>Plugins</h2><table id=\"plugins\"><tr><th>plugin</th><th>watch</th><th>calls</th>\
         <th>errors</th><th>p99</th><th>suspended</th></tr>",
    );
    // Per (plugin, watch): its calls, errors and time; suspension per plugin.
    let mut rows: BTreeMap<(String, String), PluginRow<'_>> = BTreeMap::new();
    for s in &f.0 {
        let key = (s.label("plugin").to_string(), s.label("watch").to_string());
        match s.name.as_str() {
            "herald_plugin_calls_total" => rows.entry(key).or_default().0 = Some(s),
            "herald_plugin_errors_total" => rows.entry(key).or_default().1 = Some(s),
            "herald_plugin_call_seconds_bucket" => {
                let le = s.label("le").parse().unwrap_or(f64::INFINITY);
                rows.entry(key).or_default().2.push((le, s.value));
            }
            _ => {}
        }
    }
    let num = |s: Option<&Sample>| match s {
        Some(s) => format!(
            "<td class=\"num\" data-metric=\"{}\" data-value=\"{}\">{}</td>",
            esc(&s.key),
            s.value,
            s.value
        ),
        None => "<td class=\"num\" data-value=\"0\">0</td>".into(),
    };
    for ((plugin, watch), (calls, errors, buckets)) in &rows {
        let p99 = match figures::quantile_bound(0.99, buckets) {
            Some(b) if b.is_finite() => format!("≤ {}", humantime::format_duration(secs(b))),
            Some(_) => "> 2.6 s".into(),
            None => "–".into(),
        };
        let _ = write!(
            h,
            "<tr data-plugin=\"{p}\"><td>{p}</td><td>{w}</td>{}{}<td class=\"num\">{}</td>{}</tr>",
            num(*calls),
            num(*errors),
            esc(&p99),
            f.cell("herald_plugin_suspended", "plugin", plugin, yes_no),
            p = esc(plugin),
            w = esc(watch),
        );
    }
    h.push_str("</table>");
}

/// A bucket bound in seconds as a duration, to the microsecond.
fn secs(b: f64) -> std::time::Duration {
    std::time::Duration::from_micros((b * 1e6).round() as u64)
}

fn tail(h: &mut String) {
    h.push_str(
        "<h2>Decisions</h2><form id=\"filter\" onsubmit=\"return false\">\
         <input name=\"namespace\" placeholder=\"namespace\"><input name=\"name\" placeholder=\"name\">\
         <input name=\"kind\" placeholder=\"kind\"><input name=\"sink\" placeholder=\"sink\">\
         <select name=\"fate\"><option value=\"\">any fate</option>",
    );
    for fate in crate::decisions::fate::ALL {
        let _ = write!(h, "<option>{fate}</option>");
    }
    h.push_str(
        "</select> <span id=\"tail-status\"></span></form>\
         <table id=\"decisions\"><thead><tr><th>#</th><th>time</th><th>fate</th><th>step</th>\
         <th>object</th><th>change</th><th>plugins</th><th>sinks</th><th>reason</th></tr></thead>\
         <tbody></tbody></table>",
    );
}
