//! Sample objects for tests, demos and benchmarks: a realistic pod of about 6.6 KB,
//! and small objects of other kinds.

use serde_json::{Value, json};

/// Serialised size of [`pod`] objects, like a typical pod read from a real cluster.
pub const POD_BYTES: usize = 6_600;

/// A pod shaped like one a Deployment creates (owner reference, managed fields,
/// containers with env and probes, volumes, status with conditions), padded to about
/// [`POD_BYTES`] once the server has added its metadata.
pub fn pod(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let mut label_map = serde_json::Map::new();
    label_map.insert("app.kubernetes.io/name".into(), json!("web"));
    label_map.insert("pod-template-hash".into(), json!("7d4b9c8f6"));
    for (k, v) in labels {
        label_map.insert((*k).into(), json!(v));
    }
    let env: Vec<Value> = (0..12)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-for-{name}")}))
        .collect();
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": label_map,
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090"
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6",
                "uid": "5f0c6e4e-2a4b-4f43-9d4e-1b2c3d4e5f60", "controller": true,
                "blockOwnerDeletion": true
            }],
            "managedFields": [{
                "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}},
                             "f:ownerReferences": {".": {}}},
                             "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}
            }]
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.example/web:1.2.3",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                "env": env,
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                              "requests": {"cpu": "100m", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                  "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                                   "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web"},
                                 {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                  "readOnly": true}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}
            ],
            "nodeName": "node-1",
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.11",
            "podIP": "10.244.1.23",
            "qosClass": "Burstable",
            "startTime": "2024-05-01T10:00:01Z",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2024-05-01T10:00:01Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:09Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2024-05-01T10:00:09Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"}
            ],
            "containerStatuses": [{
                "name": "web", "ready": true, "restartCount": 0, "started": true,
                "image": "registry.example/web:1.2.3",
                "imageID": "registry.example/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "containerID": "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}}
            }]
        }
    });
    // uid, resourceVersion, creationTimestamp and generation add about 120 bytes.
    let len = p.to_string().len() + 120;
    if len < POD_BYTES {
        p["metadata"]["annotations"]["herald-sim/padding"] = json!("x".repeat(POD_BYTES - len));
    }
    p
}

/// [`pod`] widened to the shape of a real one: four containers, each with
/// its `env`, and `managedFields` of four managers (about 11.7 KB).
pub fn wide_pod(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let mut p = pod(namespace, name, labels);
    // Three more copies of the first item of each list, renamed.
    for (list, field, prefix) in [
        ("/spec/containers", "name", "side"),
        ("/metadata/managedFields", "manager", "manager"),
    ] {
        if let Some(items) = p.pointer_mut(list).and_then(Value::as_array_mut) {
            for i in 1..4 {
                let mut item = items[0].clone();
                item[field] = json!(format!("{prefix}-{i}"));
                items.push(item);
            }
        }
    }
    p
}

/// A small ConfigMap.
pub fn config_map(namespace: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data
    })
}

/// A CustomResourceDefinition for `plural.group` with one served version.
pub fn crd(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "names": {"plural": plural, "singular": kind.to_ascii_lowercase(), "kind": kind},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_is_about_the_right_size() {
        let p = pod("ns", "web-1", &[("tier", "front")]);
        let n = p.to_string().len();
        assert!((POD_BYTES - 300..POD_BYTES).contains(&n), "{n}");
        assert_eq!(p["metadata"]["labels"]["tier"], "front");
    }

    #[test]
    fn a_wide_pod_has_four_containers_and_four_managers() {
        let p = wide_pod("ns", "web-1", &[("tier", "front")]);
        let names = |list: &str, field: &str| -> Vec<String> {
            p.pointer(list)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|i| i[field].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            names("/spec/containers", "name"),
            ["web", "side-1", "side-2", "side-3"]
        );
        assert_eq!(
            names("/metadata/managedFields", "manager"),
            [
                "kube-controller-manager",
                "manager-1",
                "manager-2",
                "manager-3"
            ]
        );
        assert!(p.to_string().len() > 2 * POD_BYTES - 2_000);
    }
}
