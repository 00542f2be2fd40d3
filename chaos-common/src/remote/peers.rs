//! A Service the fault is about (net-partition's `-t`, latency-injector's `-n NS --target`):
//! its ClusterIP, ports, and the addresses of its EndpointSlices (every endpoint, ready or
//! not: a pod that becomes ready during the run is a target too). Reads `get services`
//! and `list endpointslices` (label `kubernetes.io/service-name`); [`watch`] keeps the
//! addresses current while a run lasts.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use tokio::sync::watch as channel;
use tracing::warn;

use super::api;
use crate::error::{ChaosError, Result};
use crate::kube::Connection;
use crate::kube::retry::ThrottleCount;

/// The label EndpointSlices carry with their Service's name.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One port of the Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    /// A number, or the name of a container port.
    pub target_port: String,
    pub protocol: String,
}

/// The Service, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub service: String,
    /// None for a headless Service.
    pub cluster_ip: Option<IpAddr>,
    pub ports: Vec<ServicePort>,
    /// Endpoint addresses of its EndpointSlices.
    pub endpoints: BTreeSet<IpAddr>,
}

impl Peer {
    /// The ClusterIP and every endpoint address.
    pub fn addresses(&self) -> BTreeSet<IpAddr> {
        self.cluster_ip
            .into_iter()
            .chain(self.endpoints.iter().copied())
            .collect()
    }

    /// The port a client uses: `asked` (it must be one of the Service's), else the only one.
    pub fn port(&self, asked: Option<u16>) -> Result<&ServicePort> {
        let list = || {
            self.ports
                .iter()
                .map(|p| p.port.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (asked, self.ports.as_slice()) {
            (Some(a), ports) => ports.iter().find(|p| p.port == a).ok_or_else(|| {
                ChaosError::bad_input(format!(
                    "service/{} has no port {a} (ports: {})",
                    self.service,
                    list()
                ))
            }),
            (None, [one]) => Ok(one),
            (None, _) => Err(ChaosError::bad_input(format!(
                "service/{} has ports {}: say which one with SERVICE:PORT",
                self.service,
                list()
            ))),
        }
    }
}

/// The Service object as a [`Peer`] without endpoints.
pub fn from_service(name: &str, svc: &Service) -> Peer {
    let spec = svc.spec.as_ref();
    let cluster_ip = spec
        .and_then(|s| s.cluster_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let ports = spec
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(ServicePort {
                name: p.name.clone(),
                port: u16::try_from(p.port).ok()?,
                target_port: match &p.target_port {
                    Some(IntOrString::Int(n)) => n.to_string(),
                    Some(IntOrString::String(s)) => s.clone(),
                    None => p.port.to_string(),
                },
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect();
    Peer {
        service: name.to_owned(),
        cluster_ip,
        ports,
        endpoints: BTreeSet::new(),
    }
}

/// Every endpoint address of `slices`.
pub fn endpoint_addresses<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeSet<IpAddr> {
    slices
        .into_iter()
        .flat_map(|s| s.endpoints.iter())
        .flat_map(|e| e.addresses.iter())
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The Service `name` in `namespace`, with its endpoints now.
pub async fn fetch(
    conn: &Connection,
    namespace: &str,
    name: &str,
    flag: &str,
    count: &ThrottleCount,
) -> Result<Peer> {
    let svc: Service = api::get(conn, namespace, name, "services", count)
        .await?
        .ok_or_else(|| {
            ChaosError::bad_input(format!(
                "{flag} {name}: no such Service in namespace {namespace}"
            ))
        })?;
    let mut peer = from_service(name, &svc);
    let selector = format!("{SERVICE_NAME_LABEL}={name}");
    let slices: Vec<EndpointSlice> = api::list(
        conn,
        namespace,
        &selector,
        "endpointslices.discovery.k8s.io",
        count,
    )
    .await?;
    peer.endpoints = endpoint_addresses(&slices);
    Ok(peer)
}

/// Watches the Service's EndpointSlices and publishes its endpoint addresses whenever
/// they change, until the receiver side is gone. Errors are logged and the watcher
/// relists (backing off), so a replaced endpoint is seen once the API answers again.
pub async fn watch(
    conn: Connection,
    namespace: String,
    service: String,
    out: channel::Sender<BTreeSet<IpAddr>>,
) {
    let api: Api<EndpointSlice> = Api::namespaced(conn.client.clone(), &namespace);
    let config = watcher::Config::default().labels(&format!("{SERVICE_NAME_LABEL}={service}"));
    let mut slices = std::collections::BTreeMap::<String, EndpointSlice>::new();
    let mut fresh = std::collections::BTreeMap::<String, EndpointSlice>::new();
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let publish = match event {
            Ok(watcher::Event::Init) => {
                fresh.clear();
                false
            }
            Ok(watcher::Event::InitApply(s)) => {
                fresh.insert(s.metadata.name.clone().unwrap_or_default(), s);
                false
            }
            Ok(watcher::Event::InitDone) => {
                slices = std::mem::take(&mut fresh);
                true
            }
            Ok(watcher::Event::Apply(s)) => {
                slices.insert(s.metadata.name.clone().unwrap_or_default(), s);
                true
            }
            Ok(watcher::Event::Delete(s)) => {
                slices.remove(&s.metadata.name.clone().unwrap_or_default());
                true
            }
            Err(e) => {
                warn!("endpointslices of service/{service} in {namespace}: {e} (retrying)");
                false
            }
        };
        if publish {
            let now = endpoint_addresses(slices.values());
            out.send_if_modified(|current| {
                let changed = *current != now;
                *current = now.clone();
                changed
            });
            if out.is_closed() {
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod tests;
