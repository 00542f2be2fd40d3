//! The whole platform of tests/lab/manifests on one lab node, without the API server:
//! every Deployment's and the StatefulSet's pods started from their templates, Services
//! routed to Ready pods, and the backend answering through the api-gateway's ClusterIP
//! from the host, as `BASE_URL` will. Prints the time until every pod was Ready.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_tests::lab::env::Refs;
use chaos_tests::lab::node::Node;
use chaos_tests::lab::pod::PodShared;
use chaos_tests::lab::services;
use chaos_tests::lab::testing;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use serde::Deserialize;
use serde_json::{Value, json};

struct ConfigMaps(BTreeMap<String, BTreeMap<String, String>>);

impl Refs for ConfigMaps {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.0.get(name).cloned()
    }
    fn secret(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

fn documents() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            docs.push(Value::deserialize(doc).unwrap());
        }
    }
    docs
}

/// Pod `name-i` from a workload's template.
fn pod_from(template: &Value, name: &str, i: u32) -> Pod {
    let t: PodTemplateSpec = serde_json::from_value(template.clone()).unwrap();
    let mut meta = t.metadata.unwrap_or_default();
    meta.name = Some(format!("{name}-{i}"));
    meta.namespace = Some("lomash-wood".into());
    meta.uid = Some(format!("uid-{name}-{i}"));
    Pod {
        metadata: meta,
        spec: t.spec,
        status: None,
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn root_lab_platform_serves_the_backend_through_the_gateway_service() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root (the lab)"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = Node::start(testing::node_config()).unwrap();
    let docs = documents();
    let maps: BTreeMap<String, BTreeMap<String, String>> = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_owned(),
                serde_json::from_value(d["data"].clone()).unwrap(),
            )
        })
        .collect();
    let refs = Arc::new(ConfigMaps(maps));
    let mut services: Vec<Service> = Vec::new();
    for d in docs.iter().filter(|d| d["kind"] == "Service") {
        let mut s: Service = serde_json::from_value(d.clone()).unwrap();
        let ip = node
            .service_ip("lomash-wood", s.metadata.name.as_deref().unwrap())
            .unwrap();
        s.spec.as_mut().unwrap().cluster_ip = Some(ip.to_string());
        services.push(s);
    }
    let gateway: SocketAddr = (
        services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some("api-gateway"))
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .cluster_ip
            .as_ref()
            .unwrap()
            .parse::<std::net::Ipv4Addr>()
            .unwrap(),
        3000,
    )
        .into();
    rt.block_on(async {
        let t0 = Instant::now();
        let mut pods: Vec<Arc<PodShared>> = Vec::new();
        for d in docs
            .iter()
            .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
        {
            let name = d["metadata"]["name"].as_str().unwrap();
            for i in 0..d["spec"]["replicas"].as_u64().unwrap() as u32 {
                pods.push(
                    node.run_pod(pod_from(&d["spec"]["template"], name, i), refs.clone())
                        .unwrap(),
                );
            }
        }
        let (names, _) = services::routes(&services, &[]);
        node.set_services(names.clone(), &[]).unwrap();
        // The endpoints controller's job, by polling: route Ready pods until all are.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let views: Vec<Pod> = pods
                .iter()
                .map(|p| Pod {
                    status: Some(p.status()),
                    ..p.pod.clone()
                })
                .collect();
            let (_, routes) = services::routes(&services, &views);
            node.set_services(names.clone(), &routes).unwrap();
            if views.iter().all(services::is_ready) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not all Ready: {:?}",
                views
                    .iter()
                    .filter(|p| !services::is_ready(p))
                    .map(|p| (p.metadata.name.clone(), p.status.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "lab platform: {} pods Ready in {:.1} s",
            pods.len(),
            t0.elapsed().as_secs_f64()
        );

        let (status, body) =
            tokio::task::spawn_blocking(move || http(gateway, "GET", "/v1/products", "", ""))
                .await
                .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], 12, "{body}");
        let login =
            json!({"email": "ops@lomash-wood.test", "password": "Password123!"}).to_string();
        let (status, body) = tokio::task::spawn_blocking(move || {
            http(
                gateway,
                "POST",
                "/v1/auth/login",
                "Content-Type: application/json\r\n",
                &login,
            )
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let auth = format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
            body["accessToken"].as_str().unwrap()
        );
        let (status, body) = tokio::task::spawn_blocking(move || {
            http(
                gateway,
                "POST",
                "/v1/payments/create-intent",
                &auth,
                r#"{"amount":4990}"#,
            )
        })
        .await
        .unwrap();
        assert_eq!(status, 201, "{body}");
        // The product pods reach redis (a real redis-server as uid 999) by name.
        let product = pods
            .iter()
            .find(|p| p.name.starts_with("product-service"))
            .unwrap();
        let health = chaos_tests::lab::exec::run(
            product,
            "app",
            vec![
                "curl".into(),
                "-s".into(),
                "http://localhost:3000/health".into(),
            ],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(health.stdout.contains("\"redis\":\"ok\""), "{health:?}");
    });
    rt.block_on(node.shutdown());
}
