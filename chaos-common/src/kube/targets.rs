//! Target resolution as chaoskube does it: a server-side label selector narrows the
//! candidates, then pure `filter_by_*` functions pick the eligible ones.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};

use super::{Connection, api_error};
use crate::error::{ChaosError, Result};

/// What the operator asked to target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// `--service NAME`: pods labelled `app=NAME`.
    Service(String),
    /// `--deployment NAME`: the Deployment's own selector.
    Deployment(String),
    /// `--selector EXPR`: any label selector.
    Selector(String),
    /// Nothing given: a random Deployment of the namespace that `eligible` accepts.
    RandomDeployment,
}

/// The resolved target: the selector to watch and the Deployment that owns the pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub namespace: String,
    pub selector: String,
    pub deployment: Option<Deployment>,
    pub pods: Vec<Pod>,
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

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub fn filter_by_running(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect()
}

pub fn filter_by_ready(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter().filter(is_ready).collect()
}

pub fn filter_by_not_terminating(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter().filter(|p| !is_terminating(p)).collect()
}

/// Whether the Deployment's `matchLabels` all appear in `labels`.
pub fn deployment_selects(deployment: &Deployment, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Picks `items[seed % len]`; deterministic for tests, random enough with a time seed.
pub fn pick<T>(items: &[T], seed: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok().filter(|l| *l > 0)?;
    usize::try_from(seed % len).ok().and_then(|i| items.get(i))
}

fn names<T: kube::ResourceExt>(items: &[T]) -> String {
    let names: BTreeSet<String> = items.iter().map(|i| i.name_any()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// Resolves `spec` in `namespace`. A target that does not exist is bad input (exit 2)
/// whose message lists what exists.
pub async fn resolve(
    conn: &Connection,
    namespace: &str,
    spec: &TargetSpec,
    seed: u64,
    eligible: impl Fn(&Deployment) -> bool,
) -> Result<Resolved> {
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
    let all = deployments
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(e, "list", "deployments", namespace, conn))?
        .items;
    let (selector, deployment) = match spec {
        TargetSpec::Deployment(name) => {
            let found = all
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(name))
                .cloned();
            let Some(d) = found else {
                return Err(ChaosError::bad_input(format!(
                    "--deployment {name}: no such Deployment in namespace {namespace}; Deployments there: {}",
                    names(&all)
                )));
            };
            (deployment_selector(&d), Some(d))
        }
        TargetSpec::RandomDeployment => {
            let candidates: Vec<&Deployment> = all.iter().filter(|d| eligible(d)).collect();
            let Some(d) = pick(&candidates, seed).map(|d| (*d).clone()) else {
                return Err(ChaosError::Refused {
                    rule: "min-ready",
                    message: format!(
                        "no Deployment in namespace {namespace} can lose a pod without going under --min-ready \
                         (Deployments there: {})",
                        names(&all)
                    ),
                });
            };
            (deployment_selector(&d), Some(d))
        }
        TargetSpec::Service(name) => (format!("app={name}"), None),
        TargetSpec::Selector(selector) => (selector.clone(), None),
    };
    let pods = list_pods(conn, namespace, &selector).await?;
    let deployment = deployment.or_else(|| {
        pods.first()
            .and_then(|p| all.iter().find(|d| deployment_selects(d, p)).cloned())
    });
    if pods.is_empty() && deployment.is_none() {
        let everything = list_pods(conn, namespace, "").await?;
        let apps: BTreeSet<String> = everything
            .iter()
            .filter_map(|p| p.labels().get("app").cloned())
            .collect();
        let flag = if matches!(spec, TargetSpec::Service(_)) {
            "--service"
        } else {
            "--selector"
        };
        return Err(ChaosError::bad_input(format!(
            "{flag}: no pod matches '{selector}' in namespace {namespace}; services (app labels) there: {}",
            if apps.is_empty() {
                "none".into()
            } else {
                apps.into_iter().collect::<Vec<_>>().join(", ")
            }
        )));
    }
    Ok(Resolved {
        namespace: namespace.to_owned(),
        selector,
        deployment,
        pods,
    })
}

pub async fn list_pods(conn: &Connection, namespace: &str, selector: &str) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
    let params = if selector.is_empty() {
        ListParams::default()
    } else {
        ListParams::default().labels(selector)
    };
    Ok(pods
        .list(&params)
        .await
        .map_err(|e| api_error(e, "list", "pods", namespace, conn))?
        .items)
}

/// The label selector of a Deployment's pods, as a server-side selector string.
fn deployment_selector(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
