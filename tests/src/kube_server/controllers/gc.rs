//! The garbage collector, for the owners the workload controllers create: when a
//! Deployment, ReplicaSet or StatefulSet is deleted, the objects it controlled go too
//! (background propagation; pods are deleted gracefully). `Orphan` is not honoured.

use std::time::Duration;

use super::{ObjectKey, Reconciler};
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::meta;
use crate::kube_server::registry::{DEPLOYMENTS, PODS, REPLICA_SETS, STATEFUL_SETS};
use crate::kube_server::store::{Change, EventType};

pub struct GarbageCollector;

/// Kinds that control others, and where their dependents live.
const OWNERS: &[(&str, crate::kube_server::registry::GroupResource)] = &[
    ("Deployment", REPLICA_SETS),
    ("ReplicaSet", PODS),
    ("StatefulSet", PODS),
];

fn owner_gr(kind: &str) -> Option<crate::kube_server::registry::GroupResource> {
    match kind {
        "Deployment" => Some(DEPLOYMENTS),
        "ReplicaSet" => Some(REPLICA_SETS),
        "StatefulSet" => Some(STATEFUL_SETS),
        _ => None,
    }
}

impl Reconciler for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn keys(&self, change: &Change, cluster: &Cluster) -> Vec<ObjectKey> {
        if change.event_type != EventType::Deleted {
            return Vec::new();
        }
        let kind = change
            .object
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("");
        let Some((_, dependents)) = OWNERS.iter().find(|(k, _)| *k == kind) else {
            return Vec::new();
        };
        let uid = meta::uid(&change.object);
        cluster
            .store()
            .list(*dependents, Some(change.namespace()))
            .into_iter()
            .filter(|d| meta::controller_of(d).is_some_and(|(_, _, u)| u == uid))
            .map(|d| ObjectKey::of(*dependents, d))
            .collect()
    }

    fn resync(&self, _: &Cluster) -> Vec<ObjectKey> {
        Vec::new()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let object = cluster
            .store()
            .get(key.gr, &key.namespace, &key.name)
            .cloned()?;
        let (kind, name, uid) = meta::controller_of(&object)?;
        let owner_alive = owner_gr(kind).is_some_and(|gr| {
            cluster
                .store()
                .get(gr, &key.namespace, name)
                .is_some_and(|o| meta::uid(o) == uid)
        });
        if owner_alive || meta::is_terminating(&object) {
            return None;
        }
        let rt = cluster.resource(key.gr).ok().copied()?;
        let options = DeleteOptions {
            uid: Some(meta::uid(&object).to_owned()),
            ..Default::default()
        };
        let _ = cluster.delete(&rt, &key.namespace, &key.name, &options);
        None
    }
}
