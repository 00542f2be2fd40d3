//! From Services and pods to what the node routes (pure): the endpoints of a Service are
//! the pods of its namespace matching its selector that have an IP; the Ready ones (and
//! not terminating) receive traffic, as kube-proxy does with EndpointSlice conditions.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::hosts::ServiceName;
use super::proxy::Route;

/// One endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub pod: String,
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub terminating: bool,
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn matches(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if selector.is_empty() || pod.metadata.namespace != service.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The endpoints of `service` among `pods` (sorted by pod name).
pub fn endpoints(service: &Service, pods: &[Pod]) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = pods
        .iter()
        .filter(|p| matches(service, p))
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
            let terminating = p.metadata.deletion_timestamp.is_some();
            Some(Endpoint {
                pod: p.metadata.name.clone().unwrap_or_default(),
                ip,
                ready: is_ready(p) && !terminating,
                terminating,
            })
        })
        .collect();
    out.sort_by(|a, b| a.pod.cmp(&b.pod));
    out
}

/// A Service's target port on `pod` (a number, or a container port's name).
pub fn target_port(target: Option<&IntOrString>, port: i32, pod: Option<&Pod>) -> Option<u16> {
    match target {
        None => u16::try_from(port).ok(),
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        Some(IntOrString::String(name)) => pod?
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// The names and routes for every Service with a ClusterIP.
pub fn routes(services: &[Service], pods: &[Pod]) -> (Vec<ServiceName>, Vec<Route>) {
    let mut names = Vec::new();
    let mut routes = Vec::new();
    for svc in services {
        let Some(ip) = svc
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_ref())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let namespace = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        names.push(ServiceName {
            namespace: namespace.clone(),
            name: name.clone(),
            ip,
        });
        let ready: Vec<(Endpoint, Option<&Pod>)> = endpoints(svc, pods)
            .into_iter()
            .filter(|e| e.ready)
            .map(|e| {
                let pod = pods.iter().find(|p| {
                    p.metadata.name.as_deref() == Some(&e.pod)
                        && p.metadata.namespace.as_deref() == Some(&namespace)
                });
                (e, pod)
            })
            .collect();
        for port in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let protocol = match port.protocol.as_deref() {
                Some("UDP") => "udp",
                _ => "tcp",
            };
            let Ok(service_port) = u16::try_from(port.port) else {
                continue;
            };
            routes.push(Route {
                label: format!("{namespace}/{name}:{}", port.port),
                cluster_ip: ip,
                protocol,
                port: service_port,
                endpoints: ready
                    .iter()
                    .filter_map(|(e, pod)| {
                        Some((
                            e.ip,
                            target_port(port.target_port.as_ref(), port.port, *pod)?,
                        ))
                    })
                    .collect(),
            });
        }
    }
    names.sort();
    (names, routes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, app: &str, ip: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "lomash-wood", "labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 3000}]}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn service(target: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "lomash-wood"},
            "spec": {"clusterIP": "203.0.113.5", "selector": {"app": "web"},
                     "ports": [{"port": 80, "targetPort": target}]}
        }))
        .unwrap()
    }

    #[test]
    fn only_ready_matching_pods_receive_traffic() {
        let pods = vec![
            pod("a", "web", "198.51.100.2", true),
            pod("b", "web", "198.51.100.3", false),
            pod("c", "other", "198.51.100.4", true),
        ];
        let (names, routes) = routes(&[service(json!(3000))], &pods);
        assert_eq!(names[0].name, "web");
        assert_eq!(
            routes[0].endpoints,
            vec![("198.51.100.2".parse().unwrap(), 3000)]
        );
        assert_eq!(endpoints(&service(json!(3000)), &pods).len(), 2);
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let pods = vec![pod("a", "web", "198.51.100.2", true)];
        let (_, routes) = routes(&[service(json!("http"))], &pods);
        assert_eq!(routes[0].endpoints[0].1, 3000);
    }
}
