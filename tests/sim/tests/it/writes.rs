//! Writes: Status failures shaped like the real server's, optimistic concurrency (409
//! on a stale resourceVersion, which leader election relies on), patches, finalizers,
//! and namespace deletion.

use herald_sim::{ChangeType, fixtures};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::{self, client, request};

fn api_err(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API Status, got {other:?}"),
    }
}

#[tokio::test]
async fn stale_update_is_409_and_leases_elect_one_leader() {
    let sim = common::start().await;
    let client = client(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(fixtures::pod("default", "web", &[])).expect("pod");
    let created = pods
        .create(&PostParams::default(), &p)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let (code, reason) = api_err(
        pods.create(&PostParams::default(), &p)
            .await
            .expect_err("duplicate"),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let (code, reason) = api_err(pods.get("missing").await.expect_err("missing"));
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.metadata.labels = Some([("v".to_string(), "2".to_string())].into());
    let updated = pods
        .replace("web", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(updated.metadata.generation, Some(1), "labels are not spec");
    stale.metadata.labels = Some([("v".to_string(), "stale".to_string())].into());
    let (code, reason) = api_err(
        pods.replace("web", &PostParams::default(), &stale)
            .await
            .expect_err("stale"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // Two candidates read the same lease; only the first replace wins.
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "herald", "namespace": "kube-system"},
        "spec": {"holderIdentity": "nobody", "leaseDurationSeconds": 15}
    }))
    .expect("lease");
    let seen = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create lease");
    let claim = |who: &str| {
        let mut l = seen.clone();
        if let Some(spec) = l.spec.as_mut() {
            spec.holder_identity = Some(who.to_string());
        }
        l
    };
    let won = leases
        .replace("herald", &PostParams::default(), &claim("a"))
        .await;
    let lost = leases
        .replace("herald", &PostParams::default(), &claim("b"))
        .await;
    assert!(won.is_ok());
    assert_eq!(api_err(lost.expect_err("second claim")).0, 409);
    let now = leases.get("herald").await.expect("get");
    assert_eq!(
        now.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn merge_json_strategic_and_apply_patches() {
    let sim = common::start().await;
    let client = client(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    sim.create("pods", fixtures::pod("default", "web", &[]))
        .await
        .expect("create");

    let p = pods
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}, "spec": {"activeDeadlineSeconds": 5}})))
        .await
        .expect("merge patch");
    assert_eq!(
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("a")
    );
    assert_eq!(
        p.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );

    // Strategic merge: containers merge by name.
    let p = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}),
            ),
        )
        .await
        .expect("strategic patch");
    let names: Vec<String> = p
        .spec
        .map(|s| s.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    assert_eq!(names, ["web", "sidecar"]);

    // JSON patch over the wire and in-process; a failed test op is 422.
    let (code, _, body) = request(
        &sim,
        "PATCH",
        "/api/v1/namespaces/default/pods/web",
        Some("application/json-patch+json"),
        r#"[{"op":"add","path":"/metadata/labels/json","value":"yes"},{"op":"remove","path":"/metadata/labels/team"}]"#,
    )
    .await;
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["metadata"]["labels"]["json"], "yes");
    assert!(v["metadata"]["labels"].get("team").is_none());
    let v = sim
        .patch_json(
            "pods",
            "default",
            "web",
            json!([{"op": "replace", "path": "/metadata/labels/json", "value": "again"}]),
        )
        .await
        .expect("patch_json");
    assert_eq!(v["metadata"]["labels"]["json"], "again");
    let (code, _, _) = request(
        &sim,
        "PATCH",
        "/api/v1/namespaces/default/pods/web",
        Some("application/json-patch+json"),
        r#"[{"op":"test","path":"/metadata/name","value":"other"}]"#,
    )
    .await;
    assert_eq!(code, 422);

    // A merge patch carrying a stale resourceVersion is a conflict.
    let (code, _, _) = request(
        &sim,
        "PATCH",
        "/api/v1/namespaces/default/pods/web",
        Some("application/merge-patch+json"),
        r#"{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}"#,
    )
    .await;
    assert_eq!(code, 409);

    // Server-side apply creates a missing object, and needs a field manager.
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(pods.clone().into_client(), "default");
    let applied = cm
        .patch(
            "applied",
            &PatchParams::apply("herald-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}})),
        )
        .await
        .expect("apply creates");
    assert_eq!(
        applied.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("v")
    );
    let (code, _, _) = request(
        &sim,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/applied",
        Some("application/apply-patch+yaml"),
        "data:\n  k: w\n",
    )
    .await;
    assert_eq!(code, 422, "apply without fieldManager");
    let (code, _, _) = request(
        &sim,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/applied",
        Some("text/plain"),
        "{}",
    )
    .await;
    assert_eq!(code, 415);

    // A no-op patch writes nothing.
    let before = sim.change_log().len();
    pods.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"json": "again"}}})),
    )
    .await
    .expect("no-op");
    assert_eq!(sim.change_log().len(), before);
}

#[tokio::test]
async fn finalizers_status_subresource_and_namespace_deletion() {
    let sim = common::start().await;
    let client = client(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "scratch");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "scratch"}})).expect("ns"),
        )
        .await
        .expect("namespace");
    let mut held = fixtures::pod("scratch", "held", &[]);
    held["metadata"]["finalizers"] = json!(["example.com/keep"]);
    sim.create("pods", held).await.expect("held");
    sim.create("pods", fixtures::pod("scratch", "plain", &[]))
        .await
        .expect("plain");

    // Finalizers keep a deleted object, marked, until they are removed.
    let (code, _, body) = request(
        &sim,
        "DELETE",
        "/api/v1/namespaces/scratch/pods/held",
        None,
        "",
    )
    .await;
    assert_eq!(code, 202);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert!(v["metadata"]["deletionTimestamp"].is_string());
    assert!(pods.get("held").await.is_ok());
    pods.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop finalizer");
    assert_eq!(api_err(pods.get("held").await.expect_err("gone")).0, 404);

    // The status subresource changes only status.
    let p = pods.get("plain").await.expect("plain");
    let patched = pods
        .patch_status(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"ignored": "yes"}}}),
            ),
        )
        .await
        .expect("status patch");
    assert_eq!(
        patched.status.and_then(|s| s.phase).as_deref(),
        Some("Failed")
    );
    assert_eq!(patched.metadata.labels, p.metadata.labels);

    // Deleting a namespace deletes what is in it, then the namespace.
    namespaces
        .delete("scratch", &DeleteParams::default())
        .await
        .expect("delete ns");
    assert!(
        pods.list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert_eq!(
        api_err(namespaces.get("scratch").await.expect_err("gone")).0,
        404
    );
    let tail: Vec<(ChangeType, String)> = sim
        .change_log()
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|c| (c.change_type, c.name.clone()))
        .collect();
    assert_eq!(
        tail,
        [
            (ChangeType::Modified, "scratch".to_string()),
            (ChangeType::Deleted, "plain".to_string()),
            (ChangeType::Deleted, "scratch".to_string())
        ]
    );
}

#[tokio::test]
async fn change_log_records_every_write() {
    let sim = herald_sim::Simulator::builder()
        .seed_namespaces(false)
        .start()
        .await
        .expect("start");
    let a = sim
        .create("configmaps", fixtures::config_map("default", "a", &[]))
        .await
        .expect("a");
    sim.patch_merge("cm", "default", "a", json!({"data": {"k": "v"}}))
        .await
        .expect("patch");
    sim.delete("configmap", "default", "a")
        .await
        .expect("delete");
    let log = sim.change_log();
    assert_eq!(log.len(), 3);
    let uid = a["metadata"]["uid"].as_str().expect("uid");
    for (i, (c, t)) in log
        .iter()
        .zip([ChangeType::Added, ChangeType::Modified, ChangeType::Deleted])
        .enumerate()
    {
        assert_eq!(c.uid, uid);
        assert_eq!(c.change_type, t);
        assert_eq!(c.resource_version, i as u64 + 1);
        assert_eq!(
            (c.namespace.as_deref(), c.name.as_str(), c.kind.as_str()),
            (Some("default"), "a", "ConfigMap")
        );
    }
}

/// `real_writes`: the server's managedFields replace the client's, a change rewrites
/// them, a no-op stays a no-op, and a new pod's status is the server's.
#[tokio::test]
async fn real_writes_keep_managed_fields_as_a_real_server_does() {
    let sim = herald_sim::Simulator::builder()
        .real_writes(true)
        .start()
        .await
        .expect("simulator");
    let client = client(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let p: Pod = serde_json::from_value(fixtures::pod("default", "web", &[])).expect("pod");
    let created = pods
        .create(&PostParams::default(), &p)
        .await
        .expect("create");
    let mf = created
        .metadata
        .managed_fields
        .clone()
        .expect("managedFields");
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("herald-sim-client"));
    let fields = serde_json::to_value(&mf[0].fields_v1).expect("fieldsV1");
    assert!(
        fields.to_string().len() > 2_000,
        "a tree of every field: {fields}"
    );
    let status = created.status.clone().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert!(status.conditions.is_none(), "the kubelet writes conditions");

    let patched = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"seq": "1"}}})),
        )
        .await
        .expect("patch");
    let fields = serde_json::to_value(&patched.metadata.managed_fields.expect("mf")[0].fields_v1)
        .expect("fieldsV1");
    assert_eq!(fields["f:metadata"]["f:labels"]["f:seq"], json!({}));
    let again = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"seq": "1"}}})),
        )
        .await
        .expect("no-op patch");
    assert_eq!(
        again.metadata.resource_version, patched.metadata.resource_version,
        "a no-op write is not a change"
    );
}
