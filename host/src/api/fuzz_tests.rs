//! The query API under random input: random paths, parameters, selectors,
//! continue tokens and credentials, through the same auth layer and router
//! `herald run` serves (delegated auth against the simulator's TokenReview and
//! SubjectAccessReview). Every answer is a 2xx or a 4xx with a JSON error; no
//! request panics or is a 5xx.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use kube::api::ApiResource;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::api::auth::Guard;
use crate::api::query_router;
use crate::cache::{Cache, CachedObject, CachedType, IndexFields, Writer};

fn cache() -> Cache {
    let ar = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    };
    let mut w = Writer::new();
    for ns in ["a", "b"] {
        for i in 0..20 {
            let name = format!("cm-{i}");
            let json = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"i": i.to_string()}}});
            let fields = IndexFields {
                labels: vec![("i".into(), i.to_string())],
                ..IndexFields::default()
            };
            let bytes = serde_json::to_vec(&json).expect("json").into();
            w.insert(Arc::new(CachedObject::new(ns, &name, bytes, &fields)));
        }
    }
    let cache = Cache::new();
    cache.insert(CachedType {
        watch: "cm".into(),
        resource: ar,
        namespaced: true,
        stores: vec![w.as_reader()],
    });
    cache
}

/// Pieces random requests are made of: valid, nearly valid and hostile.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_string()),
        Just("b".to_string()),
        Just("core".to_string()),
        Just("v1".to_string()),
        Just("configmaps".to_string()),
        Just("ConfigMap".to_string()),
        Just("cm-1".to_string()),
        Just("pods".to_string()),
        Just("%2F..%2F".to_string()),
        Just("%ff%fe".to_string()),
        Just("i in (1,2".to_string()),
        Just("i!=,=".to_string()),
        Just("metadata.name=cm-1".to_string()),
        "[a-zA-Z0-9%=,!()._ -]{0,24}",
        "\\PC{0,12}",
    ]
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'%' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn request() -> impl Strategy<Value = (String, Option<String>)> {
    // Half well-formed (a watched type, maybe a namespace and a name), half
    // anything.
    let well_formed = (
        prop_oneof![Just("configmaps"), Just("ConfigMap"), Just("secrets")],
        prop::collection::vec(prop_oneof![Just("a".to_string()), piece()], 0..3),
    )
        .prop_map(|(r, rest)| {
            let mut p = vec!["core".to_string(), "v1".to_string(), r.to_string()];
            p.extend(rest);
            p
        });
    let path = prop_oneof![well_formed, prop::collection::vec(piece(), 0..7)];
    let params = prop::collection::vec(
        (
            prop_oneof![
                Just("namespace"),
                Just("labelSelector"),
                Just("fieldSelector"),
                Just("limit"),
                Just("continue"),
                Just("watch"),
            ],
            prop_oneof![piece(), "[0-9]{1,20}", "[0-9a-f]{0,40}"],
        ),
        0..4,
    );
    let token = prop_oneof![
        Just(None),
        Just(Some("reader".to_string())),
        Just(Some("everything".to_string())),
        Just(Some(String::new())),
        "\\PC{0,16}".prop_map(Some),
    ];
    (path, params, token).prop_map(|(path, params, token)| {
        let path: Vec<String> = path.iter().map(|p| url_escape(p)).collect();
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", url_escape(v)))
            .collect();
        let uri = format!("/api/v1/resources/{}?{}", path.join("/"), query.join("&"));
        (uri, token)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_answers_random_requests_with_2xx_or_a_json_4xx() {
    let sim = herald_sim::Simulator::builder().start().await.expect("sim");
    sim.add_token("reader", "reader", &[]);
    sim.allow("reader", &["get", "list"], "", "configmaps", Some("a"));
    sim.add_token("everything", "admin", &["system:masters"]);
    sim.allow("admin", &["*"], "", "*", None);
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let cache = cache();
    let router =
        Guard::new(client, Duration::from_secs(10), cache.clone()).layer(query_router(cache, 10));

    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = tokio::task::block_in_place(|| {
        runner.run(&request(), |(uri, token)| {
            let Ok(mut req) = Request::get(&uri).body(Body::empty()) else {
                return Ok(()); // not a URI at all: no server would see it
            };
            if let Some(t) = &token
                && let Ok(v) = format!("Bearer {t}").parse()
            {
                req.headers_mut().insert("authorization", v);
            }
            let (code, body) = handle.block_on(async {
                let resp = router.clone().oneshot(req).await.expect("infallible");
                let code = resp.status().as_u16();
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                (code, body)
            });
            *seen.lock().unwrap().entry(code).or_default() += 1;
            prop_assert!(
                (200..300).contains(&code) || (400..500).contains(&code),
                "{uri} (token {token:?}) answered {code}: {}",
                String::from_utf8_lossy(&body)
            );
            if code >= 400 {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                prop_assert!(
                    v["error"]["message"].is_string() || code == 404 || code == 405,
                    "{uri} answered {code} without a JSON error: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            Ok(())
        })
    });
    let seen = seen.into_inner().unwrap();
    if let Err(e) = result {
        panic!("{e}\nstatuses seen: {seen:?}");
    }
    // The generator reaches every kind of answer, or the test proves little.
    for code in [200, 400, 401, 403, 404] {
        assert!(seen.contains_key(&code), "no {code} among {seen:?}");
    }
}
