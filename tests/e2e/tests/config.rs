//! `herald config check` on the shipped example configs and on broken ones.

use std::process::Command;

fn check(path: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["config", "check"])
        .arg(path)
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
