//! The disruption controller: a PodDisruptionBudget's status from the pods it selects
//! (`currentHealthy`, `desiredHealthy`, `expectedPods` from the owners' scale,
//! `disruptionsAllowed`), honouring `disruptedPods` that the eviction subresource records
//! until the controller sees those pods go.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::template::scaled;
use super::{ObjectKey, Reconciler};
use crate::kube_server::api::Cluster;
use crate::kube_server::meta;
use crate::kube_server::registry::{PDBS, PODS, REPLICA_SETS, STATEFUL_SETS};
use crate::kube_server::select;
use crate::kube_server::store::{Change, Store};

pub struct Disruption;

fn pdb_keys(store: &Store, namespace: &str) -> Vec<ObjectKey> {
    store
        .list(PDBS, Some(namespace))
        .into_iter()
        .map(|p| ObjectKey::of(PDBS, p))
        .collect()
}

/// The pods a PDB selects (not terminating).
pub fn selected_pods(store: &Store, pdb: &Value) -> Vec<Value> {
    let selector = pdb
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(Value::Null);
    store
        .list(PODS, Some(meta::namespace(pdb)))
        .into_iter()
        .filter(|p| !meta::is_terminating(p) && select::label_selector_matches(&selector, p))
        .cloned()
        .collect()
}

/// The scale of the controllers owning `pods` (what a healthy budget expects).
fn expected(store: &Store, pods: &[Value]) -> i64 {
    let owners: BTreeSet<(String, String)> = pods
        .iter()
        .filter_map(|p| meta::controller_of(p).map(|(k, n, _)| (k.to_owned(), n.to_owned())))
        .collect();
    if owners.is_empty() {
        return i64::try_from(pods.len()).unwrap_or(0);
    }
    let namespace = pods.first().map(meta::namespace).unwrap_or("");
    owners
        .iter()
        .map(|(kind, name)| {
            let gr = if kind == "StatefulSet" {
                STATEFUL_SETS
            } else {
                REPLICA_SETS
            };
            store
                .get(gr, namespace, name)
                .and_then(|o| meta::int_at(o, "/spec/replicas"))
                .unwrap_or(0)
        })
        .sum()
}

impl Reconciler for Disruption {
    fn name(&self) -> &'static str {
        "disruption"
    }

    fn keys(&self, change: &Change, cluster: &Cluster) -> Vec<ObjectKey> {
        match change.gr {
            PDBS => vec![ObjectKey::of(PDBS, &change.object)],
            PODS => pdb_keys(&cluster.store(), change.namespace()),
            _ => Vec::new(),
        }
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(PDBS, None)
            .into_iter()
            .map(|p| ObjectKey::of(PDBS, p))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let status = {
            let store = cluster.store();
            let pdb = store.get(PDBS, &key.namespace, &key.name)?.clone();
            status_of(&store, &pdb)
        };
        let _ = cluster.modify(PDBS, &key.namespace, &key.name, |p| {
            let conditions = p.pointer("/status/conditions").cloned();
            p["status"] = status;
            if let Some(c) = conditions {
                p["status"]["conditions"] = c;
            }
            let allowed = p["status"]["disruptionsAllowed"].as_i64().unwrap_or(0) > 0;
            let (s, reason) = if allowed {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            meta::set_condition(p, "DisruptionAllowed", s, Some(reason));
        });
        None
    }
}

fn status_of(store: &Store, pdb: &Value) -> Value {
    let pods = selected_pods(store, pdb);
    let names: BTreeSet<&str> = pods.iter().map(meta::name).collect();
    // Evicted pods stay "disrupted" until the controller sees them terminating or gone.
    let disrupted: Map<String, Value> = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(name, _)| names.contains(name.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let healthy = pods
        .iter()
        .filter(|p| meta::is_ready(p) && !disrupted.contains_key(meta::name(p)))
        .count();
    let healthy = i64::try_from(healthy).unwrap_or(0);
    let expected = expected(store, &pods);
    let spec = pdb.get("spec").cloned().unwrap_or(Value::Null);
    let desired = match (spec.get("minAvailable"), spec.get("maxUnavailable")) {
        (Some(min), _) => scaled(Some(min), expected, true),
        (None, Some(max)) => expected - scaled(Some(max), expected, true),
        (None, None) => expected,
    };
    json!({"observedGeneration": meta::int_at(pdb, "/metadata/generation").unwrap_or(1),
        "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
        "disruptionsAllowed": (healthy - desired).max(0), "disruptedPods": disrupted})
}
