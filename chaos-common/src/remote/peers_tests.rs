use k8s_openapi::api::core::v1::{ServicePort as K8sPort, ServiceSpec};
use k8s_openapi::api::discovery::v1::Endpoint;

use super::*;

fn service(cluster_ip: &str, ports: &[(i32, Option<IntOrString>)]) -> Service {
    Service {
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.into()),
            ports: Some(
                ports
                    .iter()
                    .map(|(port, target)| K8sPort {
                        port: *port,
                        target_port: target.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn cluster_ip_ports_and_endpoints() -> Result<()> {
    let svc = service(
        "203.0.113.10",
        &[(3000, Some(IntOrString::String("http".into())))],
    );
    let mut peer = from_service("auth-service", &svc);
    assert_eq!(peer.cluster_ip, "203.0.113.10".parse().ok());
    assert_eq!(peer.port(None)?.target_port, "http");
    let slice = EndpointSlice {
        address_type: "IPv4".into(),
        endpoints: vec![
            Endpoint {
                addresses: vec!["198.51.100.3".into()],
                ..Default::default()
            },
            Endpoint {
                addresses: vec!["198.51.100.4".into(), "not-an-ip".into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    peer.endpoints = endpoint_addresses([&slice]);
    let all: Vec<String> = peer.addresses().iter().map(ToString::to_string).collect();
    assert_eq!(all, ["198.51.100.3", "198.51.100.4", "203.0.113.10"]);
    Ok(())
}

#[test]
fn headless_services_have_no_cluster_ip_and_ports_are_chosen() {
    let svc = service(
        "None",
        &[(6379, None), (26379, Some(IntOrString::Int(26380)))],
    );
    let peer = from_service("redis", &svc);
    assert_eq!(peer.cluster_ip, None);
    assert_eq!(peer.ports[0].target_port, "6379");
    assert!(
        peer.port(None)
            .is_err_and(|e| e.to_string().contains("6379, 26379"))
    );
    assert_eq!(
        peer.port(Some(26379)).ok().map(|p| p.target_port.as_str()),
        Some("26380")
    );
    assert!(peer.port(Some(1)).is_err());
}
