//! `deploy/`: the plain manifests and the Helm chart render into valid
//! Kubernetes objects (deserialised into k8s-openapi types; a field the type
//! does not know is an error), the chart derives RBAC from the watched kinds,
//! the Dockerfile runs herald the way the chart expects, and the binary
//! starts with the chart's default config.
//!
//! The chart is rendered by `helm template` when a `helm` binary is on PATH,
//! else by `deploy/helm/render.py` (helm's Go SDK from the `helm-python-sdk`
//! wheel; `.ci/run` installs it). Without either, the chart tests say so
//! loudly and return, except in CI (`CI=true`), where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use herald_e2e::{Cluster, http_get, plugin_dir, wait_http_ok, workspace_root};
use k8s_openapi::api::{apps, core, rbac};
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::{Value, json};

// === YAML documents and typed objects ===

/// Every non-empty document of a YAML stream, as JSON values.
fn documents(text: &str, what: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{what}: not YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn roundtrip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Paths of `orig` that the typed round trip lost or changed: fields the
/// Kubernetes schema does not have (k8s-openapi ignores unknown fields, so
/// this is how they are rejected).
fn lost(orig: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(w) => lost(v, w, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost(v, w, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} became {b}")),
        _ => {}
    }
}

/// Deserialises `doc` into the k8s-openapi type of its kind (which checks
/// apiVersion and kind too) and rejects fields that type does not know.
fn check_typed(doc: &Value) -> Result<(), String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let back = match kind {
        "Namespace" => roundtrip::<core::v1::Namespace>(doc),
        "ServiceAccount" => roundtrip::<core::v1::ServiceAccount>(doc),
        "ConfigMap" => roundtrip::<core::v1::ConfigMap>(doc),
        "Service" => roundtrip::<core::v1::Service>(doc),
        "PersistentVolumeClaim" => roundtrip::<core::v1::PersistentVolumeClaim>(doc),
        "Deployment" => roundtrip::<apps::v1::Deployment>(doc),
        "StatefulSet" => roundtrip::<apps::v1::StatefulSet>(doc),
        "ClusterRole" => roundtrip::<rbac::v1::ClusterRole>(doc),
        "ClusterRoleBinding" => roundtrip::<rbac::v1::ClusterRoleBinding>(doc),
        "Role" => roundtrip::<rbac::v1::Role>(doc),
        "RoleBinding" => roundtrip::<rbac::v1::RoleBinding>(doc),
        "NetworkPolicy" => roundtrip::<k8s_openapi::api::networking::v1::NetworkPolicy>(doc),
        // prometheus-operator's CRD: no schema here beyond its shape.
        "ServiceMonitor"
            if doc["apiVersion"] == "monitoring.coreos.com/v1"
                && doc["spec"]["endpoints"].is_array() =>
        {
            return Ok(());
        }
        "PrometheusRule"
            if doc["apiVersion"] == "monitoring.coreos.com/v1"
                && doc["spec"]["groups"].is_array() =>
        {
            return Ok(());
        }
        other => Err(format!("unexpected kind {other:?}")),
    };
    let name = &doc["metadata"]["name"];
    let back = back.map_err(|e| format!("{kind} {name}: {e}"))?;
    let mut missing = Vec::new();
    lost(doc, &back, "", &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{kind} {name}: not in the schema: {missing:?}"))
    }
}

/// Checks every document and returns them.
fn typed_documents(text: &str, what: &str) -> Vec<Value> {
    let docs = documents(text, what);
    assert!(!docs.is_empty(), "{what}: no objects");
    for d in &docs {
        if let Err(e) = check_typed(d) {
            panic!("{what}: {e}");
        }
    }
    docs
}

/// The one object of `kind` (and `name`, when given).
fn one<'a>(docs: &'a [Value], kind: &str, name: Option<&str>) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n))
        .collect();
    assert_eq!(found.len(), 1, "want one {kind} {name:?}, got {found:?}");
    found[0]
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

// === herald ===

fn config_check(config: &Path) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["config", "check"])
        .arg(config)
        .env("HERALD_LOG", "error")
        .output()
        .expect("run herald config check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The herald config file of a rendered ConfigMap passes `herald config check`.
fn check_configmap_config(cm: &Value) -> Value {
    let text = cm["data"]["config.yaml"]
        .as_str()
        .unwrap_or_else(|| panic!("no config.yaml in {cm}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).expect("write");
    if let Err(e) = config_check(&path) {
        panic!("the ConfigMap's config fails herald config check: {e}\n{text}");
    }
    documents(text, "config.yaml").remove(0)
}

/// The pod spec of a Deployment or StatefulSet meets the security posture
/// and wires herald as the chart promises; returns herald's container.
fn check_pod(workload: &Value, config: &Value) -> Value {
    let pod = &workload["spec"]["template"]["spec"];
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{psc}");
    assert!(psc["runAsUser"].as_u64().is_some_and(|u| u > 0), "{psc}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{psc}");
    let containers = pod["containers"].as_array().expect("containers");
    let herald = containers
        .iter()
        .find(|c| c["name"] == "herald")
        .expect("a herald container")
        .clone();
    let init = pod["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in containers.iter().chain(&init) {
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{}: {sc}", c["name"]);
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{}: {sc}", c["name"]);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{}", c["name"]);
    }
    assert_eq!(
        herald["args"],
        json!(["run", "--config", "/etc/herald/config.yaml"])
    );
    // Probes on the metrics port named in the config (no token needed); the
    // API's port exposed unless it listens on loopback only.
    let port_of = |field: &str| {
        config[field]["listen"]
            .as_str()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{field}.listen with a port"))
    };
    let ports = herald["ports"].as_array().expect("ports");
    let named = |port: u64| {
        ports
            .iter()
            .find(|p| p["containerPort"] == port)
            .map(|p| p["name"].clone())
    };
    let metrics_port = named(port_of("metrics")).expect("the metrics port exposed");
    assert!(metrics_port.is_string(), "{herald}");
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(herald[probe]["httpGet"]["path"], path);
        assert_eq!(herald[probe]["httpGet"]["port"], metrics_port);
    }
    let api_on_loopback = config["api"]["listen"]
        .as_str()
        .is_some_and(|l| l.starts_with("127."));
    if !api_on_loopback {
        assert!(named(port_of("api")).is_some(), "the API port exposed");
    }
    // The config directory (not a subPath: hot reload), the plugin
    // directory and the compile cache where the config says.
    let mounts: BTreeMap<String, String> = herald["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            assert!(
                m.get("subPath").is_none(),
                "subPath mounts never update: {m}"
            );
            (
                m["mountPath"].as_str().unwrap_or_default().to_string(),
                m["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let config_volume = mounts
        .get("/etc/herald")
        .expect("the config mounted at /etc/herald");
    assert!(
        pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .any(|v| &v["name"] == config_volume && v["configMap"].is_object()),
        "/etc/herald is not a ConfigMap volume"
    );
    for key in ["dir", "cacheDir"] {
        if let Some(dir) = config["plugins"][key].as_str() {
            assert!(
                mounts.contains_key(dir),
                "plugins.{key} {dir} not mounted: {mounts:?}"
            );
        }
    }
    herald
}

// === chart rendering ===

enum Renderer {
    Helm,
    Python(String),
}

fn renderer() -> Option<Renderer> {
    let works = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("helm", &["version"]) {
        return Some(Renderer::Helm);
    }
    let python = std::env::var("HERALD_HELM_PYTHON").unwrap_or_else(|_| "python3".into());
    if works(&python, &["-c", "import helm_python"]) {
        return Some(Renderer::Python(python));
    }
    let msg = "no chart renderer: neither `helm` nor python3 with helm-python-sdk \
               (pip install helm-python-sdk==0.2.2)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI must render the chart (.ci/run installs it)");
    }
    eprintln!("\n!!!!!!!!\n!!! SKIPPED: {msg}\n!!!!!!!!\n");
    None
}

fn chart_dir() -> PathBuf {
    workspace_root().join("deploy/helm/herald")
}

/// `helm lint --strict` and `helm template herald <chart> -n herald` with
/// `values` (JSON is YAML).
fn render(r: &Renderer, values: &Value) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("values.json");
    std::fs::write(&file, values.to_string()).expect("write values");
    let run = |cmd: &mut Command| {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    match r {
        Renderer::Helm => {
            run(Command::new("helm")
                .args(["lint", "--strict", "-n", "herald", "-f"])
                .arg(&file)
                .arg(chart_dir()))?;
            run(Command::new("helm")
                .args(["template", "herald", "-n", "herald", "-f"])
                .arg(&file)
                .arg(chart_dir()))
        }
        Renderer::Python(python) => run(Command::new(python)
            .arg(workspace_root().join("deploy/helm/render.py"))
            .arg(chart_dir())
            .args(["--lint", "--name", "herald", "--namespace", "herald"])
            .arg("--values-json")
            .arg(values.to_string())),
    }
}

fn render_ok(r: &Renderer, values: &Value) -> Vec<Value> {
    let text = render(r, values).unwrap_or_else(|e| panic!("chart with {values}: {e}"));
    typed_documents(&text, &format!("chart with {values}"))
}

/// Rules of a Role or ClusterRole as (group, resource, verbs).
fn rules(role: &Value) -> BTreeSet<(String, String, Vec<String>)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let verbs: Vec<String> = serde_json::from_value(rule["verbs"].clone()).expect("verbs");
        for g in rule["apiGroups"].as_array().expect("apiGroups") {
            for r in rule["resources"].as_array().expect("resources") {
                let g = g.as_str().unwrap_or_default().to_string();
                let r = r.as_str().unwrap_or_default().to_string();
                out.insert((g, r, verbs.clone()));
            }
        }
    }
    out
}

fn read_only(group: &str, resource: &str) -> (String, String, Vec<String>) {
    (
        group.into(),
        resource.into(),
        vec!["get".into(), "list".into(), "watch".into()],
    )
}

// === plain manifests ===

fn plain_manifests() -> Vec<Value> {
    let dir = workspace_root().join("deploy/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/manifests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("read");
            typed_documents(&text, &f.display().to_string())
        })
        .collect()
}

#[test]
fn plain_manifests_are_valid_kubernetes_objects_that_run_herald_locked_down() {
    let docs = plain_manifests();
    let mut seen = kinds(&docs);
    seen.sort();
    assert_eq!(
        seen,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "Service",
            "ServiceAccount"
        ]
    );
    let config = check_configmap_config(one(&docs, "ConfigMap", None));
    let deployment = one(&docs, "Deployment", None);
    check_pod(deployment, &config);
    // Read-only rights on exactly the watched type.
    let role = one(&docs, "ClusterRole", None);
    assert_eq!(
        rules(role),
        BTreeSet::from([read_only("apps", "deployments")])
    );
    assert_eq!(config["watch"][0]["kind"], "Deployment");
    // Every namespaced object is in the namespace the manifests create.
    let ns = one(&docs, "Namespace", None)["metadata"]["name"].clone();
    for d in &docs {
        if !["Namespace", "ClusterRole", "ClusterRoleBinding"]
            .contains(&d["kind"].as_str().unwrap_or_default())
        {
            assert_eq!(d["metadata"]["namespace"], ns, "{}", d["kind"]);
        }
    }
}

#[test]
fn the_sidecar_pod_is_valid_and_carries_the_sidecar_example_config() {
    let path = workspace_root().join("deploy/manifests/sidecar/app-with-herald.yaml");
    let docs = typed_documents(&std::fs::read_to_string(&path).expect("read"), "sidecar");
    let cm = one(&docs, "ConfigMap", None);
    let embedded = documents(
        cm["data"]["config.yaml"].as_str().expect("config.yaml"),
        "cm",
    );
    let example = std::fs::read_to_string(workspace_root().join("deploy/examples/sidecar.yaml"))
        .expect("deploy/examples/sidecar.yaml");
    assert_eq!(embedded, documents(&example, "sidecar.yaml"));
    let pod = &one(&docs, "Deployment", None)["spec"]["template"]["spec"];
    let names: Vec<&str> = pod["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "the app and herald side by side: {names:?}");
    check_pod(one(&docs, "Deployment", None), &embedded[0]);
    // Reads only the two watched types, in its own namespace.
    let role = one(&docs, "Role", None);
    assert_eq!(role["metadata"]["namespace"], "shop");
    assert_eq!(
        rules(role),
        BTreeSet::from([read_only("", "configmaps"), read_only("", "secrets")])
    );
}

// === the chart ===

/// Objects keyed by kind/name, without what only Helm adds.
fn without_helm_bookkeeping(docs: &[Value]) -> BTreeMap<String, Value> {
    docs.iter()
        .map(|d| {
            let mut d = d.clone();
            let meta = d["metadata"].as_object_mut().expect("metadata");
            if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
                labels.remove("helm.sh/chart");
                labels.remove("app.kubernetes.io/managed-by");
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                ann.remove("helm.sh/resource-policy");
                if ann.is_empty() {
                    meta.remove("annotations");
                }
            }
            let key = format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["name"]
            );
            (key, d)
        })
        .collect()
}

#[test]
fn chart_with_default_values_renders_valid_objects_and_equals_the_plain_manifests() {
    let Some(r) = renderer() else { return };
    let docs = render_ok(&r, &json!({}));
    let config = check_configmap_config(one(&docs, "ConfigMap", None));
    let deployment = one(&docs, "Deployment", None);
    assert_eq!(deployment["spec"]["replicas"], 1);
    // One pod owns the ReadWriteOnce state claim.
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let herald = check_pod(deployment, &config);
    let pod = &deployment["spec"]["template"]["spec"];
    // Hot reload on: a config change must not roll the pods.
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"].is_null(),
        "{deployment}"
    );
    // The plugin emptyDir, filled by the plugin image's init container.
    let init = &pod["initContainers"][0];
    assert_eq!(
        init["command"],
        json!(["sh", "-c", "cp /plugins/*.wasm /shared/"])
    );
    let volumes: BTreeMap<String, Value> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap_or_default().to_string(),
                v.clone(),
            )
        })
        .collect();
    assert!(volumes["plugins"]["emptyDir"].is_object(), "{volumes:?}");
    assert_eq!(
        volumes["state"]["persistentVolumeClaim"]["claimName"],
        one(&docs, "PersistentVolumeClaim", None)["metadata"]["name"]
    );
    assert!(
        herald["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["name"] == "state" && m["mountPath"] == "/var/lib/herald")
    );
    // The Service reaches the API port; RBAC is read-only on Deployments; no
    // Lease rights for one replica.
    let svc = one(&docs, "Service", None);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(svc["spec"]["ports"][1]["targetPort"], "metrics");
    // The API asks the API server (TokenReview, SubjectAccessReview).
    let delegator = one(&docs, "ClusterRoleBinding", Some("herald-auth-delegator"));
    assert_eq!(delegator["roleRef"]["name"], "system:auth-delegator");
    assert_eq!(delegator["subjects"][0]["name"], pod["serviceAccountName"]);
    // The API port admits only herald's namespace; metrics the monitoring one.
    let policy = one(&docs, "NetworkPolicy", None);
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "http");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"],
        json!([{"podSelector": {}}])
    );
    assert_eq!(policy["spec"]["ingress"][1]["ports"][0]["port"], "metrics");
    assert!(!kinds(&docs).contains(&"ServiceMonitor".to_string()));
    assert_eq!(
        svc["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        rules(one(&docs, "ClusterRole", None)),
        BTreeSet::from([read_only("apps", "deployments")])
    );
    assert!(
        !kinds(&docs).contains(&"Role".to_string()),
        "{:?}",
        kinds(&docs)
    );
    let sa = one(&docs, "ServiceAccount", None)["metadata"]["name"].clone();
    assert_eq!(pod["serviceAccountName"], sa);
    assert_eq!(
        one(&docs, "ClusterRoleBinding", Some("herald"))["subjects"][0]["name"],
        sa
    );

    // deploy/manifests are these objects, plus the Namespace.
    let chart = without_helm_bookkeeping(&docs);
    let mut plain = without_helm_bookkeeping(&plain_manifests());
    plain.retain(|k, _| !k.starts_with("Namespace/"));
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        plain.keys().collect::<Vec<_>>()
    );
    for (key, obj) in &chart {
        assert_eq!(
            obj, &plain[key],
            "deploy/manifests differs from the chart: {key}"
        );
    }
}

#[test]
fn chart_with_two_replicas_grants_leases_and_gives_each_replica_its_state() {
    let Some(r) = renderer() else { return };
    let docs = render_ok(&r, &json!({"replicas": 2}));
    assert!(!kinds(&docs).contains(&"Deployment".to_string()));
    assert!(!kinds(&docs).contains(&"PersistentVolumeClaim".to_string()));
    let sts = one(&docs, "StatefulSet", None);
    assert_eq!(sts["spec"]["replicas"], 2);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "state"
    );
    let config = check_configmap_config(one(&docs, "ConfigMap", None));
    check_pod(sts, &config);
    assert_eq!(
        config["ha"]["enabled"], true,
        "two replicas elect a leader: {config}"
    );
    let lease = one(&docs, "Role", Some("herald-leader-election"));
    assert_eq!(lease["metadata"]["namespace"], "herald");
    assert_eq!(
        rules(lease),
        BTreeSet::from([(
            "coordination.k8s.io".to_string(),
            "leases".to_string(),
            vec![
                "get".into(),
                "create".into(),
                "update".into(),
                "patch".into()
            ]
        )])
    );
    let binding = one(&docs, "RoleBinding", Some("herald-leader-election"));
    assert_eq!(binding["roleRef"]["name"], "herald-leader-election");
    assert_eq!(binding["subjects"][0]["name"], "herald");
    // Watching stays read-only.
    assert_eq!(
        rules(one(&docs, "ClusterRole", None)),
        BTreeSet::from([read_only("apps", "deployments")])
    );
}

#[test]
fn chart_rbac_follows_the_watched_kinds_and_secrets_come_by_env_and_file() {
    let Some(r) = renderer() else { return };
    let values = json!({
        "hotReload": false,
        "config": {
            "watch": [
                {"version": "v1", "kind": "ConfigMap", "namespaces": ["payments"]},
                {"group": "core", "version": "v1", "kind": "Pod"},
                {"group": "apps", "kind": "deploy"},
                {"group": "networking.k8s.io", "kind": "NetworkPolicy"},
                {"group": "example.com", "version": "v1", "kind": "Gateway"},
                {"group": "example.com", "version": "v1", "kind": "Mouse", "resource": "mice"}
            ]
        },
        "env": [{"name": "SLACK_WEBHOOK_URL",
                 "valueFrom": {"secretKeyRef": {"name": "herald-slack", "key": "url"}}}],
        "secretMounts": [{"name": "audit", "secretName": "herald-audit",
                          "mountPath": "/var/run/secrets/herald/audit"}]
    });
    let docs = render_ok(&r, &values);
    assert_eq!(
        rules(one(&docs, "ClusterRole", None)),
        BTreeSet::from([
            read_only("", "pods"),
            read_only("apps", "deployments"),
            read_only("networking.k8s.io", "networkpolicies"),
            read_only("example.com", "gateways"),
            read_only("example.com", "mice"),
        ])
    );
    // A watch of one namespace gets a Role there, nothing cluster-wide.
    let role = one(&docs, "Role", Some("herald-watch"));
    assert_eq!(role["metadata"]["namespace"], "payments");
    assert_eq!(rules(role), BTreeSet::from([read_only("", "configmaps")]));
    assert_eq!(
        one(&docs, "RoleBinding", Some("herald-watch"))["metadata"]["namespace"],
        "payments"
    );
    // `resource` is the chart's; herald gets a config it accepts.
    let config = check_configmap_config(one(&docs, "ConfigMap", None));
    assert!(config["watch"][5].get("resource").is_none(), "{config}");
    assert_eq!(config["watch"][5]["kind"], "Mouse");

    let deployment = one(&docs, "Deployment", None);
    let herald = check_pod(deployment, &config);
    assert!(
        herald["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "SLACK_WEBHOOK_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == "herald-slack")
    );
    assert!(
        herald["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["mountPath"] == "/var/run/secrets/herald/audit" && m["readOnly"] == true)
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .any(|v| v["secret"]["secretName"] == "herald-audit")
    );

    // Hot reload off: the pod template carries the config's checksum, so a
    // config change (and only that) rolls the pods.
    let checksum = |docs: &[Value]| {
        one(docs, "Deployment", None)["spec"]["template"]["metadata"]["annotations"]
            ["checksum/config"]
            .as_str()
            .map(String::from)
            .expect("checksum/config annotation")
    };
    let mut other = values.clone();
    other["config"]["cluster"] = json!("another-cluster");
    let mut same = values.clone();
    same["replicas"] = json!(1);
    same["log"] = json!({"level": "debug", "format": "json"});
    assert_ne!(checksum(&docs), checksum(&render_ok(&r, &other)));
    assert_eq!(checksum(&docs), checksum(&render_ok(&r, &same)));
}

#[test]
fn chart_secures_the_api_as_the_values_say() {
    let Some(r) = renderer() else { return };
    // Namespaces allowed to query, a ServiceMonitor.
    let docs = render_ok(
        &r,
        &json!({"networkPolicy": {"apiFrom": ["dashboards"], "metricsFrom": []},
                "serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}}),
    );
    let policy = one(&docs, "NetworkPolicy", None);
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "dashboards"
    );
    assert_eq!(
        policy["spec"]["ingress"].as_array().map(Vec::len),
        Some(1),
        "no metrics rule without metricsFrom: {policy}"
    );
    let sm = one(&docs, "ServiceMonitor", None);
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    // auth: none (loopback) needs no auth-delegator; no NetworkPolicy when off.
    let docs = render_ok(
        &r,
        &json!({"config": {"api": {"listen": "127.0.0.1:8080", "auth": "none"}},
                "networkPolicy": {"enabled": false}}),
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "herald-auth-delegator"),
        "auth: none binds no auth-delegator"
    );
    assert!(!kinds(&docs).contains(&"NetworkPolicy".to_string()));
}

#[test]
fn chart_rejects_values_it_cannot_deploy() {
    let Some(r) = renderer() else { return };
    let no_api = json!({"config": {"api": null}});
    let err = render(&r, &no_api).expect_err("no api.listen");
    assert!(err.contains("config.api.listen"), "{err}");
    let no_metrics = json!({"config": {"metrics": null}});
    let err = render(&r, &no_metrics).expect_err("no metrics.listen");
    assert!(err.contains("config.metrics.listen"), "{err}");
    let err = render(&r, &json!({"plugins": {"source": "pvc"}})).expect_err("pvc without claim");
    assert!(err.contains("plugins.existingClaim"), "{err}");
    let err = render(&r, &json!({"plugins": {"source": "git"}})).expect_err("unknown source");
    assert!(err.contains("plugins.source"), "{err}");
    // A state dir is locked by one process: one claim cannot serve two replicas.
    let err = render(
        &r,
        &json!({"replicas": 2, "state": {"existingClaim": "shared"}}),
    )
    .expect_err("a shared state claim");
    assert!(err.contains("state.existingClaim"), "{err}");
}

/// The dashboard ConfigMap and the PrometheusRule hold what
/// `deploy/monitoring/` holds (tests/e2e/tests/monitoring.rs checks that
/// against a real herald's metrics).
#[test]
fn chart_installs_the_dashboard_and_the_alert_rules_when_asked() {
    let Some(r) = renderer() else { return };
    let docs = render_ok(&r, &json!({}));
    assert!(!kinds(&docs).contains(&"PrometheusRule".to_string()));
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["labels"]["grafana_dashboard"].is_string()),
        "no dashboard by default"
    );
    let docs = render_ok(
        &r,
        &json!({"grafanaDashboard": {"enabled": true, "annotations": {"grafana_folder": "herald"}},
                "prometheusRule": {"enabled": true, "assumeCrd": true,
                                   "labels": {"release": "prom"}}}),
    );
    let monitoring = |f: &str| {
        std::fs::read_to_string(workspace_root().join("deploy/monitoring").join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let cm = one(&docs, "ConfigMap", Some("herald-dashboard"));
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "herald");
    let dashboard: Value =
        serde_json::from_str(cm["data"]["herald.json"].as_str().unwrap_or_default())
            .expect("the dashboard is JSON");
    let want: Value = serde_json::from_str(&monitoring("herald-dashboard.json")).expect("JSON");
    assert_eq!(dashboard, want);
    let rule = one(&docs, "PrometheusRule", None);
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let want = documents(&monitoring("herald-alerts.yaml"), "herald-alerts.yaml");
    assert_eq!(rule["spec"], want[0]);
    // Asked for where the API is not served: an error that says so.
    let err = render(&r, &json!({"prometheusRule": {"enabled": true}})).expect_err("no CRD");
    assert!(
        err.contains("does not serve monitoring.coreos.com/v1 PrometheusRule"),
        "{err}"
    );
}

// === the image ===

/// Dockerfile instructions (continuation lines joined) by stage name.
fn dockerfile_stages() -> Vec<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(workspace_root().join("Dockerfile")).expect("Dockerfile");
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut line = String::new();
    for raw in text.lines() {
        let t = raw.trim();
        if line.is_empty() && (t.starts_with('#') || t.is_empty()) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            line.push_str(cont);
            line.push(' ');
            continue;
        }
        line.push_str(t);
        let (instr, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let (instr, rest) = (instr.to_ascii_uppercase(), rest.trim().to_string());
        if instr == "FROM" {
            let name = rest.rsplit(" AS ").next().unwrap_or_default().to_string();
            stages.push((name, Vec::new()));
        }
        if let Some(stage) = stages.last_mut() {
            stage.1.push((instr, rest));
        }
        line.clear();
    }
    stages
}

fn instruction(stage: &[(String, String)], name: &str) -> Option<String> {
    stage
        .iter()
        .rev()
        .find(|(i, _)| i == name)
        .map(|(_, r)| r.clone())
}

#[test]
fn the_image_runs_herald_as_the_chart_expects_with_the_shipped_plugins() {
    let stages = dockerfile_stages();
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["build", "plugins", "herald"],
        "the last stage is the default target"
    );
    let herald = &stages[2].1;
    let json_of = |s: Option<String>| -> Value {
        serde_json::from_str(&s.unwrap_or_default()).unwrap_or(Value::Null)
    };
    assert_eq!(
        json_of(instruction(herald, "ENTRYPOINT")),
        json!(["herald"])
    );
    // The image's default command is the chart's args.
    let docs = plain_manifests();
    let deployment = one(&docs, "Deployment", None);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        json_of(instruction(herald, "CMD")),
        pod["containers"][0]["args"]
    );
    // A numeric non-root user, the one the pod runs as.
    let user = instruction(herald, "USER").expect("USER");
    let uid: u64 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("numeric USER");
    assert!(uid > 0);
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    assert_eq!(
        json_of(instruction(&stages[1].1, "CMD")),
        pod["initContainers"][0]["command"]
    );

    // The plugin image holds exactly the shipped plugins, and the paths the
    // build copies are what scripts/build-plugins produces.
    let mut shipped = BTreeSet::new();
    for entry in std::fs::read_dir(workspace_root().join("plugins")).expect("plugins/") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if text.contains("cdylib") {
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("package name");
            shipped.insert(name.to_string());
        }
    }
    let build = stages[0]
        .1
        .iter()
        .map(|(_, r)| r.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let packages: BTreeSet<String> = build
        .split(" -p ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .filter(|p| *p != "herald" && !p.starts_with('/'))
        .map(String::from)
        .collect();
    assert_eq!(packages, shipped, "plugins built for the image");
    let copied: BTreeSet<String> = build
        .split("target/wasm32-wasip2/plugin/")
        .skip(1)
        .filter_map(|s| s.split(".wasm").next())
        .map(String::from)
        .collect();
    let expected: BTreeSet<String> = shipped.iter().map(|s| s.replace('-', "_")).collect();
    assert_eq!(copied, expected, "plugins copied into the image");
    for name in &copied {
        let wasm = plugin_dir().join(format!("{name}.wasm"));
        assert!(
            wasm.exists(),
            "{} is not what the build produces",
            wasm.display()
        );
    }
}

// === the entrypoint with the chart's default config ===

/// `config` of the chart's values.yaml.
fn chart_default_config() -> Value {
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let values = documents(&text, "values.yaml").remove(0);
    values["config"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entrypoint_starts_with_the_charts_default_config_and_notifies() {
    let c = Cluster::start(Duration::from_millis(200)).await;
    let mut config = chart_default_config();
    // As shipped, it is a valid config.
    let as_shipped = c.dir.path().join("as-shipped.yaml");
    std::fs::write(
        &as_shipped,
        serde_yaml_ng::to_string(&config).expect("yaml"),
    )
    .expect("write");
    let report = config_check(&as_shipped).unwrap_or_else(|e| panic!("values.yaml config: {e}"));
    assert!(report.contains("1 watched types"), "{report}");

    // The pod's paths become local ones: the volumes (plugins, cache, state), the API address (the
    // port stays the chart's probe target in the pod) and the kubeconfig.
    config["plugins"]["dir"] = json!(plugin_dir());
    config["plugins"]["cacheDir"] = json!(c.dir.path().join("cache"));
    if config.get("stateDir").is_some() {
        config["stateDir"] = json!(c.dir.path().join("state"));
    }
    config["api"]["listen"] = json!(format!("127.0.0.1:{}", c.api_port));
    config["metrics"]["listen"] = json!(format!("127.0.0.1:{}", c.metrics_port));
    config["kubeconfig"] = json!(c.kubeconfig);
    let local = c.dir.path().join("config.yaml");
    std::fs::write(&local, serde_yaml_ng::to_string(&config).expect("yaml")).expect("write");

    // The image's ENTRYPOINT and CMD, with the mounted config path made local.
    let stages = dockerfile_stages();
    let cmd: Vec<String> = serde_json::from_str(&instruction(&stages[2].1, "CMD").expect("CMD"))
        .expect("CMD is a JSON array");
    let args: Vec<String> = cmd
        .iter()
        .map(|a| {
            if a == "/etc/herald/config.yaml" {
                local.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(&args)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start herald");
    let lines = {
        use std::io::BufRead;
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        rx
    };
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);

    assert!(
        wait_http_ok(&c.probe("/healthz")).await,
        "/healthz never answered 200"
    );
    assert!(
        wait_http_ok(&c.probe("/readyz")).await,
        "/readyz never answered 200"
    );
    let (code, body) = http_get(&c.probe("/readyz")).await.expect("readyz");
    assert_eq!((code, &body["ready"]), (200, &json!(true)), "{body}");

    // The default chain (noise, prune) runs: a Deployment's creation arrives
    // pruned, a status-only change is dropped, a spec change arrives.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop",
                     "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}
    });
    c.sim
        .create("deployments", deployment)
        .await
        .expect("create");
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a notification within 20s")
    };
    let added = next();
    assert_eq!(
        (added["change"].as_str(), added["kind"].as_str()),
        (Some("added"), Some("Deployment"))
    );
    assert_eq!(added["cluster"], config["cluster"]);
    assert!(
        added["object"]["metadata"].get("managedFields").is_none(),
        "{added}"
    );

    let mut d = c.sim.get("deployments", "shop", "web").await.expect("get");
    d["status"] = json!({"observedGeneration": 1, "replicas": 1});
    c.sim.update_status("deployments", d).await.expect("status");
    let mut d = c.sim.get("deployments", "shop", "web").await.expect("get");
    d["spec"]["replicas"] = json!(3);
    c.sim.update("deployments", d).await.expect("update");
    let modified = next();
    assert_eq!(modified["change"], "modified");
    assert_eq!(
        modified["object"]["spec"]["replicas"], 3,
        "the status-only change came through: {modified}"
    );
    assert!(lines.recv_timeout(Duration::from_millis(500)).is_err());
}
