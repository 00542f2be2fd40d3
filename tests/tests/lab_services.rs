//! Service routing in the lab for real: ClusterIPs DNATed in the node namespace across
//! Ready endpoints only, reachable from the host and from pods by name (/etc/hosts),
//! rejected at once when no endpoint is Ready, and updated when endpoints change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use chaos_tests::lab::env::NoRefs;
use chaos_tests::lab::exec;
use chaos_tests::lab::hosts::ServiceName;
use chaos_tests::lab::node::Node;
use chaos_tests::lab::pod::PodShared;
use chaos_tests::lab::proxy::Route;
use chaos_tests::lab::testing::{self, is_ready, is_running, wait_status};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// A stand-in service (its `/health` names the pod that answered) on port 3000; Ready
/// through an httpGet probe on `probe_port`.
fn web_pod(name: &str, probe_port: u16) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "lomash-wood", "uid": format!("uid-{name}"),
                     "labels": {"app": "web"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1001},
            "containers": [{
                "name": "app", "image": "lomash-wood/content-service:1.0.0",
                "readinessProbe": {"httpGet": {"path": "/health", "port": probe_port}, "periodSeconds": 1},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

/// One `GET /health` to `addr`; the pod that answered.
fn get_host(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(pod_of(text.rsplit("\r\n\r\n").next().unwrap_or_default()))
}

fn pod_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["pod"].as_str().unwrap_or_default().to_owned()
}

fn route(ip: Ipv4Addr, endpoints: &[&Arc<PodShared>]) -> Route {
    Route {
        label: "lomash-wood/web:80".into(),
        cluster_ip: ip,
        protocol: "tcp",
        port: 80,
        endpoints: endpoints.iter().map(|p| (p.net.ip, 3000)).collect(),
    }
}

#[test]
fn root_lab_service_spreads_across_ready_endpoints_only() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root (network namespaces, nftables)"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = Node::start(testing::node_config()).unwrap();
    rt.block_on(async {
        let start = |name, port| {
            node.run_pod(testing::pod(web_pod(name, port)).unwrap(), Arc::new(NoRefs))
                .unwrap()
        };
        let (a, b, never) = (
            start("web-a", 3000),
            start("web-b", 3000),
            start("web-c", 3001),
        );
        wait_status(&a, "Ready", WAIT, is_ready).await.unwrap();
        wait_status(&b, "Ready", WAIT, is_ready).await.unwrap();
        wait_status(&never, "running", WAIT, |s| is_running(s, "app"))
            .await
            .unwrap();
        assert!(!is_ready(&never.status()));

        // What the endpoints controller does: Ready pods only.
        let ready: Vec<&Arc<PodShared>> = [&a, &b, &never]
            .into_iter()
            .filter(|p| is_ready(&p.status()))
            .collect();
        let web = node.service_ip("lomash-wood", "web").unwrap();
        let empty = node.service_ip("lomash-wood", "empty").unwrap();
        let names = vec![
            ServiceName {
                namespace: "lomash-wood".into(),
                name: "web".into(),
                ip: web,
            },
            ServiceName {
                namespace: "lomash-wood".into(),
                name: "empty".into(),
                ip: empty,
            },
        ];
        let routes = [route(web, &ready), route(empty, &[])];
        node.set_services(names.clone(), &routes).unwrap();

        let addr = SocketAddr::new(web.into(), 80);
        let tally = tokio::task::spawn_blocking(move || {
            let mut tally: BTreeMap<String, u32> = BTreeMap::new();
            for _ in 0..40 {
                *tally.entry(get_host(addr).unwrap()).or_default() += 1;
            }
            tally
        })
        .await
        .unwrap();
        assert_eq!(
            tally.keys().cloned().collect::<Vec<_>>(),
            vec!["web-a", "web-b"],
            "{tally:?}"
        );
        assert!(tally.values().all(|n| *n >= 5), "not spread: {tally:?}");

        // No Ready endpoint: refused at once, not a timeout.
        let refused = std::net::TcpStream::connect_timeout(
            &SocketAddr::new(empty.into(), 80),
            Duration::from_secs(2),
        );
        let err = refused.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

        // From a pod, by short and full name (its own Service too: hairpin).
        let argv = |url: &str| {
            ["curl", "-sS", "--max-time", "10", url]
                .map(str::to_owned)
                .to_vec()
        };
        for url in [
            "http://web/health",
            "http://web.lomash-wood.svc.cluster.local/health",
        ] {
            let out = exec::run(&a, "app", argv(url), Duration::from_secs(20))
                .await
                .unwrap();
            assert_eq!(out.code, 0, "{url}: {out:?}");
            let pod = pod_of(&out.stdout);
            assert!(pod == "web-a" || pod == "web-b", "{url}: {out:?}");
        }

        // Endpoints change: only web-b is left.
        node.set_services(names, &[route(web, &[&b]), route(empty, &[])])
            .unwrap();
        let hosts = tokio::task::spawn_blocking(move || {
            (0..10).map(|_| get_host(addr).unwrap()).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert!(hosts.iter().all(|h| h == "web-b"), "{hosts:?}");
    });
    rt.block_on(node.shutdown());
}
