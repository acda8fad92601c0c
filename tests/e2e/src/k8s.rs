//! A real kube-apiserver (v1.28.7, with etcd) on loopback, for the tests that
//! must hold against the real thing and not only against the simulator.
//!
//! [`RealApiServer::shared`] is one server for the whole test binary (each test
//! works in namespaces and API groups of its own); [`RealApiServer::start`] is a
//! server of the test's own, for tests that restart it. Both come from
//! `../shared/k8s/start` beside the repository (`HERALD_K8S_HOME` overrides the
//! folder). A reaper process stops a server when the test binary exits, however it
//! exits, so no API server outlives the test run.
//!
//! Objects are written with kube-rs over the API server's own HTTPS, as any other
//! client would: nothing of herald's runs in the test process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A running kube-apiserver with etcd. Stopped on drop.
pub struct RealApiServer {
    /// The folder `start` made: kubeconfigs, pki, logs, pids.
    pub dir: PathBuf,
    /// Admin kubeconfig (a token in `system:masters`).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    reaper: Option<std::process::Child>,
}

fn k8s_home() -> PathBuf {
    std::env::var_os("HERALD_K8S_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("../shared/k8s"))
}

impl RealApiServer {
    /// The server shared by every test of this binary; started by the first
    /// caller.
    pub fn shared() -> &'static RealApiServer {
        static SHARED: OnceLock<RealApiServer> = OnceLock::new();
        SHARED.get_or_init(|| RealApiServer::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts a server of its own.
    ///
    /// # Errors
    /// The start script is missing or fails; the message says what it printed.
    pub fn start() -> Result<RealApiServer, String> {
        let home = k8s_home();
        let script = home.join("start");
        if !script.exists() {
            return Err(format!(
                "{} is missing: the real-apiserver tests need shared/k8s beside the repository (or HERALD_K8S_HOME)",
                script.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("herald-k8s.")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        // One start at a time: the first unpacks the binary and installs etcd,
        // and two doing that at once would write the same files.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}): {}{}",
                script.display(),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let var = |name: &str| {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
                .ok_or_else(|| format!("start printed no {name}: {stdout}"))
        };
        let server = var("HERALD_K8S_SERVER")?;
        let kubeconfig = PathBuf::from(var("KUBECONFIG")?);
        // Stops the server once this process is gone, even after a panic or a
        // SIGKILL of the test binary.
        let reaper = Command::new("setsid")
            .args([
                "sh",
                "-c",
                "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; bash \"$2\" \"$3\" >/dev/null 2>&1",
                "reaper",
            ])
            .arg(std::process::id().to_string())
            .arg(home.join("stop"))
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Ok(RealApiServer {
            dir,
            kubeconfig,
            server,
            reaper,
        })
    }

    /// A kubeconfig whose user has no RBAC rights (discovery only).
    pub fn kubeconfig_limited(&self) -> PathBuf {
        self.dir.join("kubeconfig-limited")
    }

    /// An admin kubeconfig that authenticates with a client certificate.
    pub fn kubeconfig_cert(&self) -> PathBuf {
        self.dir.join("kubeconfig-admin-cert")
    }

    /// A client for the admin kubeconfig.
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }

    fn apiserver_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("apiserver.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the API server process (SIGKILL; etcd keeps running), as a crash
    /// would; [`RealApiServer::start_apiserver_again`] brings it back
    /// with the same flags, port and data. Its watch cache starts empty then.
    pub fn stop_apiserver(&self) -> Vec<String> {
        let pid = self.apiserver_pid().expect("apiserver.pid");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("apiserver cmdline");
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        args
    }

    /// Starts the API server again with `args` (from
    /// [`RealApiServer::stop_apiserver`]) and waits until it is ready.
    pub fn start_apiserver_again(&self, args: &[String]) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("apiserver.log"))
            .expect("apiserver.log");
        let mut child = Command::new("setsid")
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start kube-apiserver again");
        std::fs::write(self.dir.join("apiserver.pid"), child.id().to_string())
            .expect("apiserver.pid");
        // Reaped when it exits, so `stop` does not wait on a zombie.
        std::thread::spawn(move || child.wait());
        let token = admin_token(&self.dir);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ok = Command::new("curl")
                .args(["-fsk", "--max-time", "2", "-H"])
                .arg(format!("Authorization: Bearer {token}"))
                .arg(format!("{}/readyz", self.server))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready again after 120 s; see {}/apiserver.log",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for RealApiServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(k8s_home().join("stop"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut r) = self.reaper.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
    }
}

fn admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tokens.csv"))
        .expect("tokens.csv")
        .lines()
        .next()
        .and_then(|l| l.split(',').next())
        .expect("admin token")
        .to_string()
}

/// A client for `kubeconfig`.
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

/// The API of a type: `("", "v1", "ConfigMap", "configmaps")`.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// ConfigMaps.
pub fn configmaps() -> ApiResource {
    resource("", "v1", "ConfigMap", "configmaps")
}

fn api(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// Creates `obj` (its apiVersion and kind filled in from `ar`); returns the stored object.
pub async fn create(
    client: &kube::Client,
    ar: &ApiResource,
    ns: Option<&str>,
    obj: Value,
) -> Value {
    let mut obj = obj;
    obj["apiVersion"] = json!(ar.api_version);
    obj["kind"] = json!(ar.kind);
    let o: DynamicObject = serde_json::from_value(obj).expect("object");
    let created = api(client, ar, ns)
        .create(&PostParams::default(), &o)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", ar.kind));
    serde_json::to_value(created).expect("json")
}

/// Merge-patches one object.
pub async fn merge(
    client: &kube::Client,
    ar: &ApiResource,
    ns: Option<&str>,
    name: &str,
    patch: Value,
) -> Value {
    let o = api(client, ar, ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("patch {}/{name}: {e}", ar.kind));
    serde_json::to_value(o).expect("json")
}

/// Deletes one object.
pub async fn delete(client: &kube::Client, ar: &ApiResource, ns: Option<&str>, name: &str) {
    api(client, ar, ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {}/{name}: {e}", ar.kind));
}

/// Every object of a type in `ns`, as the API server lists them.
pub async fn list(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Vec<Value> {
    api(client, ar, ns)
        .list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("list {}: {e}", ar.kind))
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect()
}

/// Creates namespace `name`.
pub async fn namespace(client: &kube::Client, name: &str) {
    create(
        client,
        &resource("", "v1", "Namespace", "namespaces"),
        None,
        json!({"metadata": {"name": name}}),
    )
    .await;
}

/// A ConfigMap with one data key.
pub fn configmap(name: &str, value: &str) -> Value {
    json!({"metadata": {"name": name}, "data": {"v": value}})
}

/// Creates a namespaced CRD `kind` (`plural`) in `group`, served at `v1`, and
/// waits until it is established.
pub async fn create_crd(client: &kube::Client, group: &str, kind: &str, plural: &str) {
    let crds = resource(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    create(
        client,
        &crds,
        None,
        json!({
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                }]
            }
        }),
    )
    .await;
    let name = format!("{plural}.{group}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crd: DynamicObject = api(client, &crds, None).get(&name).await.expect("crd");
        let established = crd.data["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if established {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "CRD {name} not established in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the CRD `plural.group`.
pub async fn delete_crd(client: &kube::Client, group: &str, plural: &str) {
    let crds = resource(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    delete(client, &crds, None, &format!("{plural}.{group}")).await;
}
