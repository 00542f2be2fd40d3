//! The resolve step (`Fault::resolve`, after the common safety rules): connects, refuses
//! while the freeze switch is on (ConfigMap `chaos-freeze`), finds
//! the workload (Deployment or StatefulSet) and its pods, and keeps a snapshot for the
//! plan, the baseline and the `--min-ready` rule. Touches nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use chaos_common::kube::client::connect;
use chaos_common::kube::freeze;
use chaos_common::kube::resolve::{self, Resolved};
use chaos_common::kube::retry::ThrottleCount;
use chaos_common::kube::targets::{Workload, is_available, is_ready, is_terminating};
use serde::Serialize;

use crate::settings::Settings;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSummary {
    pub name: String,
    pub uid: String,
    pub phase: String,
    pub ready: bool,
    pub terminating: bool,
    /// Running, Ready and not terminating: what `--min-ready` counts.
    pub available: bool,
}

/// What the cluster looked like when the run was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub server: String,
    pub kubeconfig: String,
    pub selector: String,
    pub workload: Option<Workload>,
    /// The workload's replicas, or the available pods when no workload owns them.
    pub desired: usize,
    pub pods: Vec<PodSummary>,
}

impl Snapshot {
    /// Pods that count towards `--min-ready`.
    pub fn available(&self) -> usize {
        self.pods.iter().filter(|p| p.available).count()
    }

    /// `deployment/NAME`, `statefulset/NAME`, or the selector.
    pub fn what(&self) -> String {
        match &self.workload {
            Some(w) => w.reference(),
            None => format!("the pods matching '{}'", self.selector),
        }
    }
}

fn summary(resolved: Resolved, server: String, kubeconfig: String) -> Snapshot {
    let pods: Vec<PodSummary> = resolved
        .pods
        .iter()
        .map(|p| PodSummary {
            name: p.metadata.name.clone().unwrap_or_default(),
            uid: p.metadata.uid.clone().unwrap_or_default(),
            phase: p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default(),
            ready: is_ready(p),
            terminating: is_terminating(p),
            available: is_available(p),
        })
        .collect();
    let available = pods.iter().filter(|p| p.available).count();
    let desired = resolved
        .workload
        .as_ref()
        .and_then(|w| w.replicas)
        .and_then(|r| usize::try_from(r).ok())
        .unwrap_or(available);
    Snapshot {
        server,
        kubeconfig,
        selector: resolved.selector,
        workload: resolved.workload,
        desired,
        pods,
    }
}

pub async fn resolve(
    settings: &Settings,
    throttled: &ThrottleCount,
) -> chaos_common::Result<Snapshot> {
    let conn = connect(&settings.client).await?;
    if let Some(frozen) = freeze::check(&conn, &settings.freeze_namespaces).await? {
        return Err(frozen.refusal());
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let min_ready = i64::from(settings.min_ready);
    let eligible = |w: &Workload| i64::from(w.ready_replicas) > min_ready;
    let resolved = resolve::resolve(
        &conn,
        &settings.namespace,
        &settings.target,
        u64::from(seed),
        eligible,
        throttled,
    )
    .await?;
    Ok(summary(resolved, conn.server.clone(), conn.source.clone()))
}
