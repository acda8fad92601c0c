//! `herald demo`, the README's first command, run as the real binary.

use std::process::Command;

#[test]
fn the_demo_shows_notifications_flowing_through_the_plugins() {
    let plugins = herald_e2e::wasm("prune");
    let dir = plugins.parent().expect("plugin dir");
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["demo", "--step", "20ms", "--plugins"])
        .arg(dir)
        .output()
        .expect("run herald demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "→ ADDED    Deployment shop/web",
        "changed: /metadata/generation, /spec/template/spec/containers/0/image",
        "→ DELETED  Pod shop/web-a1",
        "✗ ADDED    Pod shop/cache-0                     dropped by label_filter: label app=cache, want web",
        "→ MODIFIED Secret shop/db-creds",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // The prune plugin keeps secret data out of every notification.
    assert!(
        !stdout.contains("aHVudGVyMg=="),
        "secret data leaked:\n{stdout}"
    );
    assert!(
        !stdout.contains("\"data\""),
        "secret data key leaked:\n{stdout}"
    );
}
