//! `herald plugin test`, run as the real binary.

use std::process::Command;

use herald_e2e::wasm;
use serde_json::{Value, json};

fn herald(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .expect("run herald");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, v: &Value) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, v.to_string()).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn plugin_test_prints_the_verdict_and_the_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = write(
        &dir,
        "pod.json",
        &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
                "status": {"phase": "Running"}}),
    );
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "labels:\n  app: web\n").expect("write");
    let plugin = wasm("label_filter");
    let (code, out, err) = herald(&[
        "plugin",
        "test",
        plugin.to_str().unwrap_or_default(),
        &pod,
        "--config",
        cfg.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["verdict"], "pass");
    assert_eq!(out["change"], "added");
    assert_eq!(out["object"]["metadata"]["name"], "web-1");

    std::fs::write(&cfg, "labels:\n  app: db\n").expect("write");
    let (code, out, err) = herald(&[
        "plugin",
        "test",
        plugin.to_str().unwrap_or_default(),
        &pod,
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--change",
        "deleted",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["verdict"], "drop");
    assert_eq!(out["reason"], "label app=web, want db");
    assert_eq!(out["change"], "deleted");

    let prune = write(&dir, "prune.json", &json!({"remove": ["/status"]}));
    let (code, out, err) = herald(&[
        "plugin",
        "test",
        wasm("prune").to_str().unwrap_or_default(),
        &pod,
        "--config",
        &prune,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["object"].get("status"), None);
}

#[test]
fn plugin_test_fails_clearly_on_what_is_not_a_herald_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = write(
        &dir,
        "pod.json",
        &json!({"kind": "Pod", "metadata": {"name": "a"}}),
    );
    let (code, _, err) = herald(&[
        "plugin",
        "test",
        wasm("not-herald").to_str().unwrap_or_default(),
        &pod,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("missing export `init`"), "{err}");
    assert!(err.contains("not-herald.wasm"), "{err}");

    let (code, _, err) = herald(&[
        "plugin",
        "test",
        wasm("sockets_plugin").to_str().unwrap_or_default(),
        &pod,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("import `wasi:sockets/"), "{err}");

    let (code, _, err) = herald(&["plugin", "test", "/nonexistent.wasm", &pod]);
    assert_ne!(code, 0);
    assert!(
        err.contains("/nonexistent.wasm: cannot read plugin"),
        "{err}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    let (code, _, err) = herald(&[
        "plugin",
        "test",
        wasm("prune").to_str().unwrap_or_default(),
        bad.to_str().unwrap_or_default(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.json is not valid JSON"), "{err}");
}

#[test]
fn plugin_test_reports_a_panicking_plugin_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = write(
        &dir,
        "pod.json",
        &json!({"kind": "Pod", "metadata": {"name": "a"}}),
    );
    let cfg = write(
        &dir,
        "cfg.json",
        &json!({"mode": "panic", "message": "kaboom"}),
    );
    let (code, _, err) = herald(&[
        "plugin",
        "test",
        wasm("hostile_plugin").to_str().unwrap_or_default(),
        &pod,
        "--config",
        &cfg,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("panicked: kaboom"), "{err}");
}
