//! The Deployment controller: one ReplicaSet per pod template (named
//! `<deployment>-<template hash>`), a rolling update between them within
//! `maxSurge`/`maxUnavailable` (or Recreate), and the status `kubectl rollout status`
//! reads (observedGeneration, updated/ready/available replicas, conditions).

use std::time::Duration;

use serde_json::{Value, json};

use super::replicaset::owner_key;
use super::template::{self, scaled};
use super::{ObjectKey, Reconciler};
use crate::kube_server::api::Cluster;
use crate::kube_server::meta;
use crate::kube_server::registry::{DEPLOYMENTS, REPLICA_SETS};
use crate::kube_server::store::Change;

pub struct Deployments;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn int(v: &Value, p: &str) -> i64 {
    meta::int_at(v, p).unwrap_or(0)
}

/// The ReplicaSet a Deployment's current template asks for.
pub fn replica_set_for(deployment: &Value, replicas: i64, revision: i64) -> Value {
    let mut template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let hash = template::hash(&template);
    template["metadata"]["labels"]["pod-template-hash"] = hash.clone().into();
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    selector["matchLabels"]["pod-template-hash"] = hash.clone().into();
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{}-{hash}", meta::name(deployment)),
            "namespace": meta::namespace(deployment),
            "labels": template["metadata"]["labels"],
            "annotations": {REVISION: revision.to_string()},
            "ownerReferences": [meta::controller_ref(deployment)]},
        "spec": {"replicas": replicas, "selector": selector, "template": template}})
}

fn owned_sets(cluster: &Cluster, deployment: &Value) -> Vec<Value> {
    cluster
        .store()
        .list(REPLICA_SETS, Some(meta::namespace(deployment)))
        .into_iter()
        .filter(|r| template::owned_by(r, deployment))
        .cloned()
        .collect()
}

fn revision_of(rs: &Value) -> i64 {
    meta::annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn scale(cluster: &Cluster, rs: &Value, replicas: i64) {
    if int(rs, "/spec/replicas") != replicas {
        let _ = cluster.modify(REPLICA_SETS, meta::namespace(rs), meta::name(rs), |r| {
            r["spec"]["replicas"] = replicas.into();
        });
    }
}

impl Reconciler for Deployments {
    fn name(&self) -> &'static str {
        "deployment"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        match change.gr {
            DEPLOYMENTS => vec![ObjectKey::of(DEPLOYMENTS, &change.object)],
            REPLICA_SETS => owner_key(change, "Deployment", DEPLOYMENTS)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(DEPLOYMENTS, None)
            .into_iter()
            .map(|d| ObjectKey::of(DEPLOYMENTS, d))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let deployment = cluster
            .store()
            .get(DEPLOYMENTS, &key.namespace, &key.name)
            .cloned()?;
        if meta::is_terminating(&deployment) {
            return None;
        }
        let sets = owned_sets(cluster, &deployment);
        let wanted = replica_set_for(&deployment, 0, 0);
        let new = match sets.iter().find(|r| meta::name(r) == meta::name(&wanted)) {
            Some(rs) => rs.clone(),
            None => create_new(cluster, &deployment, &sets)?,
        };
        let old: Vec<&Value> = sets
            .iter()
            .filter(|r| meta::name(r) != meta::name(&new))
            .collect();
        roll(&deployment, &new, &old, cluster);
        write_status(cluster, &deployment, meta::name(&new));
        None
    }
}

fn create_new(cluster: &Cluster, deployment: &Value, sets: &[Value]) -> Option<Value> {
    let revision = sets.iter().map(revision_of).max().unwrap_or(0) + 1;
    let any_old = sets.iter().any(|r| int(r, "/spec/replicas") > 0);
    let start = if any_old {
        0
    } else {
        int(deployment, "/spec/replicas")
    };
    let rs = replica_set_for(deployment, start, revision);
    let rt = cluster.resource(REPLICA_SETS).ok().copied()?;
    let created = cluster.create(&rt, meta::namespace(deployment), &rs).ok()?;
    let _ = cluster.modify(
        DEPLOYMENTS,
        meta::namespace(deployment),
        meta::name(deployment),
        |d| {
            d["metadata"]["annotations"][REVISION] = revision.to_string().into();
        },
    );
    Some(created)
}

/// One step of the rollout towards `new`.
fn roll(deployment: &Value, new: &Value, old: &[&Value], cluster: &Cluster) {
    let replicas = int(deployment, "/spec/replicas");
    let old_live: Vec<&&Value> = old
        .iter()
        .filter(|r| int(r, "/spec/replicas") > 0)
        .collect();
    if old_live.is_empty() {
        scale(cluster, new, replicas);
        return;
    }
    let strategy = deployment
        .pointer("/spec/strategy/type")
        .and_then(Value::as_str);
    if strategy == Some("Recreate") {
        for rs in &old_live {
            scale(cluster, rs, 0);
        }
        return;
    }
    let rolling = deployment.pointer("/spec/strategy/rollingUpdate");
    let surge = scaled(rolling.and_then(|r| r.get("maxSurge")), replicas, true);
    let mut unavailable = scaled(
        rolling.and_then(|r| r.get("maxUnavailable")),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let total: i64 =
        old.iter().map(|r| int(r, "/spec/replicas")).sum::<i64>() + int(new, "/spec/replicas");
    let grow = (replicas + surge - total).max(0);
    scale(
        cluster,
        new,
        replicas.min(int(new, "/spec/replicas") + grow),
    );
    let available: i64 = old
        .iter()
        .map(|r| int(r, "/status/availableReplicas"))
        .sum::<i64>()
        + int(new, "/status/availableReplicas");
    let new_unavailable = int(new, "/spec/replicas") - int(new, "/status/availableReplicas");
    let mut budget = (available - (replicas - unavailable) - new_unavailable.max(0)).max(0);
    let mut oldest_first: Vec<&&Value> = old_live;
    oldest_first.sort_by_key(|r| revision_of(r));
    for rs in oldest_first {
        let spec = int(rs, "/spec/replicas");
        let unhealthy = (spec - int(rs, "/status/availableReplicas")).max(0);
        let cut = (unhealthy + budget).min(spec);
        budget = (budget - (cut - unhealthy).max(0)).max(0);
        scale(cluster, rs, spec - cut);
    }
}

fn write_status(cluster: &Cluster, deployment: &Value, new_name: &str) {
    let sets = owned_sets(cluster, deployment);
    let sum = |p: &str| sets.iter().map(|r| int(r, p)).sum::<i64>();
    let replicas = int(deployment, "/spec/replicas");
    let new = sets.iter().find(|r| meta::name(r) == new_name);
    let updated = new.map_or(0, |r| int(r, "/status/replicas"));
    let available = sum("/status/availableReplicas");
    let total = sum("/status/replicas");
    let rolling = deployment.pointer("/spec/strategy/rollingUpdate");
    let max_unavailable = scaled(
        rolling.and_then(|r| r.get("maxUnavailable")),
        replicas,
        false,
    );
    let complete = updated == replicas && total == replicas && available >= replicas;
    let (avail_status, avail_reason) = if available >= replicas - max_unavailable {
        ("True", "MinimumReplicasAvailable")
    } else {
        ("False", "MinimumReplicasUnavailable")
    };
    let (progress_reason, progress_message) = if complete {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
        )
    };
    let generation = int(deployment, "/metadata/generation").max(1);
    let _ = cluster.modify(
        DEPLOYMENTS,
        meta::namespace(deployment),
        meta::name(deployment),
        |d| {
            let mut status = json!({"observedGeneration": generation, "replicas": total,
            "updatedReplicas": updated, "readyReplicas": sum("/status/readyReplicas"),
            "availableReplicas": available, "unavailableReplicas": (replicas - available).max(0),
            "conditions": d.pointer("/status/conditions").cloned().unwrap_or_else(|| json!([]))});
            if let Some(terminating) = Some(sum("/status/terminatingReplicas")).filter(|t| *t > 0) {
                status["terminatingReplicas"] = terminating.into();
            }
            d["status"] = status;
            meta::set_condition(d, "Available", avail_status, Some(avail_reason));
            meta::set_condition(d, "Progressing", "True", Some(progress_reason));
            let avail_message = if avail_status == "True" {
                "Deployment has minimum availability."
            } else {
                "Deployment does not have minimum availability."
            };
            if let Some(c) = d
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            {
                for c in c.iter_mut() {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("lastProbeTime");
                    }
                    if c["type"] == "Progressing" {
                        c["message"] = progress_message.clone().into();
                    } else if c["type"] == "Available" {
                        c["message"] = avail_message.into();
                    }
                }
            }
        },
    );
}
