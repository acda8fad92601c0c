//! Plugins in JavaScript and Python (issue 15): the WIT is the contract.
//!
//! The examples `plugins/examples/label-filter-js` (componentize-js) and
//! `label-filter-py` (componentize-py), built here from source, give the
//! Rust `label-filter`'s verdicts on the same events, through
//! `herald plugin test` and through `herald run` against the simulator; and
//! `herald plugin new --lang js|python` writes projects that build, pass
//! their own tests and run in herald as generated.
//!
//! The toolchains come from `scripts/plugin-toolchains` (cached under
//! `~/.cache/herald-ci`, `HERALD_CI_CACHE`). Without them these tests fail
//! in CI (`CI=true`) and are skipped, loudly, elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use herald_e2e::{Cluster, HeraldProcess, wait_http_ok, wasm, workspace_root};
use serde_json::{Value, json};

/// A language other than Rust, with what builds it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    Js,
    Python,
}

impl Lang {
    /// The example under plugins/examples/.
    fn example(self) -> PathBuf {
        workspace_root().join(match self {
            Lang::Js => "plugins/examples/label-filter-js",
            Lang::Python => "plugins/examples/label-filter-py",
        })
    }

    /// The plugin's name (its file's stem).
    fn plugin(self) -> &'static str {
        match self {
            Lang::Js => "label-filter-js",
            Lang::Python => "label-filter-py",
        }
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("HERALD_CI_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/herald-ci")
        })
}

/// Runs `cmd`; its success and its stdout and stderr together.
fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        ),
        Err(e) => (false, format!("cannot run {cmd:?}: {e}")),
    }
}

/// The componentize-py that scripts/plugin-toolchains installs, at the
/// version the example pins.
fn componentize_py() -> Result<PathBuf, String> {
    let requirements = std::fs::read_to_string(Lang::Python.example().join("requirements.txt"))
        .map_err(|e| format!("reading the example's requirements.txt: {e}"))?;
    let version = requirements
        .lines()
        .find_map(|l| l.strip_prefix("componentize-py=="))
        .ok_or("no componentize-py==VERSION in the example's requirements.txt")?;
    let tool = cache_dir().join(format!("componentize-py-{version}/bin/componentize-py"));
    let (ok, out) = run(Command::new(&tool).arg("--version"));
    if ok && out.trim() == format!("componentize-py {version}") {
        Ok(tool)
    } else {
        Err(format!(
            "componentize-py {version} is not at {} ({})",
            tool.display(),
            out.trim()
        ))
    }
}

/// Node and npm, and the example's componentize-js (`npm ci`, from npm's
/// cache when it can).
fn componentize_js() -> Result<(), String> {
    let (ok, out) = run(Command::new("node").arg("--version"));
    if !ok {
        return Err(format!("node: {}", out.trim()));
    }
    let example = Lang::Js.example();
    if !example.join("node_modules/.bin/componentize-js").exists() {
        let (ok, out) = run(Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
                "--cache",
            ])
            .arg(cache_dir().join("npm"))
            .current_dir(&example));
        if !ok {
            return Err(format!("npm ci in {}: {out}", example.display()));
        }
    }
    Ok(())
}

/// Whether `lang`'s toolchain is here. Missing: a failure in CI, a loud
/// skip elsewhere.
fn toolchain(lang: Lang) -> bool {
    let found = match lang {
        Lang::Js => componentize_js(),
        Lang::Python => componentize_py().map(|_| ()),
    };
    match found {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "the {lang:?} plugin toolchain is missing: {e}; scripts/plugin-toolchains installs it \
             (.ci/run does)"
        ),
        Err(e) => {
            eprintln!(
                "\n!!! SKIPPED: the {lang:?} plugin toolchain is missing: {e}\n!!! run \
                 scripts/plugin-toolchains to install it; CI fails here instead.\n"
            );
            false
        }
    }
}

/// Builds the project in `dir` with its own build command into `out`.
fn build(lang: Lang, dir: &Path, out: &Path) {
    let (ok, log) = match lang {
        Lang::Js => run(Command::new("npm")
            .args(["run", "--silent", "build", "--", "--out"])
            .arg(out)
            .current_dir(dir)),
        Lang::Python => run(Command::new(dir.join("build.sh"))
            .env("COMPONENTIZE_PY", componentize_py().unwrap_or_default())
            .env("OUT", out)
            .current_dir(dir)),
    };
    assert!(ok && out.is_file(), "building {}:\n{log}", dir.display());
}

/// The example of `lang`, built once per test run into the target dir.
fn example_wasm(lang: Lang) -> PathBuf {
    static BUILT: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    BUILT[lang as usize]
        .get_or_init(|| {
            let out = target_dir()
                .join("plugin-examples")
                .join(format!("{}.wasm", lang.plugin()));
            std::fs::create_dir_all(out.parent().unwrap_or(Path::new("."))).expect("mkdir");
            build(lang, &lang.example(), &out);
            out
        })
        .clone()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Compiled components shared by these tests: compiling a language
/// runtime takes tens of seconds, loading it milliseconds. Emptied once per
/// run: the toolchains' builds differ byte for byte from run to run, so a
/// previous run's entries would only pile up (35 MB each).
fn compile_cache() -> PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let dir = target_dir().join("plugin-examples/compiled");
            let _ = std::fs::remove_dir_all(&dir);
            dir
        })
        .clone()
}

/// Runs herald; `plugin test` gets the shared [`compile_cache`].
fn herald(args: &[&str]) -> (i32, String, String) {
    let cache = path_str(&compile_cache());
    let mut args = args.to_vec();
    if args.starts_with(&["plugin", "test"]) {
        args.extend(["--cache-dir", &cache]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(&args)
        .output()
        .expect("run herald");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Events with every way label-filter can decide: both labels right, one
/// wrong, one missing, a label key with `/`, a value that is not a string,
/// modified and deleted changes, a cluster-scoped object.
fn events() -> Vec<Value> {
    let pod = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "shop", "labels": labels}})
    };
    let good = json!({"app.kubernetes.io/name": "web", "tier": "front"});
    vec![
        json!({"type": "ADDED", "object": pod("both", good.clone())}),
        json!({"type": "ADDED", "object": pod("wrong-tier",
            json!({"app.kubernetes.io/name": "web", "tier": "back"}))}),
        json!({"type": "ADDED", "object": pod("no-name", json!({"tier": "front"}))}),
        json!({"type": "ADDED", "object": pod("no-labels", Value::Null)}),
        json!({"type": "ADDED", "object": pod("not-a-string",
            json!({"app.kubernetes.io/name": "web", "tier": 1}))}),
        json!({"type": "MODIFIED", "object": pod("now-good", good.clone()),
               "old": pod("now-good", json!({"tier": "front"}))}),
        json!({"type": "DELETED", "object": pod("gone",
            json!({"app.kubernetes.io/name": "db", "tier": "front"}))}),
        json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "n1", "labels": good}}}),
    ]
}

/// The verdicts of `events()`, as the Rust label-filter gives them.
fn expected() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        ("pass", None),
        ("drop", Some("label tier=back, want front")),
        (
            "drop",
            Some("label app.kubernetes.io/name missing, want web"),
        ),
        (
            "drop",
            Some("label app.kubernetes.io/name missing, want web"),
        ),
        ("drop", Some("label tier missing, want front")),
        ("pass", None),
        ("drop", Some("label app.kubernetes.io/name=db, want web")),
        ("pass", None),
    ]
}

const CONFIG: &str = "labels:\n  tier: front\n  app.kubernetes.io/name: web\n";

/// `herald plugin test` of `plugin` on `events()`: each report's verdict
/// and reason, and the whole reports.
fn plugin_test(plugin: &Path) -> (Vec<(String, Option<String>)>, Vec<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let events_file = dir.path().join("events.jsonl");
    let lines: Vec<String> = events().iter().map(Value::to_string).collect();
    std::fs::write(&events_file, lines.join("\n")).expect("write");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, CONFIG).expect("write");
    let (code, out, err) = herald(&[
        "plugin",
        "test",
        &path_str(plugin),
        &path_str(&events_file),
        "--config",
        &path_str(&config),
    ]);
    assert_eq!(code, 0, "{}: {err}", plugin.display());
    let reports: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let verdicts = reports
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().unwrap_or_default().to_string(),
                r["reason"].as_str().map(String::from),
            )
        })
        .collect();
    (verdicts, reports)
}

fn as_owned(v: Vec<(&str, Option<&str>)>) -> Vec<(String, Option<String>)> {
    v.into_iter()
        .map(|(a, b)| (a.to_string(), b.map(String::from)))
        .collect()
}

/// The example gives the Rust plugin's verdicts and leaves the objects as
/// the Rust plugin does; it loads under the default policy; a config
/// mistake is an init error that names it.
fn same_verdicts_as_rust(lang: Lang) {
    let plugin = example_wasm(lang);
    let (rust, rust_reports) = plugin_test(&wasm("label_filter"));
    assert_eq!(rust, as_owned(expected()), "the Rust plugin's verdicts");
    let (theirs, reports) = plugin_test(&plugin);
    assert_eq!(theirs, rust, "{lang:?} against Rust");
    for (r, t) in rust_reports.iter().zip(&reports) {
        assert_eq!(t["object"], r["object"]);
        assert_eq!(t["old"], r["old"]);
        assert_eq!(t["change"], r["change"]);
    }

    let (code, out, err) = herald(&["plugin", "inspect", "--json", &path_str(&plugin)]);
    assert_eq!(code, 0, "{err}");
    let inspection: Value = serde_json::from_str(&out).expect("inspection");
    assert_eq!(
        inspection["policy"],
        json!({"loads": true, "allow": []}),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let pod = dir.path().join("pod.json");
    std::fs::write(&pod, events()[0]["object"].to_string()).expect("write");
    for (config, message) in [
        ("label: {app: web}\n", "unknown field `label`"),
        ("labels: {}\n", "labels: at least one label is required"),
    ] {
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, config).expect("write");
        let (code, _, err) = herald(&[
            "plugin",
            "test",
            &path_str(&plugin),
            &path_str(&pod),
            "--config",
            &path_str(&file),
        ]);
        assert_eq!(code, 1, "{lang:?} accepted {config}");
        assert!(err.contains(message), "{lang:?}: {err}");
    }
}

#[test]
fn the_javascript_label_filter_gives_the_rust_verdicts() {
    if toolchain(Lang::Js) {
        same_verdicts_as_rust(Lang::Js);
    }
}

#[test]
fn the_python_label_filter_gives_the_rust_verdicts() {
    if toolchain(Lang::Python) {
        same_verdicts_as_rust(Lang::Python);
    }
}

/// `herald run` against the simulator: three watches of Pods, one per
/// namespace, each filtering with label-filter in one language; the same
/// changes in each namespace are notified alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_run_notifies_alike_through_the_rust_javascript_and_python_filters() {
    if !(toolchain(Lang::Js) & toolchain(Lang::Python)) {
        return;
    }
    // Compiled before herald starts, so that its first events do not wait
    // on a compile of the JavaScript and Python runtimes.
    plugin_test(&example_wasm(Lang::Js));
    plugin_test(&example_wasm(Lang::Python));
    let plugins = tempfile::tempdir().expect("tempdir");
    for (from, to) in [
        (wasm("label_filter"), "rs.wasm"),
        (example_wasm(Lang::Js), "js.wasm"),
        (example_wasm(Lang::Python), "py.wasm"),
    ] {
        std::fs::copy(&from, plugins.path().join(to)).expect("copy plugin");
    }
    let c = Cluster::start(Duration::from_millis(200)).await;
    let labels = "{ labels: { app: web, tier: front } }";
    let config = c.config(&format!(
        "watch:\n\
         \x20 - {{ name: rs, version: v1, kind: Pod, namespaces: [rs], plugins: [rs] }}\n\
         \x20 - {{ name: js, version: v1, kind: Pod, namespaces: [js], plugins: [js] }}\n\
         \x20 - {{ name: py, version: v1, kind: Pod, namespaces: [py], plugins: [py] }}\n\
         plugins:\n  dir: {dir}\n  cacheDir: {cache}\n\
         \x20 config: {{ rs: {labels}, js: {labels}, py: {labels} }}\n\
         sinks:\n  - {{ name: out, type: log }}\n",
        dir = plugins.path().display(),
        cache = compile_cache().display(),
    ));
    let herald = HeraldProcess::run(env!("CARGO_BIN_EXE_herald"), &config);
    // Every watch has listed (a Pod created before its watch's first list
    // is part of the initial state, not a change).
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "herald never became ready"
    );
    let pod =
        |ns: &str, name: &str, labels: &[(&str, &str)]| herald_sim::fixtures::pod(ns, name, labels);
    for ns in ["rs", "js", "py"] {
        for (name, labels) in [
            ("web-1", &[("app", "web"), ("tier", "front")][..]),
            ("db-1", &[("app", "db"), ("tier", "front")][..]),
            ("web-2", &[("app", "web")][..]),
        ] {
            c.sim
                .create("pods", pod(ns, name, labels))
                .await
                .expect("create");
        }
        // db-1 turns into a front-end web Pod: now it passes.
        let mut db = c.sim.get("pods", ns, "db-1").await.expect("get");
        db["metadata"]["labels"]["app"] = json!("web");
        c.sim.update("pods", db).await.expect("update");
        c.sim.delete("pods", ns, "web-1").await.expect("delete");
    }
    let mut seen: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for _ in 0..9 {
        let n = herald.next();
        seen.entry(n["namespace"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push((
                n["change"].as_str().unwrap_or_default().to_string(),
                n["name"].as_str().unwrap_or_default().to_string(),
            ));
    }
    let want: Vec<(String, String)> = [
        ("added", "web-1"),
        ("modified", "db-1"),
        ("deleted", "web-1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for ns in ["rs", "js", "py"] {
        assert_eq!(seen.get(ns), Some(&want), "{ns}: {seen:?}");
    }
    assert!(
        herald.next_within(Duration::from_millis(500)).is_none(),
        "only the changes the filters pass"
    );
}

/// `herald plugin new --lang LANG`: the project passes its native tests,
/// builds, and its component loads under the default policy and gives the
/// verdict its README promises, as generated.
fn plugin_new_builds_and_runs(lang: Lang, flag: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("ns-filter");
    let (code, out, err) = herald(&[
        "plugin",
        "new",
        "ns-filter",
        "--lang",
        flag,
        "--dir",
        &path_str(&project),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("wrote {}", project.display())),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("wit/herald.wit")).ok(),
        std::fs::read_to_string(workspace_root().join("wit/herald.wit")).ok(),
        "the project carries this herald's WIT"
    );
    for file in ["README.md", "pod.json", "config.yaml", ".gitignore"] {
        assert!(project.join(file).is_file(), "{file} missing");
    }
    match lang {
        Lang::Js => {
            // The same toolchain versions as the example that CI builds.
            let manifest: Value = serde_json::from_str(
                &std::fs::read_to_string(project.join("package.json")).expect("package.json"),
            )
            .expect("package.json is JSON");
            let example: Value = serde_json::from_str(
                &std::fs::read_to_string(Lang::Js.example().join("package.json"))
                    .expect("example package.json"),
            )
            .expect("JSON");
            assert_eq!(manifest["devDependencies"], example["devDependencies"]);
            let (ok, log) = run(Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefer-offline",
                    "--cache",
                ])
                .arg(cache_dir().join("npm"))
                .current_dir(&project));
            assert!(ok, "npm install:\n{log}");
            let (ok, log) = run(Command::new("npm").arg("test").current_dir(&project));
            assert!(
                ok && log.contains("# pass 2") && log.contains("# fail 0"),
                "{log}"
            );
        }
        Lang::Python => {
            assert_eq!(
                std::fs::read_to_string(project.join("requirements.txt")).ok(),
                std::fs::read_to_string(Lang::Python.example().join("requirements.txt")).ok(),
            );
            let (ok, log) = run(Command::new("python3")
                .args(["-m", "unittest"])
                .current_dir(&project));
            assert!(
                ok && log.contains("Ran 2 tests") && log.contains("OK"),
                "{log}"
            );
        }
    }
    let wasm_file = project.join("ns-filter.wasm");
    build(lang, &project, &wasm_file);
    let (code, out, err) = herald(&[
        "plugin",
        "test",
        &path_str(&wasm_file),
        &path_str(&project.join("pod.json")),
        "--config",
        &path_str(&project.join("config.yaml")),
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("report");
    assert_eq!(report["verdict"], "drop", "{out}");
    assert_eq!(report["reason"], "namespace dev is not watched", "{out}");
    let shop = project.join("shop.json");
    std::fs::write(
        &shop,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "shop"}})
            .to_string(),
    )
    .expect("write");
    let (code, out, err) = herald(&[
        "plugin",
        "test",
        &path_str(&wasm_file),
        &path_str(&shop),
        "--config",
        &path_str(&project.join("config.yaml")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("report")["verdict"],
        "pass"
    );
    let (code, out, _) = herald(&["plugin", "inspect", "--json", &path_str(&wasm_file)]);
    assert_eq!(code, 0);
    let inspection: Value = serde_json::from_str(&out).expect("inspection");
    assert_eq!(
        inspection["policy"],
        json!({"loads": true, "allow": []}),
        "{out}"
    );
}

#[test]
fn plugin_new_lang_js_writes_a_project_that_builds_and_passes_its_test() {
    if toolchain(Lang::Js) {
        plugin_new_builds_and_runs(Lang::Js, "js");
    }
}

#[test]
fn plugin_new_lang_python_writes_a_project_that_builds_and_passes_its_test() {
    if toolchain(Lang::Python) {
        plugin_new_builds_and_runs(Lang::Python, "python");
    }
}

/// What needs no toolchain: `--sdk` is Rust's alone.
#[test]
fn plugin_new_refuses_an_sdk_path_for_javascript_and_python() {
    let dir = tempfile::tempdir().expect("tempdir");
    for lang in ["js", "python"] {
        let (code, _, err) = herald(&[
            "plugin",
            "new",
            "x",
            "--lang",
            lang,
            "--sdk",
            "plugin-sdk",
            "--dir",
            &path_str(&dir.path().join(lang)),
        ]);
        assert_eq!(code, 1);
        assert!(err.contains("--sdk is the Rust SDK's path"), "{err}");
        assert!(!dir.path().join(lang).exists());
    }
}
