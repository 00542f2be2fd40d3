//! Resolving a [`TargetSpec`] through the API: the label selector to watch, the
//! workload (Deployment or StatefulSet) that owns the pods, and the pods now. Reads
//! only `list` Deployments and StatefulSets and `list` pods (what `docs/rbac.yaml`
//! grants); a throttled read is retried.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use super::Connection;
use super::retry::{ThrottleCount, classify, retry};
use super::targets::{TargetSpec, Workload, pick, selector_string, workload_owns};
use crate::error::{ChaosError, Result};

/// How long reads keep retrying while the API server throttles them.
const THROTTLE_BUDGET: Duration = Duration::from_secs(60);

/// The resolved target.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub namespace: String,
    pub selector: String,
    pub workload: Option<Workload>,
    pub pods: Vec<Pod>,
}

async fn list<K>(
    conn: &Connection,
    namespace: &str,
    resource: &str,
    selector: &str,
    count: &ThrottleCount,
) -> Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(conn.client.clone(), namespace);
    let params = if selector.is_empty() {
        ListParams::default()
    } else {
        ListParams::default().labels(selector)
    };
    let what = format!("list {resource} in namespace {namespace}");
    retry(&what, THROTTLE_BUDGET, count, || async {
        api.list(&params)
            .await
            .map(|l| l.items)
            .map_err(|e| classify(e, "list", resource, namespace, conn))
    })
    .await
}

fn names<T: kube::ResourceExt>(items: &[T]) -> String {
    let names: BTreeSet<String> = items.iter().map(|i| i.name_any()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.into_iter().collect::<Vec<_>>().join(", ")
    }
}

fn missing(flag: &str, name: &str, kind: &str, namespace: &str, existing: String) -> ChaosError {
    ChaosError::bad_input(format!(
        "{flag} {name}: no such {kind} in namespace {namespace}; {kind}s there: {existing}"
    ))
}

/// When a namespace shows nothing at all: an error saying it does not exist (a list in a
/// missing namespace is simply empty), or, when the API will not tell (no `get` on it),
/// a hint for the "none" in the message.
async fn empty_namespace(
    conn: &Connection,
    namespace: &str,
) -> std::result::Result<&'static str, ChaosError> {
    let api: Api<Namespace> = Api::all(conn.client.clone());
    match api.get_opt(namespace).await {
        Ok(None) => Err(ChaosError::bad_input(format!(
            "namespace {namespace} does not exist: check -n/--namespace, {} or the kubeconfig \
             context's namespace (kubectl get namespaces lists them)",
            super::namespace::ENV
        ))),
        Ok(Some(_)) => Ok(""),
        Err(_) => Ok(" (or the namespace does not exist)"),
    }
}

/// `none` for an empty listing, with the namespace checked.
async fn listed<T: kube::ResourceExt>(
    conn: &Connection,
    namespace: &str,
    items: &[T],
) -> std::result::Result<String, ChaosError> {
    if items.is_empty() {
        Ok(format!("none{}", empty_namespace(conn, namespace).await?))
    } else {
        Ok(names(items))
    }
}

/// Resolves `spec` in `namespace`. A target that does not exist is bad input (exit 2)
/// whose message lists what exists; no Deployment that `eligible` accepts is a refusal.
pub async fn resolve(
    conn: &Connection,
    namespace: &str,
    spec: &TargetSpec,
    seed: u64,
    eligible: impl Fn(&Workload) -> bool,
    count: &ThrottleCount,
) -> Result<Resolved> {
    let deployments = || list::<Deployment>(conn, namespace, "deployments", "", count);
    let stateful_sets = || list::<StatefulSet>(conn, namespace, "statefulsets", "", count);
    let (selector, chosen) = match spec {
        TargetSpec::Deployment(name) => {
            let all = deployments().await?;
            let found = all
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(name.as_str()));
            let Some(w) = found.map(Workload::from_deployment) else {
                let existing = listed(conn, namespace, &all).await?;
                return Err(missing(
                    "--deployment",
                    name,
                    "Deployment",
                    namespace,
                    existing,
                ));
            };
            (selector_string(&w.selector), Some(w))
        }
        TargetSpec::StatefulSet(name) => {
            let all = stateful_sets().await?;
            let found = all
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            let Some(w) = found.map(Workload::from_stateful_set) else {
                let existing = listed(conn, namespace, &all).await?;
                return Err(missing(
                    "--statefulset",
                    name,
                    "StatefulSet",
                    namespace,
                    existing,
                ));
            };
            (selector_string(&w.selector), Some(w))
        }
        TargetSpec::RandomDeployment => {
            let all = deployments().await?;
            let candidates: Vec<Workload> = all
                .iter()
                .map(Workload::from_deployment)
                .filter(|w| eligible(w))
                .collect();
            let Some(w) = pick(&candidates, seed).cloned() else {
                let existing = listed(conn, namespace, &all).await?;
                return Err(ChaosError::Refused {
                    rule: "min-ready",
                    message: format!(
                        "no Deployment in namespace {namespace} can lose a pod without going under --min-ready \
                         (Deployments there: {existing})"
                    ),
                });
            };
            (selector_string(&w.selector), Some(w))
        }
        TargetSpec::Service(name) => (format!("app={name}"), None),
        TargetSpec::Selector(selector) => (selector.clone(), None),
    };
    let pods = list::<Pod>(conn, namespace, "pods", &selector, count).await?;
    let workload = match chosen {
        Some(w) => Some(w),
        None => owner(conn, namespace, &pods, count).await?,
    };
    if pods.is_empty() && workload.is_none() {
        return Err(nothing_matches(conn, namespace, spec, &selector, count).await?);
    }
    Ok(Resolved {
        namespace: namespace.to_owned(),
        selector,
        workload,
        pods,
    })
}

/// The Deployment or StatefulSet that owns the pods of a `--service`/`--selector`.
async fn owner(
    conn: &Connection,
    namespace: &str,
    pods: &[Pod],
    count: &ThrottleCount,
) -> Result<Option<Workload>> {
    let Some(first) = pods.first() else {
        return Ok(None);
    };
    let sets = list::<StatefulSet>(conn, namespace, "statefulsets", "", count).await?;
    if let Some(w) = sets
        .iter()
        .map(Workload::from_stateful_set)
        .find(|w| workload_owns(w, first))
    {
        return Ok(Some(w));
    }
    let deployments = list::<Deployment>(conn, namespace, "deployments", "", count).await?;
    Ok(deployments
        .iter()
        .map(Workload::from_deployment)
        .find(|w| workload_owns(w, first)))
}

async fn nothing_matches(
    conn: &Connection,
    namespace: &str,
    spec: &TargetSpec,
    selector: &str,
    count: &ThrottleCount,
) -> Result<ChaosError> {
    let everything = list::<Pod>(conn, namespace, "pods", "", count).await?;
    let apps: BTreeSet<String> = everything
        .iter()
        .filter_map(|p| p.labels().get("app").cloned())
        .collect();
    let flag = if matches!(spec, TargetSpec::Service(_)) {
        "--service"
    } else {
        "--selector"
    };
    let apps = if everything.is_empty() {
        listed::<Pod>(conn, namespace, &everything).await?
    } else if apps.is_empty() {
        "none".into()
    } else {
        apps.into_iter().collect::<Vec<_>>().join(", ")
    };
    Ok(ChaosError::bad_input(format!(
        "{flag}: no pod matches '{selector}' in namespace {namespace}; services (app labels) there: {apps}"
    )))
}
