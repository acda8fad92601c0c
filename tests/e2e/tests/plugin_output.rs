//! What plugins write (issue 15, items 2 and 14): `log` lines, stdout and
//! stderr reach herald's log tagged with the plugin, in `herald plugin test`
//! and `herald run`, at every level that shows them; every line is
//! sanitised and capped, each plugin's lines are rate-limited with a count
//! of what was suppressed; drop reasons and route names are capped.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald::change::ChangeType;
use herald::plugin::{
    EventData, LOG_BURST, LOG_PER_SECOND, MAX_REASON, MAX_ROUTE, MAX_ROUTES, PluginInstance,
    PluginSettings, Runtime, RuntimeConfig, Verdict,
};
use herald_e2e::{Cluster, plugin_dir, wait_http_ok, wasm};
use serde_json::{Value, json};

/// `herald plugin test` of the hostile plugin with `config`; exit code,
/// stdout and the log lines (stderr).
fn plugin_test(config: &Value, env: &[(&str, &str)]) -> (i32, String, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = dir.path().join("pod.json");
    std::fs::write(
        &pod,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}})
            .to_string(),
    )
    .expect("write");
    let cfg = dir.path().join("cfg.json");
    std::fs::write(&cfg, config.to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["plugin", "test"])
        .arg(wasm("hostile_plugin"))
        .arg(&pod)
        .arg("--config")
        .arg(&cfg)
        .envs(env.iter().copied())
        .output()
        .expect("run herald");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The log line of plugin `plugin` with this message.
fn find<'a>(lines: &'a [Value], message: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["fields"]["message"] == message)
}

/// A message that tries to colour the terminal.
const COLOURED: &str = "hello \u{1b}[31mred";
const COLOURED_ESCAPED: &str = "hello \\u{1b}[31mred";
/// A message that tries to forge a log line of its own.
const FORGERY: &str = "hello\n2030-01-01T00:00:00Z ERROR herald: forged";
const FORGERY_ESCAPED: &str = "hello\\n2030-01-01T00:00:00Z ERROR herald: forged";

#[test]
fn plugin_test_logs_stdout_stderr_and_log_lines_tagged_with_the_plugin() {
    let config = json!({"mode": "print", "message": COLOURED});
    let (code, _, lines) = plugin_test(&config, &[("HERALD_LOG_FORMAT", "json")]);
    assert_eq!(code, 0, "{lines:?}");
    let lines = json_lines(&lines);
    let stdout = find(&lines, &format!("stdout: {COLOURED_ESCAPED}")).expect("the stdout line");
    assert_eq!(stdout["level"], "INFO");
    assert_eq!(stdout["fields"]["plugin"], "hostile_plugin");
    assert_eq!(stdout["fields"]["stream"], "stdout");
    let stderr = find(&lines, &format!("stderr: {COLOURED_ESCAPED}")).expect("the stderr line");
    assert_eq!(stderr["level"], "WARN");
    assert_eq!(stderr["fields"]["stream"], "stderr");
    let log = find(&lines, &format!("log: {COLOURED_ESCAPED}")).expect("the log line");
    assert_eq!(log["fields"]["plugin"], "hostile_plugin");
    // A line the plugin left unterminated when its call returned.
    assert!(find(&lines, &format!("unterminated: {COLOURED_ESCAPED}")).is_some());

    // At warn, stderr still shows (stdout and info lines are filtered).
    let (_, _, lines) = plugin_test(
        &config,
        &[("HERALD_LOG_FORMAT", "json"), ("HERALD_LOG", "warn")],
    );
    let lines = json_lines(&lines);
    assert!(find(&lines, &format!("stderr: {COLOURED_ESCAPED}")).is_some());
    assert!(find(&lines, &format!("stdout: {COLOURED_ESCAPED}")).is_none());
    // At debug, everything.
    let (_, _, lines) = plugin_test(
        &config,
        &[("HERALD_LOG_FORMAT", "json"), ("HERALD_LOG", "debug")],
    );
    let lines = json_lines(&lines);
    assert!(find(&lines, &format!("stdout: {COLOURED_ESCAPED}")).is_some());
    // The plain format: no escape character reaches the terminal.
    let (_, _, lines) = plugin_test(&config, &[]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("stdout: {COLOURED_ESCAPED}")) && l.contains("plugin=")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "{lines:#?}");

    // A newline in a `log` message is escaped: no line of herald's plain
    // log starts with the forged timestamp. (On stdout a newline ends a
    // line, and each line gets herald's own timestamp and the tag.)
    let (_, _, lines) = plugin_test(&json!({"mode": "print", "message": FORGERY}), &[]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("log: {FORGERY_ESCAPED}")) && l.contains("plugin=")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("2030-01-01")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("2030-01-01T00:00:00Z ERROR herald: forged"))
            .all(|l| l.contains("plugin=\"hostile_plugin\"")),
        "{lines:#?}"
    );
}

#[test]
fn a_flood_of_log_lines_is_rate_limited_with_a_count_of_what_was_suppressed() {
    let started = Instant::now();
    let (code, _, lines) = plugin_test(
        &json!({"mode": "flood", "count": 20000, "message": "x".repeat(150)}),
        &[("HERALD_LOG_FORMAT", "json")],
    );
    assert_eq!(code, 0);
    let lines = json_lines(&lines);
    let written = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("line "))
        })
        .count();
    // The burst, and what the rate refills while the call runs (seconds on
    // a loaded machine).
    let refill = LOG_PER_SECOND as usize * (started.elapsed().as_secs() as usize + 1);
    assert!(
        (LOG_BURST as usize..=LOG_BURST as usize + refill).contains(&written),
        "{written} lines written"
    );
    // One report at once, more at most once a second while the call runs,
    // the rest when plugin test ends: together, every line not written.
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["suppressed"].is_u64())
        .collect();
    assert!(
        !summaries.is_empty(),
        "a line counting the suppressed lines"
    );
    let suppressed: u64 = summaries
        .iter()
        .filter_map(|l| l["fields"]["suppressed"].as_u64())
        .sum();
    assert_eq!(suppressed as usize + written, 20000, "{summaries:#?}");
    let last = summaries[summaries.len() - 1];
    assert_eq!(last["fields"]["total"].as_u64(), Some(suppressed));
    assert_eq!(last["fields"]["plugin"], "hostile_plugin");
    let first = summaries[0]["fields"]["suppressed"].as_u64().unwrap_or(0);
    assert!(
        summaries[0]["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!(
                "plugin wrote too much: {first} log lines suppressed (limit 100 lines at once, 20 a second)"
            ))),
        "{}",
        summaries[0]
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn long_lines_drop_reasons_and_route_names_are_capped() {
    // One 100 KiB log line.
    let (_, _, lines) = plugin_test(
        &json!({"mode": "flood", "count": 1, "message": "y".repeat(100 << 10)}),
        &[("HERALD_LOG_FORMAT", "json")],
    );
    let lines = json_lines(&lines);
    let line = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .find(|m| m.starts_with("line 0: y"))
        .expect("the long line");
    assert!(line.len() <= (4 << 10) + 64, "{}", line.len());
    assert!(
        line.ends_with(&format!("[cut: {} bytes in all]", (100 << 10) + 8)),
        "{}",
        &line[line.len() - 60..]
    );

    // An 8 MiB drop reason.
    let (code, out, _) = plugin_test(
        &json!({"mode": "big-drop", "message": "r", "count": 8 << 20}),
        &[],
    );
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).expect("report");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.len() <= MAX_REASON + 64, "{}", reason.len());
    assert!(
        reason.ends_with(&format!("[cut: {} bytes in all]", 8 << 20)),
        "{reason}"
    );

    // Route names: long ones cut, control characters escaped, at most
    // MAX_ROUTES of them.
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugin = rt
        .load("hostile_plugin", &wasm("hostile_plugin"), &[])
        .expect("load");
    let mut sinks = vec!["s".repeat(1000), "a\nb".to_string()];
    sinks.extend((0..200).map(|i| format!("sink-{i}")));
    let mut p = PluginInstance::new(
        plugin,
        PluginSettings {
            config: json!({"mode": "route", "sinks": sinks}).to_string(),
            ..PluginSettings::default()
        },
    )
    .expect("init");
    let out = p.handle(vec![EventData::new(
        ChangeType::Added,
        json!({"kind": "Pod", "metadata": {"name": "x"}}),
        None,
    )]);
    let Ok(verdicts) = out.verdicts else {
        panic!("{:?}", out.verdicts)
    };
    let Verdict::Route(got) = &verdicts[0] else {
        panic!("{verdicts:?}")
    };
    assert_eq!(got.len(), MAX_ROUTES);
    assert!(got[0].starts_with(&"s".repeat(MAX_ROUTE)) && got[0].len() < MAX_ROUTE + 64);
    assert_eq!(got[1], "a\\nb");
}

/// The suppression counter a metric can read, per plugin and across its
/// instances.
#[test]
fn the_suppressed_count_is_kept_per_plugin() {
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .finish(),
    );
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugin = rt
        .load("flooder", &wasm("hostile_plugin"), &[])
        .expect("load");
    let settings = PluginSettings {
        config: json!({"mode": "flood", "count": 1000}).to_string(),
        ..PluginSettings::default()
    };
    let mut a = PluginInstance::new(plugin.clone(), settings.clone()).expect("init");
    let mut b = PluginInstance::new(plugin.clone(), settings).expect("init");
    let event = || {
        vec![EventData::new(
            ChangeType::Added,
            json!({"kind": "Pod", "metadata": {"name": "x"}}),
            None,
        )]
    };
    a.handle(event());
    let after_one = plugin.log().suppressed();
    assert!(after_one >= 1000 - u64::from(LOG_BURST) - 20, "{after_one}");
    b.handle(event());
    assert!(
        plugin.log().suppressed() >= after_one + 980,
        "the budget is the plugin's, not the instance's: {}",
        plugin.log().suppressed()
    );
    // A reload (a new load of the same name) keeps the budget.
    let again = rt
        .load("flooder", &wasm("hostile_plugin"), &[])
        .expect("load");
    assert_eq!(again.log().suppressed(), plugin.log().suppressed());
}

/// `herald run`: the plugin's stdout and stderr reach herald's log as the
/// notification goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_logs_what_a_plugin_prints() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config(&format!(
        r#"
watch:
  - version: v1
    kind: Pod
    plugins: [noisy]
plugins:
  dir: {dir}
  config:
    noisy: {{ mode: print, message: "{message}" }}
  policy:
    noisy: {{ file: hostile_plugin.wasm }}
"#,
        dir = plugin_dir().display(),
        message = "hi from noisy",
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["run", "--config"])
        .arg(&config)
        .env("HERALD_LOG", "info")
        .env("HERALD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald");
    let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
    for (is_log, pipe) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        let Some(pipe) = pipe else { continue };
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send((is_log, line)).is_err() {
                    break;
                }
            }
        });
    }
    // Ready: every watch's first list is done, so web-1 is an addition.
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );
    c.sim
        .create(
            "pods",
            herald_sim::fixtures::pod("shop", "web-1", &[("app", "web")]),
        )
        .await
        .expect("create");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut notified, mut logs) = (false, Vec::new());
    let want = [
        "stdout: hi from noisy",
        "stderr: hi from noisy",
        "log: hi from noisy",
    ];
    while Instant::now() < deadline {
        let Ok((is_log, line)) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if is_log {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                logs.push(v);
            }
        } else if line.contains("web-1") {
            notified = true;
        }
        if notified
            && want
                .iter()
                .all(|w| find(&logs, w).is_some_and(|l| l["fields"]["plugin"] == "noisy"))
        {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(notified, "no notification");
    for w in want {
        let line = find(&logs, w).unwrap_or_else(|| panic!("no log line {w:?}: {logs:#?}"));
        assert_eq!(line["fields"]["plugin"], "noisy", "{line}");
    }
    assert_eq!(
        find(&logs, "stdout: hi from noisy").map(|l| l["fields"]["stream"].clone()),
        Some(json!("stdout"))
    );
}
