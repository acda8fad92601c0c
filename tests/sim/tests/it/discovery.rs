//! kube-rs discovery (legacy and aggregated) resolves built-in types, a type added at
//! run time and a type registered by creating a CRD; deleting the CRD unregisters it.

use herald_sim::{ResourceType, fixtures};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};

use crate::common::{self, client, get_json};

fn gvk(g: &str, v: &str, k: &str) -> GroupVersionKind {
    GroupVersionKind::gvk(g, v, k)
}

#[tokio::test]
async fn discovery_resolves_builtin_added_and_crd_types() {
    let sim = common::start().await;
    let client = client(&sim).await;
    sim.add_resource(
        ResourceType::new("example.com", "v1", "Widget", "widgets").short_names(&["wd"]),
    );
    let crd: CustomResourceDefinition = serde_json::from_value(fixtures::crd(
        "stable.example.org",
        "v1",
        "Gadget",
        "gadgets",
        true,
    ))
    .expect("crd");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds
        .create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");
    let established = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "a created CRD is established at once");

    for aggregated in [false, true] {
        let d = Discovery::new(client.clone());
        let d = if aggregated {
            d.run_aggregated().await
        } else {
            d.run().await
        }
        .expect("discovery runs");
        let (pods, caps) = d.resolve_gvk(&gvk("", "v1", "Pod")).expect("pods");
        assert_eq!(
            (pods.plural.as_str(), caps.scope.clone()),
            ("pods", Scope::Namespaced)
        );
        assert!(caps.supports_operation("watch"));
        let (deploy, _) = d
            .resolve_gvk(&gvk("apps", "v1", "Deployment"))
            .expect("deployments");
        assert_eq!(deploy.plural, "deployments");
        let (ns, caps) = d
            .resolve_gvk(&gvk("", "v1", "Namespace"))
            .expect("namespaces");
        assert_eq!(
            (ns.plural.as_str(), caps.scope),
            ("namespaces", Scope::Cluster)
        );
        let (w, _) = d
            .resolve_gvk(&gvk("example.com", "v1", "Widget"))
            .expect("added type");
        assert_eq!(w.plural, "widgets");
        let (g, caps) = d
            .resolve_gvk(&gvk("stable.example.org", "v1", "Gadget"))
            .expect("CRD type");
        assert_eq!(
            (g.plural.as_str(), caps.scope),
            ("gadgets", Scope::Namespaced)
        );
        assert!(d.resolve_gvk(&gvk("", "v1", "Nothing")).is_none());
    }
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    for p in [
        "/apis",
        "/api",
        "/api/v1",
        "/apis/apps/v1",
        "/apis/stable.example.org/v1",
    ] {
        assert!(
            paths.iter().any(|x| x == p),
            "legacy discovery asked for {p}: {paths:?}"
        );
    }

    // Objects of the CRD type work through the dynamic API.
    let (ar, _) = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery")
        .resolve_gvk(&gvk("stable.example.org", "v1", "Gadget"))
        .expect("gadget");
    let gadgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let mut obj = DynamicObject::new("g1", &ar);
    obj.data = serde_json::json!({"spec": {"size": 3}});
    gadgets
        .create(&PostParams::default(), &obj)
        .await
        .expect("create gadget");
    assert_eq!(
        gadgets
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    // Deleting the CRD deletes its objects and unregisters the type.
    crds.delete("gadgets.stable.example.org", &DeleteParams::default())
        .await
        .expect("delete CRD");
    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    assert!(
        d.resolve_gvk(&gvk("stable.example.org", "v1", "Gadget"))
            .is_none()
    );
    assert!(!d.has_group("stable.example.org"));
    let (code, _) = get_json(
        &sim,
        "/apis/stable.example.org/v1/namespaces/default/gadgets",
    )
    .await;
    assert_eq!(code, 404);
    let deleted: Vec<_> = sim
        .change_log()
        .into_iter()
        .filter(|c| c.kind == "Gadget")
        .map(|c| c.change_type.as_str())
        .collect();
    assert_eq!(deleted, ["ADDED", "DELETED"]);
}

#[tokio::test]
async fn discovery_documents_have_the_real_shapes() {
    let sim = common::start().await;
    let (code, v) = get_json(&sim, "/version").await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
    let (_, api) = get_json(&sim, "/api").await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"][0], "v1");
    let (_, core) = get_json(&sim, "/api/v1").await;
    let pods = core["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "pods"))
        .cloned()
        .expect("pods listed");
    assert_eq!(pods["shortNames"][0], "po");
    assert_eq!(pods["namespaced"], true);
    let (_, group) = get_json(&sim, "/apis/apps").await;
    assert_eq!(group["preferredVersion"]["groupVersion"], "apps/v1");
    let (code, _) = get_json(&sim, "/apis/nothing.example/v1").await;
    assert_eq!(code, 404);
    // Aggregated discovery answers with its own content type.
    let stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = hyper::Request::get("/apis")
        .header("host", "sim")
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let ct = resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(ct.contains("as=APIGroupDiscoveryList"), "{ct}");
}
