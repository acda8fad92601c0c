//! `herald record` and `herald replay`, run as the real binary: a recording
//! of the simulator's changes, replayed offline through two configs that
//! differ by one filter rule, reports exactly the objects that rule matches.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use herald_e2e::{Cluster, plugin_dir};
use herald_sim::fixtures::pod;
use serde_json::{Value, json};

/// `herald replay ARGS`: exit code, stdout, stderr.
fn herald(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("HERALD_LOG", "warn")
        .output()
        .expect("run herald");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A replay config: every Pod through the shipped `filter` plugin with
/// `filter` as its config, to a log sink.
fn replay_config(dir: &Path, name: &str, filter: &Value) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "cluster: replay
watch:
  - {{ version: v1, kind: Pod, plugins: [filter] }}
plugins:
  dir: {}
  config:
    filter: {filter}
sinks:
  - {{ name: out, type: log }}
",
        plugin_dir().display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The complete lines of a recording, parsed (one being written is left out).
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replayed_through_two_configs_differs_by_exactly_what_one_rule_matches() {
    let c = Cluster::start(Duration::from_millis(500)).await;
    let config = c.config(
        "cluster: rec
watch:
  - { version: v1, kind: Pod }
  - { version: v1, kind: Secret }
sinks:
  - { name: nowhere, type: webhook, url: \"http://127.0.0.1:9/never\" }
",
    );
    let out = c.dir.path().join("rec.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "record",
            "--config",
            s(&config),
            "--out",
            s(&out),
            "--for",
            "5m",
        ])
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald record");
    assert!(
        c.sim
            .wait_for_watches(|n| n >= 2, Duration::from_secs(20))
            .await,
        "herald record never watched Pods and Secrets"
    );

    // 1,000 changes: 250 Pods created, each changed twice, then deleted;
    // one in five is tier=debug, the rest tier=web.
    let mut debug = BTreeSet::new();
    let name = |i: usize| format!("p-{i:03}");
    let ns = |i: usize| if i.is_multiple_of(2) { "shop" } else { "web" };
    for i in 0..250usize {
        let tier = if i.is_multiple_of(5) { "debug" } else { "web" };
        if tier == "debug" {
            debug.insert(format!("v1 Pod {}/{}", ns(i), name(i)));
        }
        c.sim
            .create("pods", pod(ns(i), &name(i), &[("tier", tier)]))
            .await
            .expect("create");
    }
    for round in 0..2 {
        for i in 0..250 {
            c.sim
                .patch_merge(
                    "pods",
                    ns(i),
                    &name(i),
                    json!({"metadata": {"annotations": {"round": round.to_string()}}}),
                )
                .await
                .expect("patch");
        }
    }
    for i in 0..250 {
        c.sim.delete("pods", ns(i), &name(i)).await.expect("delete");
    }
    // And a Secret, whose value the recording must not hold.
    c.sim
        .create(
            "secrets",
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "db", "namespace": "shop"},
                   "data": {"password": "aHVudGVyMg=="}}),
        )
        .await
        .expect("secret");

    // Every change is in the file, each line complete as it is written.
    let mut recorded = Vec::new();
    for _ in 0..1200 {
        recorded = lines(&out);
        if recorded.len() >= 1001 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded.len(), 1001, "1,000 Pod changes and one Secret");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let done = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "herald record: {stderr}");
    assert!(stderr.contains("recorded 1001 changes"), "{stderr}");
    // The file is the simulator's change log, in order, each with its object.
    let log: Vec<(String, u64, String)> = c
        .sim
        .change_log()
        .into_iter()
        .filter(|ch| ch.kind == "Pod")
        .map(|ch| {
            (
                ch.name,
                ch.resource_version,
                format!("{:?}", ch.change_type).to_lowercase(),
            )
        })
        .collect();
    let pods: Vec<(String, u64, String)> = recorded
        .iter()
        .filter(|l| l["object"]["kind"] == "Pod")
        .map(|l| {
            assert_eq!(l["watch"], "pod.v1.core", "{l}");
            assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
            (
                l["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                l["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default(),
                l["change"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(pods, log);
    let modified = recorded.iter().find(|l| l["change"] == "modified");
    assert!(
        modified.is_some_and(|l| l["old"]["metadata"]["name"] == l["object"]["metadata"]["name"]),
        "a modification carries its previous state: {modified:?}"
    );
    let secret = recorded
        .iter()
        .find(|l| l["object"]["kind"] == "Secret")
        .expect("the Secret");
    let value = secret["object"]["data"]["password"]
        .as_str()
        .unwrap_or_default();
    assert!(value.starts_with("<redacted sha256:"), "{secret}");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        !text.contains("aHVudGVyMg=="),
        "the Secret value is in the file"
    );

    // Replay: A filters nothing; B adds one rule.
    let a = replay_config(
        c.dir.path(),
        "a.yaml",
        &json!({"ignoreNamespaces": ["kube-*"]}),
    );
    let b = replay_config(
        c.dir.path(),
        "b.yaml",
        &json!({"ignoreNamespaces": ["kube-*"], "labelSelector": "tier!=debug"}),
    );
    let (code, stdout, stderr) = herald(&[
        "replay",
        s(&out),
        "--config",
        s(&a),
        "--against",
        s(&b),
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let r: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(r["changes"], 1001);
    let dropped = debug.len() as u64 * 4;
    assert_eq!(
        r["a"]["fates"],
        json!({"delivered": 1000, "not-watched": 1})
    );
    assert_eq!(
        r["b"]["fates"],
        json!({"delivered": 1000 - dropped, "dropped": dropped, "not-watched": 1})
    );
    assert_eq!(r["a"]["plugins"], json!({"filter": {"pass": 1000}}));
    assert_eq!(
        r["b"]["plugins"],
        json!({"filter": {"pass": 1000 - dropped, "drop": dropped}})
    );
    assert_eq!(r["a"]["sinks"], json!({"out": 1000}));
    assert_eq!(r["b"]["sinks"], json!({"out": 1000 - dropped}));
    let diffs = r["differences"].as_array().expect("differences");
    let differing: BTreeSet<String> = diffs
        .iter()
        .map(|d| d["object"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(differing, debug, "exactly the tier=debug Pods");
    for d in diffs {
        assert_eq!(d["changes"], 4, "created, changed twice, deleted: {d}");
        assert_eq!(d["change"], "added", "{d}");
        assert!(
            d["a"]
                .as_str()
                .is_some_and(|f| f.contains("notified to out")),
            "{d}"
        );
        assert!(
            d["b"]
                .as_str()
                .is_some_and(|f| f.contains("dropped by plugin filter")),
            "{d}"
        );
    }

    // The same as a table.
    let (code, stdout, stderr) =
        herald(&["replay", s(&out), "--config", s(&a), "--against", s(&b)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("replayed 1001 changes"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{} objects whose fate differs between a.yaml and b.yaml",
            debug.len()
        )),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("filter: drop"))
        .unwrap_or_default();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["filter:", "drop", "0", &dropped.to_string()],
        "{stdout}"
    );
    // One config alone: counts, no comparison.
    let (code, stdout, stderr) =
        herald(&["replay", s(&out), "--config", s(&b), "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let r: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(r["a"]["fates"]["dropped"], dropped);
    assert!(
        r.get("differences").is_none() && r.get("b").is_none(),
        "{r}"
    );
}

/// A recorded line for the error tests.
fn line(name: &str) -> String {
    json!({"time": "2026-01-02T03:04:05.006Z", "watch": "pod.v1.core", "change": "added",
           "object": {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": "d", "uid": name, "resourceVersion": "1"}}})
    .to_string()
}

#[test]
fn a_bad_line_is_named_by_its_number_and_a_missing_config_by_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = replay_config(dir.path(), "a.yaml", &json!({}));
    let file = dir.path().join("rec.jsonl");
    for (third, why) in [
        ("{not json".to_string(), "rec.jsonl:3: not a recorded change: key must be a string"),
        (
            json!({"time": "2026-01-02T03:04:05Z", "watch": "w", "change": "added"}).to_string(),
            "rec.jsonl:3: not a recorded change: missing field `object`",
        ),
        (
            json!({"time": "yesterday", "watch": "w", "change": "added", "object": {}}).to_string(),
            "rec.jsonl:3: time \"yesterday\"",
        ),
        (
            json!({"time": "2026-01-02T03:04:05Z", "watch": "w", "change": "renamed", "object": {}})
                .to_string(),
            "rec.jsonl:3: not a recorded change: unknown variant `renamed`",
        ),
    ] {
        std::fs::write(&file, format!("{}\n{}\n{third}\n", line("a"), line("b"))).expect("write");
        let (code, stdout, stderr) = herald(&["replay", s(&file), "--config", s(&a)]);
        assert_ne!(code, 0, "{stdout}");
        assert!(stderr.contains(why), "want {why:?} in: {stderr}");
        assert!(stdout.is_empty(), "no report after an error: {stdout}");
    }
    // A good file replays; blank lines are skipped.
    std::fs::write(&file, format!("{}\n\n{}\n", line("a"), line("b"))).expect("write");
    let (code, stdout, stderr) = herald(&["replay", s(&file), "--config", s(&a)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("replayed 2 changes"), "{stdout}");

    let missing = dir.path().join("missing.yaml");
    for args in [
        vec!["replay", s(&file), "--config", s(&missing)],
        vec![
            "replay",
            s(&file),
            "--config",
            s(&a),
            "--against",
            s(&missing),
        ],
        vec!["record", "--config", s(&missing), "--out", s(&file)],
    ] {
        let (code, _, stderr) = herald(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(stderr.contains(s(&missing)), "{args:?}: {stderr}");
    }
    let nowhere = dir.path().join("nowhere.jsonl");
    let (code, _, stderr) = herald(&["replay", s(&nowhere), "--config", s(&a)]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("cannot read {}", s(&nowhere))),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_stops_by_itself_after_for_with_every_line_written() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let config = c.config("watch:\n  - { version: v1, kind: ConfigMap }\n");
    let out = c.dir.path().join("cm.jsonl");
    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "record",
            "--config",
            s(&config),
            "--out",
            s(&out),
            "--for",
            "5s",
        ])
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald record");
    assert!(
        c.sim
            .wait_for_watches(|n| n >= 1, Duration::from_secs(20))
            .await,
        "never watched"
    );
    for i in 0..3 {
        c.sim
            .create(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": format!("c{i}"), "namespace": "default"}}),
            )
            .await
            .expect("create");
    }
    let done = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "--for 5s ran {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("recorded 3 changes"), "{stderr}");
    let recorded = lines(&out);
    let names: Vec<&str> = recorded
        .iter()
        .map(|l| l["object"]["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["c0", "c1", "c2"]);
    assert!(recorded.iter().all(|l| l["change"] == "added"));
}
