//! The scheduler: a pending pod gets a node after its `schedule-delay-ms` annotation,
//! round robin over the Node objects that are Ready and schedulable (the simulated
//! kubelet's nodes, and any node the lab's kubelet registers).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::pods::{due, lock, node_of};
use super::template::{self, SCHEDULE_DELAY};
use super::{ObjectKey, Reconciler};
use crate::kube_server::api::Cluster;
use crate::kube_server::meta;
use crate::kube_server::registry::{NODES, PODS};
use crate::kube_server::store::Change;

#[derive(Default)]
pub struct Scheduler {
    seen: Mutex<HashMap<String, Instant>>,
    next: AtomicU32,
}

/// Ready, schedulable nodes, by name.
fn nodes(cluster: &Cluster) -> Vec<String> {
    cluster
        .store()
        .list(NODES, None)
        .into_iter()
        .filter(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true))
        .filter(|n| meta::is_ready(n))
        .map(|n| meta::name(n).to_owned())
        .collect()
}

fn unscheduled(pod: &Value) -> bool {
    node_of(pod).is_empty()
        && !meta::is_terminating(pod)
        && pod.pointer("/spec/schedulerName").and_then(Value::as_str) == Some("default-scheduler")
}

impl Reconciler for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn keys(&self, change: &Change, cluster: &Cluster) -> Vec<ObjectKey> {
        match change.gr {
            PODS if unscheduled(&change.object) => vec![ObjectKey::of(PODS, &change.object)],
            // A node that appears or becomes Ready can take the pending pods.
            NODES => self.resync(cluster),
            _ => Vec::new(),
        }
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(PODS, None)
            .into_iter()
            .filter(|p| unscheduled(p))
            .map(|p| ObjectKey::of(PODS, p))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let pod = cluster
            .store()
            .get(PODS, &key.namespace, &key.name)
            .cloned()?;
        let nodes = nodes(cluster);
        if !unscheduled(&pod) || nodes.is_empty() {
            return None;
        }
        let since = *lock(&self.seen)
            .entry(meta::uid(&pod).to_owned())
            .or_insert_with(Instant::now);
        let delay = Duration::from_millis(template::millis(&pod, SCHEDULE_DELAY, 50));
        if let Some(wait) = due(since, delay) {
            return Some(wait);
        }
        lock(&self.seen).remove(meta::uid(&pod));
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % nodes.len();
        let node = nodes[i].clone();
        let uid = meta::uid(&pod).to_owned();
        let _ = cluster.modify(PODS, &key.namespace, &key.name, |p| {
            if meta::uid(p) == uid && node_of(p).is_empty() {
                p["spec"]["nodeName"] = node.into();
                meta::set_condition(p, "PodScheduled", "True", None);
            }
        });
        None
    }
}
