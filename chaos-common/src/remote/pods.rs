//! The target pods: the selection resolved through the API, Running and not terminating
//! pods only (as the originals did), sorted by name, narrowed by `--max-pods`, each with
//! the container to act in. Reads: `list pods` (or `get pods` for `--pod`), `get
//! deployments` for `--deployment`, `get services` for a Service's backends.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};

use super::api;
use super::args::{Selection, Settings};
use crate::error::{ChaosError, Result};
use crate::kube::Connection;
use crate::kube::retry::ThrottleCount;
use crate::kube::targets::{is_running, is_terminating, selector_string};

/// The annotation `kubectl exec` and `kubectl logs` read for the default container.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// One target pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodTarget {
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub ip: Option<String>,
    /// The container acted in (exec) or targeted (ephemeral container).
    pub container: String,
    /// `restartCount` of that container when resolved (memory-leak's --watch-oom counts
    /// from it).
    pub restarts: i32,
    /// Names of the ephemeral containers the pod already has.
    pub ephemeral: Vec<String>,
}

/// Why a pod is not a target, or None when it is one.
pub fn not_runnable(pod: &Pod) -> Option<String> {
    if is_terminating(pod) {
        return Some("terminating".into());
    }
    if !is_running(pod) {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "without a phase".into());
        return Some(phase);
    }
    None
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The container to act in: `wanted`, else the default-container annotation (when it
/// names a container of the pod), else the first container.
pub fn choose_container(pod: &Pod, wanted: Option<&str>) -> Result<String> {
    let names: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
        .collect();
    let pick = match wanted {
        Some(w) if names.contains(&w) => Some(w),
        Some(w) => {
            return Err(ChaosError::bad_input(format!(
                "--container {w}: pod {} has no such container (containers: {})",
                name_of(pod),
                names.join(", ")
            )));
        }
        None => pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CONTAINER_ANNOTATION))
            .map(String::as_str)
            .filter(|a| names.contains(a))
            .or_else(|| names.first().copied()),
    };
    pick.map(str::to_owned)
        .ok_or_else(|| ChaosError::bad_input(format!("pod {} has no containers", name_of(pod))))
}

/// A pod as a target.
pub fn target(pod: &Pod, wanted: Option<&str>) -> Result<PodTarget> {
    let container = choose_container(pod, wanted)?;
    let status = pod.status.as_ref();
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == container))
        .map_or(0, |c| c.restart_count);
    Ok(PodTarget {
        name: name_of(pod),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ip: status.and_then(|s| s.pod_ip.clone()),
        container,
        restarts,
        ephemeral: pod
            .spec
            .iter()
            .flat_map(|s| s.ephemeral_containers.iter().flatten())
            .map(|c| c.name.clone())
            .collect(),
    })
}

/// The pods of a selector: Running and live ones sorted by name, then `--max-pods`. The
/// error lists what was seen when nothing is left.
pub fn narrow(
    pods: Vec<Pod>,
    max: Option<usize>,
    wanted: Option<&str>,
    what: &str,
) -> Result<(Vec<PodTarget>, Vec<String>)> {
    let mut skipped = Vec::new();
    let mut runnable: Vec<Pod> = Vec::new();
    for pod in pods {
        match not_runnable(&pod) {
            Some(why) => skipped.push(format!("{} ({why})", name_of(&pod))),
            None => runnable.push(pod),
        }
    }
    runnable.sort_by_key(name_of);
    if runnable.is_empty() {
        let seen = if skipped.is_empty() {
            "no pods at all".to_owned()
        } else {
            format!("only {}", skipped.join(", "))
        };
        return Err(ChaosError::bad_input(format!(
            "no Running pod matches {what}: {seen}"
        )));
    }
    if let Some(max) = max {
        for pod in runnable.iter().skip(max) {
            skipped.push(format!("{} (over --max-pods {max})", name_of(pod)));
        }
        runnable.truncate(max);
    }
    let targets = runnable
        .iter()
        .map(|p| target(p, wanted))
        .collect::<Result<Vec<_>>>()?;
    Ok((targets, skipped))
}

/// The label selector of a Service's backends.
pub fn service_selector(service: &Service) -> Option<String> {
    let selector = service.spec.as_ref()?.selector.as_ref()?;
    if selector.is_empty() {
        return None;
    }
    Some(
        selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The selection's pods in the namespace, with the pods left out and why.
pub async fn resolve(
    conn: &Connection,
    settings: &Settings,
    count: &ThrottleCount,
) -> Result<(Vec<PodTarget>, Vec<String>)> {
    let ns = settings.namespace.as_str();
    let wanted = settings.container.as_deref();
    let selector = match &settings.selection {
        Selection::Pods(names) => return named(conn, settings, names, count).await,
        Selection::Service(name) => format!("app={name}"),
        Selection::Selector(expr) => expr.clone(),
        Selection::Deployment(name) => {
            let d: Deployment = api::get(conn, ns, name, "deployments.apps", count)
                .await?
                .ok_or_else(|| {
                    ChaosError::bad_input(format!(
                        "--deployment {name}: no such Deployment in namespace {ns}"
                    ))
                })?;
            let selector = d
                .spec
                .map(|s| selector_string(&s.selector))
                .unwrap_or_default();
            if selector.is_empty() {
                return Err(ChaosError::bad_input(format!(
                    "--deployment {name} has an empty selector"
                )));
            }
            selector
        }
        Selection::Backends(name) => {
            let svc: Service = api::get(conn, ns, name, "services", count)
                .await?
                .ok_or_else(|| {
                    ChaosError::bad_input(format!(
                        "--target {name}: no such Service in namespace {ns}"
                    ))
                })?;
            service_selector(&svc).ok_or_else(|| {
                ChaosError::bad_input(format!(
                    "--target {name}: the Service has no selector, so it has no pods to delay at"
                ))
            })?
        }
    };
    let pods: Vec<Pod> = api::list(conn, ns, &selector, "pods", count).await?;
    let what = format!(
        "'{selector}' in namespace {ns} ({})",
        settings.selection.describe()
    );
    narrow(pods, settings.max_pods, wanted, &what)
}

async fn named(
    conn: &Connection,
    settings: &Settings,
    names: &[String],
    count: &ThrottleCount,
) -> Result<(Vec<PodTarget>, Vec<String>)> {
    let ns = settings.namespace.as_str();
    let mut pods = Vec::new();
    for name in names {
        let pod: Pod = api::get(conn, ns, name, "pods", count)
            .await?
            .ok_or_else(|| {
                ChaosError::bad_input(format!("--pod {name}: no such pod in namespace {ns}"))
            })?;
        if let Some(why) = not_runnable(&pod) {
            return Err(ChaosError::bad_input(format!(
                "--pod {name} is {why}, not Running: nothing to act on"
            )));
        }
        pods.push(pod);
    }
    let what = format!("--pod in namespace {ns}");
    narrow(
        pods,
        settings.max_pods,
        settings.container.as_deref(),
        &what,
    )
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
