//! `herald run`, the main job, as the real binary against the API-server
//! simulator over loopback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

struct Herald {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Herald {
    fn start(config: &std::path::Path) -> Herald {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["run", "--config"])
            .arg(config)
            .env("HERALD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start herald run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(e) => panic!("herald wrote a line that is not JSON ({e}): {line}"),
                }
            }
        });
        Herald { child, lines }
    }

    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a notification within 20s")
    }
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_watches_filters_prunes_and_notifies_and_serves_queries() {
    let sim = herald_sim::Simulator::builder()
        .bookmark_interval(Duration::from_millis(200))
        .start()
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let plugins = herald_e2e::wasm("prune");
    let api_port = port();
    let config = dir.path().join("herald.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
cluster: test-cluster
kubeconfig: {kubeconfig}
watch:
  - version: v1
    kind: Pod
    namespaces: [shop]
    plugins: [web-only, prune-noise]
plugins:
  dir: {dir}
  config:
    web-only: {{ labels: {{ app: web }} }}
    prune-noise: {{ remove: [/metadata/managedFields, /status] }}
  policy:
    web-only: {{ file: label_filter.wasm, onError: drop }}
    prune-noise: {{ file: prune.wasm }}
api:
  listen: 127.0.0.1:{api_port}
"#,
            kubeconfig = kubeconfig.display(),
            dir = plugins.parent().expect("dir").display(),
        ),
    )
    .expect("write config");
    let herald = Herald::start(&config);
    // Ready when the query API answers with the Pod type.
    let client = reqwest_like::Client;
    let url = format!("http://127.0.0.1:{api_port}/api/v1/resources/core/v1/pods?namespace=shop");
    let mut ready = false;
    for _ in 0..200 {
        if let Ok((200, _)) = client.get(&url).await {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "query API never answered");

    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "web-1", &[("app", "web")]),
    )
    .await
    .expect("create");
    sim.create(
        "pods",
        herald_sim::fixtures::pod("shop", "db-1", &[("app", "db")]),
    )
    .await
    .expect("create");
    sim.create(
        "pods",
        herald_sim::fixtures::pod("other", "web-9", &[("app", "web")]),
    )
    .await
    .expect("create");
    let mut web = sim.get("pods", "shop", "web-1").await.expect("get");
    web["metadata"]["labels"]["version"] = json!("2");
    sim.update("pods", web).await.expect("update");
    sim.delete("pods", "shop", "web-1").await.expect("delete");

    let added = herald.next();
    assert_eq!(added["change"], "added");
    assert_eq!(added["cluster"], "test-cluster");
    assert_eq!(added["name"], "web-1");
    assert_eq!(added["namespace"], "shop");
    assert!(added["object"].get("status").is_none(), "pruned: {added}");
    assert!(added["object"]["metadata"].get("managedFields").is_none());
    let modified = herald.next();
    assert_eq!(
        (modified["change"].as_str(), modified["name"].as_str()),
        (Some("modified"), Some("web-1"))
    );
    assert_eq!(modified["object"]["metadata"]["labels"]["version"], "2");
    let deleted = herald.next();
    assert_eq!(
        (deleted["change"].as_str(), deleted["name"].as_str()),
        (Some("deleted"), Some("web-1"))
    );
    // db-1 was dropped by the label filter and web-9 is in another namespace.
    assert!(
        herald
            .lines
            .recv_timeout(Duration::from_millis(500))
            .is_err()
    );

    let (code, body) = client.get(&url).await.expect("query");
    assert_eq!(code, 200);
    let names: Vec<String> = body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["db-1".to_string()], "{body}");
    drop(herald);
}

#[test]
fn run_rejects_a_bad_config_naming_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        "cluster: x\nwatch:\n  - kind: Pod\n    nmespaces: [a]\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("watch[0]"), "{err}");
    assert!(err.contains("unknown field `nmespaces`"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

/// A tiny HTTP/1.1 GET over a real socket (hyper client).
mod reqwest_like {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use serde_json::Value;

    pub struct Client;

    impl Client {
        pub async fn get(&self, url: &str) -> Result<(u16, Value), String> {
            let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
            let addr = format!(
                "{}:{}",
                uri.host().unwrap_or("127.0.0.1"),
                uri.port_u16().unwrap_or(80)
            );
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let req = hyper::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            let code = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((code, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        }
    }
}
