//! `metrics.k8s.io` for the lab: every second the containers' cgroups are read (CPU
//! time and working set, see `usage.rs`), and every pod's PodMetrics object (and the
//! node's NodeMetrics) is rewritten from the last window, which is what `kubectl top`
//! lists and what the HPA controller reads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::NODE_NAME;
use super::resources::{NODE_METRICS, POD_METRICS};
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::meta;
use crate::kube_server::registry::GroupResource;
use crate::lab::node::Node;
use crate::lab::usage::{Sampler, Usage, WINDOW};

pub type SharedSampler = Arc<Mutex<Sampler>>;

fn lock(s: &SharedSampler) -> std::sync::MutexGuard<'_, Sampler> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `123m` / `45Mi`-style quantities (`n` and `Ki` keep the precision).
pub fn cpu_quantity(millis: f64) -> String {
    format!("{}n", (millis * 1e6).round() as u64)
}

pub fn memory_quantity(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.cpu_millis), "memory": memory_quantity(u.memory_bytes)})
}

/// The metrics objects are rewritten every this many readings (metrics-server publishes
/// every 15 s; every write is a change every watch sees).
const PUBLISH_EVERY: u32 = 5;

/// Reads the node's containers every `period` and publishes the metrics objects.
pub async fn run(cluster: Arc<Cluster>, node: Arc<Node>, sampler: SharedSampler, period: Duration) {
    let mut tick = tokio::time::interval(period);
    let mut n: u32 = 0;
    loop {
        tick.tick().await;
        n = n.wrapping_add(1);
        let running: Vec<(String, String, crate::lab::cgroups::Cgroup)> = node
            .pods()
            .iter()
            .flat_map(|p| {
                let state = p.lock();
                state
                    .containers
                    .iter()
                    .filter(|(_, s)| s.pid.is_some())
                    .filter_map(|(name, s)| Some((p.uid.clone(), name.clone(), s.cgroup.clone()?)))
                    .collect::<Vec<_>>()
            })
            .collect();
        lock(&sampler).sample(Instant::now(), &running);
        if n % PUBLISH_EVERY == 2 {
            publish(&cluster, &node, &sampler);
        }
    }
}

fn publish(cluster: &Cluster, node: &Node, sampler: &SharedSampler) {
    let now = crate::kube_server::meta::now();
    let window = format!("{}s", WINDOW.as_secs());
    let mut keep: Vec<(String, String)> = Vec::new();
    let (mut node_cpu, mut node_mem) = (0.0, 0u64);
    for pod in node.pods() {
        let containers = lock(sampler).pod(&pod.uid);
        if containers.is_empty() {
            continue;
        }
        node_cpu += containers.iter().map(|(_, u)| u.cpu_millis).sum::<f64>();
        node_mem += containers.iter().map(|(_, u)| u.memory_bytes).sum::<u64>();
        let object = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": pod.name, "namespace": pod.namespace,
                "labels": pod.pod.metadata.labels.clone().unwrap_or_default()},
            "timestamp": now, "window": window,
            "containers": containers.iter().map(|(c, u)| json!({"name": c, "usage": usage_json(u)})).collect::<Vec<_>>()});
        put(cluster, POD_METRICS, &object);
        keep.push((pod.namespace.clone(), pod.name.clone()));
    }
    let node_object = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
        "metadata": {"name": NODE_NAME}, "timestamp": now, "window": window,
        "usage": usage_json(&Usage { cpu_millis: node_cpu, memory_bytes: node_mem })});
    put(cluster, NODE_METRICS, &node_object);
    let stale: Vec<(String, String)> = cluster
        .store()
        .list(POD_METRICS, None)
        .into_iter()
        .map(|o| (meta::namespace(o).to_owned(), meta::name(o).to_owned()))
        .filter(|k| !keep.contains(k))
        .collect();
    if let Ok(rt) = cluster.resource(POD_METRICS) {
        let rt = *rt;
        for (ns, name) in stale {
            let _ = cluster.delete(&rt, &ns, &name, &DeleteOptions::default());
        }
    }
}

fn put(cluster: &Cluster, gr: GroupResource, object: &Value) {
    let (ns, name) = (
        meta::namespace(object).to_owned(),
        meta::name(object).to_owned(),
    );
    let exists = cluster.store().get(gr, &ns, &name).is_some();
    if exists {
        let _ = cluster.modify(gr, &ns, &name, |o| {
            for f in ["timestamp", "window", "containers", "usage"] {
                if let Some(v) = object.get(f) {
                    o[f] = v.clone();
                }
            }
        });
    } else if let Ok(rt) = cluster.resource(gr) {
        let rt = *rt;
        let _ = cluster.create(&rt, &ns, object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_kubectl_top_reads() {
        assert_eq!(cpu_quantity(12.5), "12500000n");
        assert_eq!(memory_quantity(5 * 1024 * 1024), "5120Ki");
    }
}
