//! The StatefulSet controller: pods named `<set>-<ordinal>`, created in order and (with
//! the default `OrderedReady` policy) one at a time, each only once the previous ones are
//! Running and Ready; a deleted pod is recreated under the same name once the old one is
//! gone; scale-down removes the highest ordinal first; a template change rolls the pods
//! from the highest ordinal down. The status is what `kubectl rollout status` reads.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::replicaset::{owned_pods, owner_key};
use super::template;
use super::{ObjectKey, Reconciler};
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::meta;
use crate::kube_server::registry::{PODS, STATEFUL_SETS};
use crate::kube_server::store::Change;

pub struct StatefulSets;

const REVISION_LABEL: &str = "controller-revision-hash";

/// `<name>-<hash of the template>`.
pub fn revision(set: &Value) -> String {
    let template = set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    format!("{}-{}", meta::name(set), template::hash(&template))
}

/// The pod of `set` with `ordinal`, at `revision`.
pub fn pod_for(set: &Value, ordinal: i64, revision: &str) -> Value {
    let name = format!("{}-{ordinal}", meta::name(set));
    let index = ordinal.to_string();
    let template = set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let mut pod = template::pod(
        &template,
        set,
        Some(&name),
        &[
            (REVISION_LABEL, revision),
            ("statefulset.kubernetes.io/pod-name", &name),
            ("apps.kubernetes.io/pod-index", &index),
        ],
    );
    pod["spec"]["hostname"] = name.clone().into();
    if let Some(service) = set.pointer("/spec/serviceName").and_then(Value::as_str) {
        pod["spec"]["subdomain"] = service.into();
    }
    pod
}

fn ordinal(set: &Value, pod: &Value) -> Option<i64> {
    meta::name(pod)
        .strip_prefix(meta::name(set))?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn healthy(pod: &Value) -> bool {
    !meta::is_terminating(pod)
        && pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && meta::is_ready(pod)
}

impl Reconciler for StatefulSets {
    fn name(&self) -> &'static str {
        "statefulset"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        match change.gr {
            STATEFUL_SETS => vec![ObjectKey::of(STATEFUL_SETS, &change.object)],
            PODS => owner_key(change, "StatefulSet", STATEFUL_SETS)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(STATEFUL_SETS, None)
            .into_iter()
            .map(|s| ObjectKey::of(STATEFUL_SETS, s))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let set = cluster
            .store()
            .get(STATEFUL_SETS, &key.namespace, &key.name)
            .cloned()?;
        if meta::is_terminating(&set) {
            return None;
        }
        let pods: BTreeMap<i64, Value> = owned_pods(cluster, &set)
            .into_iter()
            .filter_map(|p| ordinal(&set, &p).map(|o| (o, p)))
            .collect();
        step(cluster, &set, &pods);
        write_status(cluster, &set);
        None
    }
}

/// One step towards the desired pods; with OrderedReady it stops at the first pod that
/// is missing, terminating or not yet Ready.
fn step(cluster: &Cluster, set: &Value, pods: &BTreeMap<i64, Value>) {
    let Ok(rt) = cluster.resource(PODS).copied() else {
        return;
    };
    let replicas = meta::int_at(set, "/spec/replicas").unwrap_or(1);
    let ordered = set
        .pointer("/spec/podManagementPolicy")
        .and_then(Value::as_str)
        != Some("Parallel");
    let update = revision(set);
    for ordinal in 0..replicas {
        match pods.get(&ordinal) {
            None => {
                let pod = pod_for(set, ordinal, &update);
                if let Err(e) = cluster.create(&rt, meta::namespace(set), &pod) {
                    tracing::debug!("statefulset {}: pod {ordinal}: {e}", meta::name(set));
                }
                if ordered {
                    return;
                }
            }
            Some(pod) if ordered && !healthy(pod) => return,
            Some(_) => {}
        }
    }
    let delete = |pod: &Value| {
        let options = DeleteOptions {
            uid: Some(meta::uid(pod).to_owned()),
            ..Default::default()
        };
        let _ = cluster.delete(&rt, meta::namespace(pod), meta::name(pod), &options);
    };
    // Scale down, highest ordinal first, one at a time.
    if let Some((_, pod)) = pods.range(replicas..).next_back() {
        if !meta::is_terminating(pod) {
            delete(pod);
        }
        return;
    }
    // Roll the pods of an older revision, highest first, once all are healthy.
    if pods.values().all(healthy)
        && let Some(pod) = pods
            .values()
            .rev()
            .find(|p| meta::label(p, REVISION_LABEL) != Some(update.as_str()))
    {
        delete(pod);
    }
}

fn write_status(cluster: &Cluster, set: &Value) {
    let pods: Vec<Value> = owned_pods(cluster, set)
        .into_iter()
        .filter(|p| !meta::is_terminating(p))
        .collect();
    let update = revision(set);
    let replicas = meta::int_at(set, "/spec/replicas").unwrap_or(1);
    let at = |rev: &str| {
        pods.iter()
            .filter(|p| meta::label(p, REVISION_LABEL) == Some(rev))
            .count()
    };
    let updated = at(&update);
    let current = set
        .pointer("/status/currentRevision")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty() && i64::try_from(updated).unwrap_or(0) < replicas)
        .map_or_else(|| update.clone(), str::to_owned);
    let ready = pods.iter().filter(|p| meta::is_ready(p)).count();
    let generation = meta::int_at(set, "/metadata/generation").unwrap_or(1);
    let status = json!({"observedGeneration": generation, "replicas": pods.len(),
        "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": at(&current),
        "updatedReplicas": updated, "currentRevision": current, "updateRevision": update,
        "collisionCount": 0});
    let _ = cluster.modify(STATEFUL_SETS, meta::namespace(set), meta::name(set), |s| {
        s["status"] = status;
    });
}
