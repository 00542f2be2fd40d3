//! The endpoints controller and kube-proxy of the lab in one: whenever a Service or a
//! pod changes, the Endpoints and EndpointSlices of every Service are brought up to
//! date (Ready, serving and terminating conditions), and the node's Service rules and
//! pods' /etc/hosts follow (only when what is routed changed).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{Value, json};

use super::NODE_NAME;
use super::resources::{ENDPOINT_SLICES, ENDPOINTS, SERVICES};
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::controllers::{ObjectKey, Reconciler};
use crate::kube_server::meta;
use crate::kube_server::registry::{GroupResource, PODS};
use crate::kube_server::store::Change;
use crate::lab::hosts::ServiceName;
use crate::lab::node::Node;
use crate::lab::proxy::Route;
use crate::lab::services::{self, Endpoint};

pub struct Endpoints {
    pub node: Arc<Node>,
    applied: Mutex<Option<(Vec<ServiceName>, Vec<Route>)>>,
}

impl Endpoints {
    pub fn new(node: Arc<Node>) -> Endpoints {
        Endpoints {
            node,
            applied: Mutex::new(None),
        }
    }
}

const SLICE_LABEL: &str = "kubernetes.io/service-name";

fn all_key() -> ObjectKey {
    ObjectKey::new(SERVICES, "", "")
}

fn slice(svc: &Service, eps: &[Endpoint], pods: &[Pod]) -> Value {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let endpoints: Vec<Value> = eps
        .iter()
        .map(|e| {
            json!({"addresses": [e.ip.to_string()],
                "conditions": {"ready": e.ready, "serving": !e.terminating || e.ready, "terminating": e.terminating},
                "nodeName": NODE_NAME,
                "targetRef": {"kind": "Pod", "namespace": svc.metadata.namespace, "name": e.pod}})
        })
        .collect();
    let first = eps.first().and_then(|e| {
        pods.iter()
            .find(|p| p.metadata.name.as_deref() == Some(e.pod.as_str()))
    });
    let ports: Vec<Value> = svc
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            let target = services::target_port(p.target_port.as_ref(), p.port, first)
                .map_or(p.port, i32::from);
            json!({"name": p.name.clone().unwrap_or_default(), "port": target,
                   "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-lab"), "namespace": svc.metadata.namespace,
            "labels": {SLICE_LABEL: name, "endpointslice.kubernetes.io/managed-by": "lab.chaos-tools"}},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports})
}

fn legacy(svc: &Service, eps: &[Endpoint], slice: &Value) -> Value {
    let address = |e: &Endpoint| {
        json!({"ip": e.ip.to_string(), "nodeName": NODE_NAME,
            "targetRef": {"kind": "Pod", "namespace": svc.metadata.namespace, "name": e.pod}})
    };
    let ready: Vec<Value> = eps.iter().filter(|e| e.ready).map(address).collect();
    let not_ready: Vec<Value> = eps.iter().filter(|e| !e.ready).map(address).collect();
    let mut subset = json!({"ports": slice["ports"]});
    if !ready.is_empty() {
        subset["addresses"] = Value::Array(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = Value::Array(not_ready);
    }
    let subsets = if eps.is_empty() {
        json!([])
    } else {
        json!([subset])
    };
    json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": svc.metadata.name, "namespace": svc.metadata.namespace},
        "subsets": subsets})
}

/// Creates or replaces `object` unless the stored one already has the same `field`s.
fn upsert(cluster: &Cluster, gr: GroupResource, object: &Value, fields: &[&str]) {
    let (ns, name) = (
        meta::namespace(object).to_owned(),
        meta::name(object).to_owned(),
    );
    let current = cluster.store().get(gr, &ns, &name).cloned();
    match current {
        Some(c) if fields.iter().all(|f| c.get(*f) == object.get(*f)) => {}
        Some(_) => {
            let _ = cluster.modify(gr, &ns, &name, |o| {
                for f in fields {
                    o[*f] = object[*f].clone();
                }
            });
        }
        None => {
            if let Ok(rt) = cluster.resource(gr) {
                let rt = *rt;
                let _ = cluster.create(&rt, &ns, object);
            }
        }
    }
}

impl Reconciler for Endpoints {
    fn name(&self) -> &'static str {
        "lab-endpoints"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        if change.gr == SERVICES || change.gr == PODS {
            vec![all_key()]
        } else {
            Vec::new()
        }
    }

    fn resync(&self, _: &Cluster) -> Vec<ObjectKey> {
        vec![all_key()]
    }

    fn reconcile(&self, cluster: &Cluster, _: &ObjectKey) -> Option<Duration> {
        let (svcs, pods): (Vec<Service>, Vec<Pod>) = {
            let s = cluster.store();
            let typed = |gr| -> Vec<Value> { s.list(gr, None).into_iter().cloned().collect() };
            (
                typed(SERVICES)
                    .into_iter()
                    .filter_map(|v| serde_json::from_value(v).ok())
                    .collect(),
                typed(PODS)
                    .into_iter()
                    .filter_map(|v| serde_json::from_value(v).ok())
                    .collect(),
            )
        };
        for svc in &svcs {
            if svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_none()
            {
                continue;
            }
            let eps = services::endpoints(svc, &pods);
            let slice = slice(svc, &eps, &pods);
            upsert(
                cluster,
                ENDPOINT_SLICES,
                &slice,
                &["endpoints", "ports", "addressType"],
            );
            upsert(cluster, ENDPOINTS, &legacy(svc, &eps, &slice), &["subsets"]);
        }
        self.remove_orphans(cluster, &svcs);
        let routed = services::routes(&svcs, &pods);
        let mut applied = self
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if applied.as_ref() != Some(&routed) {
            match self.node.set_services(routed.0.clone(), &routed.1) {
                Ok(()) => *applied = Some(routed),
                Err(e) => {
                    tracing::warn!("cannot route the Services: {e:#}");
                    return Some(Duration::from_secs(1));
                }
            }
        }
        None
    }
}

impl Endpoints {
    /// Endpoints and slices whose Service is gone.
    fn remove_orphans(&self, cluster: &Cluster, svcs: &[Service]) {
        let exists = |ns: &str, name: &str| {
            svcs.iter().any(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata.name.as_deref() == Some(name)
            })
        };
        let orphans: Vec<(GroupResource, String, String)> = {
            let s = cluster.store();
            let mut out = Vec::new();
            for o in s.list(ENDPOINT_SLICES, None) {
                let owner = meta::label(o, SLICE_LABEL).unwrap_or_default();
                if meta::label(o, "endpointslice.kubernetes.io/managed-by")
                    == Some("lab.chaos-tools")
                    && !exists(meta::namespace(o), owner)
                {
                    out.push((
                        ENDPOINT_SLICES,
                        meta::namespace(o).to_owned(),
                        meta::name(o).to_owned(),
                    ));
                }
            }
            for o in s.list(ENDPOINTS, None) {
                if !exists(meta::namespace(o), meta::name(o)) {
                    out.push((
                        ENDPOINTS,
                        meta::namespace(o).to_owned(),
                        meta::name(o).to_owned(),
                    ));
                }
            }
            out
        };
        for (gr, ns, name) in orphans {
            if let Ok(rt) = cluster.resource(gr) {
                let rt = *rt;
                let _ = cluster.delete(&rt, &ns, &name, &DeleteOptions::default());
            }
        }
    }
}
