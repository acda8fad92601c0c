//! `herald config check` on the shipped example configs and on broken ones.

use std::process::Command;

fn check(path: &std::path::Path) -> (bool, String, String) {
    check_args(path, &[])
}

/// `herald config check path extra…`: success, stdout, stderr.
fn check_args(path: &std::path::Path, extra: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["config", "check"])
        .arg(path)
        .args(extra)
        .env("HERALD_LOG", "error")
        .output()
        .expect("run herald config check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_config_in_deploy_passes() {
    let dir = herald_e2e::workspace_root().join("deploy/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "json") {
            let (ok, out, err) = check(&path);
            assert!(ok, "{}: {err}", path.display());
            assert!(out.contains(": ok ("), "{out}");
            seen += 1;
        }
    }
    assert!(seen >= 1, "no example configs in {}", dir.display());
}

#[test]
fn a_broken_config_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "typo.yaml",
            "cluster: c\nwatch:\n  - kind: Pod\n    labelSelectr: a=b\n",
            vec![
                "typo.yaml",
                "watch[0]",
                "unknown field `labelSelectr`",
                "line 4",
            ],
        ),
        (
            "type.yaml",
            "watch:\n  - kind: Pod\nplugins:\n  policy:\n    p: { deadline: soon }\n",
            vec!["type.yaml", "plugins.policy.p.deadline", "line 5"],
        ),
        (
            "missing.yaml",
            "cluster: c\n",
            vec!["missing.yaml", "missing field `watch`"],
        ),
        (
            "enum.yaml",
            "watch:\n  - kind: Pod\nlog:\n  format: xml\n",
            vec![
                "enum.yaml: log.format: unknown variant `xml`, expected `pretty` or `json`",
                "line 4",
            ],
        ),
        (
            "open-api.yaml",
            "watch:\n  - kind: Pod\napi:\n  listen: 0.0.0.0:8080\n  auth: none\n",
            vec![
                "open-api.yaml",
                "api",
                "line 5",
                "auth: none on 0.0.0.0:8080",
                "allowUnauthenticated: true",
            ],
        ),
        (
            "selector.yaml",
            "watch:\n  - kind: Pod\n    labelSelector: 'a in (b'\n",
            vec!["selector.yaml", "watch[0]"],
        ),
    ];
    for (name, text, wants) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let (ok, _, err) = check(&path);
        assert!(!ok, "{name} must be rejected");
        for want in wants {
            assert!(err.contains(want), "{name}: missing {want:?} in: {err}");
        }
    }
}

#[test]
fn the_readme_config_example_passes() {
    let readme =
        std::fs::read_to_string(herald_e2e::workspace_root().join("README.md")).expect("README.md");
    let section = readme
        .split("## Running herald")
        .nth(1)
        .expect("README has a 'Running herald' section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block in 'Running herald'");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("readme.yaml");
    std::fs::write(&path, yaml).expect("write");
    let (ok, out, err) = check(&path);
    assert!(ok, "README's config example fails: {err}");
    assert!(out.contains("1 watched types"), "{out}");
}

/// `herald config check` with `--plugins-dir`: `dir` as the plugin directory.
fn check_with_plugins(path: &std::path::Path, dir: &std::path::Path) -> (bool, String, String) {
    check_args(path, &["--plugins-dir".as_ref(), dir.as_os_str()])
}

/// Issue 15, items 6, 8 and 9: `config check` rejects what `run` rejects —
/// a plugin file that is not there (naming the file cargo wrote), a plugin
/// that refuses its config (at the user's line, not the JSON's), a route to
/// a sink that does not exist — and accepts every spelling of `onError`'s
/// route and an empty plugin config.
#[test]
fn config_check_loads_and_initialises_every_plugin_as_run_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    std::fs::copy(
        herald_e2e::wasm("label_filter"),
        plugins.join("image_watch.wasm"),
    )
    .expect("copy");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };

    let dashed = write(
        "dashed.yaml",
        "watch:\n  - { kind: Pod, plugins: [image-watch] }\nplugins:\n  config:\n    image-watch: { labels: { app: web } }\n",
    );
    let (ok, _, err) = check_with_plugins(&dashed, &plugins);
    assert!(!ok, "a missing plugin file must fail the check");
    for want in [
        "dashed.yaml: watch[0].plugins: plugin \"image-watch\"",
        "image-watch.wasm does not exist",
        "image_watch.wasm is there (cargo writes `-` in a crate name as `_`)",
        "name the plugin \"image_watch\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }

    let unknown = write(
        "unknown.yaml",
        "cluster: c\nwatch:\n  - { kind: Pod, plugins: [image_watch] }\nplugins:\n  config:\n    image_watch:\n      labels: { app: web }\n      lables: { tier: x }\n",
    );
    let (ok, _, err) = check_with_plugins(&unknown, &plugins);
    assert!(
        !ok,
        "a plugin config with an unknown field must fail the check"
    );
    for want in [
        "unknown.yaml: plugins.config.image_watch at line 8:",
        "plugin \"image_watch\" refused its config: invalid plugin config: unknown field `lables`",
        "(it was given {",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert!(
        !err.contains("line 1 column"),
        "a position in herald's JSON means nothing to the user: {err}"
    );

    let empty = write(
        "empty.yaml",
        "watch:\n  - { kind: Pod, plugins: [image_watch] }\nplugins:\n  config:\n    image_watch:\n",
    );
    let (ok, _, err) = check_with_plugins(&empty, &plugins);
    assert!(!ok, "label-filter needs labels; its init refuses {{}}");
    assert!(
        err.contains("empty.yaml: plugins.config.image_watch at line 5: plugin \"image_watch\" refused its config")
            && err.contains("(it was given {} (no config given))"),
        "{err}"
    );

    let routes = write(
        "routes.yaml",
        "watch:\n  - { kind: Pod, plugins: [a, b, c, d] }\nsinks:\n  - { name: dl, type: log }\ndeadLetter: dl\nplugins:\n  config:\n    a: { labels: { app: web } }\n    b: { labels: { app: web } }\n    c: { labels: { app: web } }\n    d: { labels: { app: web } }\n  policy:\n    a: { file: image_watch.wasm, onError: { route: dl } }\n    b: { file: image_watch.wasm, onError: 'route: dl' }\n    c: { file: image_watch.wasm, onError: !route dl }\n    d: { file: image_watch.wasm, onError: drop }\n",
    );
    let (ok, out, err) = check_with_plugins(&routes, &plugins);
    assert!(ok, "every spelling of onError's route: {err}");
    assert!(
        out.contains(
            "routes.yaml: ok (1 watched types, 4 plugins loaded and initialised, 1 sinks)"
        ),
        "{out}"
    );

    let nowhere = write(
        "nowhere.yaml",
        "watch:\n  - { kind: Pod }\nsinks:\n  - { name: hook, type: log }\nplugins:\n  policy:\n    a:\n      onError: { route: dead }\n",
    );
    let (ok, _, err) = check(&nowhere);
    assert!(!ok, "a route to no sink must fail");
    assert!(
        err.contains("nowhere.yaml: plugins.policy.a.onError: routes to \"dead\", but no sink has that name (sinks: hook) at line 8"),
        "{err}"
    );
    let dead = write(
        "dead.yaml",
        "watch:\n  - { kind: Pod }\nsinks:\n  - { name: hook, type: log }\ndeadLetter: dl\n",
    );
    let (ok, _, err) = check(&dead);
    assert!(!ok);
    assert!(
        err.contains("dead.yaml: deadLetter: routes to \"dl\", but no sink has that name (sinks: hook) at line 5"),
        "{err}"
    );

    // A config written for a pod (plugins in /plugins) checked where that
    // directory does not exist: the rest is checked, and it says so.
    let pod = write(
        "pod.yaml",
        "watch:\n  - { kind: Pod, plugins: [image_watch] }\nplugins:\n  dir: /nonexistent/plugins\n",
    );
    let (ok, out, err) = check(&pod);
    assert!(ok, "{err}");
    assert!(out.contains("plugins not checked"), "{out}");
    assert!(
        err.contains("warning: plugins.dir /nonexistent/plugins does not exist here; plugins not checked (--plugins-dir DIR"),
        "{err}"
    );
}
