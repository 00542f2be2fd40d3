//! Target selection as chaoskube does it: a server-side label selector narrows the
//! candidates (see [`super::resolve`]), then pure `filter_by_*` functions pick the
//! eligible pods. One definition of a pod that serves, [`is_available`], is what
//! victims are chosen from and what `--min-ready` counts.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// What the operator asked to target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// `--service NAME`: pods labelled `app=NAME`.
    Service(String),
    /// `--deployment NAME`: the Deployment's own selector.
    Deployment(String),
    /// `--statefulset NAME`: the StatefulSet's own selector.
    StatefulSet(String),
    /// `--selector EXPR`: any label selector (validated by [`super::selector::validate`]).
    Selector(String),
    /// Nothing given: a random Deployment of the namespace that `eligible` accepts.
    RandomDeployment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    /// The Kind (`Deployment`), as in an object reference.
    pub fn kind(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }

    /// The `kubectl` resource name (`deployment`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

/// The controller that owns the target's pods and recreates them.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub name: String,
    pub replicas: Option<i32>,
    pub ready_replicas: i32,
    pub selector: LabelSelector,
}

impl Workload {
    pub fn from_deployment(d: &Deployment) -> Workload {
        let spec = d.spec.as_ref();
        Workload {
            kind: WorkloadKind::Deployment,
            name: d.metadata.name.clone().unwrap_or_default(),
            replicas: spec.and_then(|s| s.replicas),
            ready_replicas: d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            selector: spec.map(|s| s.selector.clone()).unwrap_or_default(),
        }
    }

    pub fn from_stateful_set(s: &StatefulSet) -> Workload {
        let spec = s.spec.as_ref();
        Workload {
            kind: WorkloadKind::StatefulSet,
            name: s.metadata.name.clone().unwrap_or_default(),
            replicas: spec.and_then(|s| s.replicas),
            ready_replicas: s
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            selector: spec.map(|s| s.selector.clone()).unwrap_or_default(),
        }
    }

    /// `deployment/NAME`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.resource(), self.name)
    }
}

/// `matchLabels` and `matchExpressions` as a selector string (`app=a,tier in (x,y)`).
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            _ => format!("!{}", expr.key),
        });
    }
    parts.join(",")
}

/// Whether a LabelSelector selects `labels` (an empty selector selects nothing here: a
/// workload always has one).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exprs = selector.match_expressions.as_deref().unwrap_or_default();
    let match_labels = selector.match_labels.as_ref();
    if match_labels.is_none_or(BTreeMap::is_empty) && exprs.is_empty() {
        return false;
    }
    let labels_ok = match_labels.is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    labels_ok
        && exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => !value.is_some_and(|v| values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// Whether `workload` owns `pod`: a StatefulSet by the pod's controller reference, a
/// Deployment by its selector (its pods belong to its ReplicaSets).
pub fn workload_owns(workload: &Workload, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    match workload.kind {
        WorkloadKind::StatefulSet => pod.metadata.owner_references.iter().flatten().any(|r| {
            r.controller == Some(true) && r.kind == "StatefulSet" && r.name == workload.name
        }),
        WorkloadKind::Deployment => selector_matches(&workload.selector, &labels),
    }
}

pub fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// A pod that serves: Running, Ready and not terminating. It is what a kill may pick and
/// what `--min-ready` counts, everywhere.
pub fn is_available(pod: &Pod) -> bool {
    is_running(pod) && is_ready(pod) && !is_terminating(pod)
}

pub fn filter_by_running(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter().filter(is_running).collect()
}

pub fn filter_by_ready(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter().filter(is_ready).collect()
}

pub fn filter_by_not_terminating(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter().filter(|p| !is_terminating(p)).collect()
}

/// The pipeline of filters, which keeps exactly the pods [`is_available`] accepts.
pub fn filter_by_available(pods: Vec<Pod>) -> Vec<Pod> {
    filter_by_not_terminating(filter_by_ready(filter_by_running(pods)))
}

/// Picks `items[seed % len]`; deterministic for tests, random enough with a time seed.
pub fn pick<T>(items: &[T], seed: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok().filter(|l| *l > 0)?;
    usize::try_from(seed % len).ok().and_then(|i| items.get(i))
}

#[cfg(test)]
mod tests;
