//! Target resolution at prepare time, before anything is touched: connects, finds the
//! Deployment and its pods, so that `--dry-run` prints the exact plan, a missing target
//! is bad input (exit 2) and `--min-ready` can refuse (exit 3) with the counts.

use std::time::{SystemTime, UNIX_EPOCH};

use chaos_common::kube::client::connect;
use chaos_common::kube::targets::{self, Resolved, is_ready, is_terminating};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use crate::kill::Settings;

#[derive(Debug, Clone, PartialEq)]
pub struct PodSummary {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub terminating: bool,
}

/// What the cluster looked like when the run was prepared.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub server: String,
    pub kubeconfig: String,
    pub selector: String,
    pub deployment: Option<String>,
    /// The Deployment's replicas, or the Ready pods when no Deployment owns them.
    pub desired: usize,
    pub pods: Vec<PodSummary>,
}

impl Snapshot {
    /// Pods that count as Ready: Ready and not terminating.
    pub fn ready(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| p.ready && !p.terminating)
            .count()
    }

    pub fn to_json(&self) -> Value {
        let pods: Vec<Value> = self
            .pods
            .iter()
            .map(|p| json!({"name": p.name, "phase": p.phase, "ready": p.ready, "terminating": p.terminating}))
            .collect();
        json!({"server": self.server, "kubeconfig": self.kubeconfig, "selector": self.selector,
               "deployment": self.deployment, "desiredReplicas": self.desired, "readyPods": self.ready(), "pods": pods})
    }
}

fn ready_replicas(d: &Deployment) -> u32 {
    d.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(0)
}

fn summary(resolved: &Resolved, server: String, kubeconfig: String) -> Snapshot {
    let pods: Vec<PodSummary> = resolved
        .pods
        .iter()
        .map(|p| PodSummary {
            name: p.metadata.name.clone().unwrap_or_default(),
            phase: p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default(),
            ready: is_ready(p),
            terminating: is_terminating(p),
        })
        .collect();
    let replicas = resolved
        .deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas);
    let ready_now = pods.iter().filter(|p| p.ready && !p.terminating).count();
    Snapshot {
        server,
        kubeconfig,
        selector: resolved.selector.clone(),
        deployment: resolved
            .deployment
            .as_ref()
            .and_then(|d| d.metadata.name.clone()),
        desired: replicas
            .and_then(|r| usize::try_from(r).ok())
            .unwrap_or(ready_now),
        pods,
    }
}

/// Connects, finds the Deployment (or the pods of the selector) and takes the snapshot
/// the plan and the min-ready rule read: `Fault::resolve`, after the safety rules.
pub async fn resolve(settings: &Settings) -> chaos_common::Result<Snapshot> {
    let conn = connect(&settings.client).await?;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let min_ready = settings.min_ready;
    let eligible = |d: &Deployment| ready_replicas(d) > min_ready;
    let resolved = targets::resolve(
        &conn,
        &settings.namespace,
        &settings.target,
        u64::from(seed),
        eligible,
    )
    .await?;
    Ok(summary(&resolved, conn.server.clone(), conn.source.clone()))
}
