//! The ReplicaSet controller: keeps `spec.replicas` live (not terminating) pods, creating
//! missing ones from the template and deleting extra ones (not-Ready and newest first),
//! and writes the status (`replicas`, `readyReplicas`, `availableReplicas`, ...).

use std::time::Duration;

use serde_json::{Value, json};

use super::template;
use super::{ObjectKey, Reconciler};
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::meta;
use crate::kube_server::registry::{PODS, REPLICA_SETS};
use crate::kube_server::store::Change;

pub struct ReplicaSets;

/// The live pods `owner` controls.
pub fn owned_pods(cluster: &Cluster, owner: &Value) -> Vec<Value> {
    cluster
        .store()
        .list(PODS, Some(meta::namespace(owner)))
        .into_iter()
        .filter(|p| template::owned_by(p, owner))
        .cloned()
        .collect()
}

/// The owner key of a pod change, if its controller is of `kind`.
pub fn owner_key(
    change: &Change,
    kind: &str,
    gr: crate::kube_server::registry::GroupResource,
) -> Option<ObjectKey> {
    let pod = &change.object;
    let (k, name, _) = meta::controller_of(pod)?;
    (k == kind).then(|| ObjectKey::new(gr, meta::namespace(pod), name))
}

impl Reconciler for ReplicaSets {
    fn name(&self) -> &'static str {
        "replicaset"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        if change.gr == REPLICA_SETS {
            return vec![ObjectKey::of(REPLICA_SETS, &change.object)];
        }
        if change.gr == PODS {
            return owner_key(change, "ReplicaSet", REPLICA_SETS)
                .into_iter()
                .collect();
        }
        Vec::new()
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(REPLICA_SETS, None)
            .into_iter()
            .map(|r| ObjectKey::of(REPLICA_SETS, r))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let rs = cluster
            .store()
            .get(REPLICA_SETS, &key.namespace, &key.name)
            .cloned()?;
        if meta::is_terminating(&rs) {
            return None;
        }
        let pods = owned_pods(cluster, &rs);
        let live: Vec<&Value> = pods.iter().filter(|p| !meta::is_terminating(p)).collect();
        let want = usize::try_from(meta::int_at(&rs, "/spec/replicas").unwrap_or(1)).unwrap_or(0);
        if live.len() < want {
            create_pods(cluster, &rs, want - live.len());
        } else if live.len() > want {
            delete_extra(cluster, &live, live.len() - want);
        }
        write_status(cluster, &rs);
        None
    }
}

fn create_pods(cluster: &Cluster, rs: &Value, count: usize) {
    let Ok(rt) = cluster.resource(PODS).copied() else {
        return;
    };
    let template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    for _ in 0..count {
        let pod = template::pod(&template, rs, None, &[]);
        if let Err(e) = cluster.create(&rt, meta::namespace(rs), &pod) {
            tracing::warn!("replicaset {}: cannot create a pod: {e}", meta::name(rs));
            return;
        }
    }
}

/// Deletes `count` pods, not-Ready first, then the newest.
fn delete_extra(cluster: &Cluster, live: &[&Value], count: usize) {
    let Ok(rt) = cluster.resource(PODS).copied() else {
        return;
    };
    let mut victims: Vec<&Value> = live.to_vec();
    victims.sort_by_key(|p| {
        (
            meta::is_ready(p),
            std::cmp::Reverse(
                p.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            ),
        )
    });
    for pod in victims.into_iter().take(count) {
        let _ = cluster.delete(
            &rt,
            meta::namespace(pod),
            meta::name(pod),
            &DeleteOptions::default(),
        );
    }
}

fn write_status(cluster: &Cluster, rs: &Value) {
    let pods = owned_pods(cluster, rs);
    let live: Vec<&Value> = pods.iter().filter(|p| !meta::is_terminating(p)).collect();
    let ready = live.iter().filter(|p| meta::is_ready(p)).count();
    let generation = meta::int_at(rs, "/metadata/generation").unwrap_or(1);
    let status = json!({"replicas": live.len(), "fullyLabeledReplicas": live.len(),
        "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": generation,
        "terminatingReplicas": pods.len() - live.len()});
    let _ = cluster.modify(REPLICA_SETS, meta::namespace(rs), meta::name(rs), |r| {
        r["status"] = status;
    });
}
