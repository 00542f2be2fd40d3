//! Helpers for tests that drive a lab node directly (without the API server).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};

use super::context::NodeConfig;
use super::pod::PodShared;

/// The workspace's build directory, from a test binary's path
/// (`target/debug/deps/test-…` -> `target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe.parent().unwrap_or(Path::new("."));
    let dir = if deps.ends_with("deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    dir.to_path_buf()
}

/// A node configuration for tests: binaries from this build, `dist/` of the workspace,
/// a 1 s restart back-off.
pub fn node_config() -> NodeConfig {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist");
    let mut config = NodeConfig::new(bin_dir(), dist);
    config.backoff_initial = Duration::from_secs(1);
    config.backoff_max = Duration::from_secs(4);
    config
}

/// A pod from its JSON form.
pub fn pod(json: serde_json::Value) -> Result<Pod> {
    Ok(serde_json::from_value(json)?)
}

/// Waits until `pod`'s status satisfies `check` (at most `timeout`); the status, or an
/// error naming `what` with the last status seen.
pub async fn wait_status(
    pod: &PodShared,
    what: &str,
    timeout: Duration,
    check: impl Fn(&PodStatus) -> bool,
) -> Result<PodStatus> {
    let mut rx = pod.subscribe();
    let result = tokio::time::timeout(timeout, rx.wait_for(|s| check(s))).await;
    match result {
        Ok(Ok(status)) => Ok(status.clone()),
        _ => {
            let events: Vec<String> = pod
                .lock()
                .events
                .iter()
                .map(|e| format!("{} {}", e.reason, e.message))
                .collect();
            bail!(
                "pod {}: {what} not reached within {timeout:?}; events: {events:#?}; last status: {}",
                pod.name,
                serde_json::to_string_pretty(&pod.status()).unwrap_or_default()
            )
        }
    }
}

/// The status of container `name` (a default one when absent).
pub fn container<'a>(status: &'a PodStatus, name: &str) -> Option<&'a ContainerStatus> {
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.ephemeral_container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(status: &PodStatus) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Whether container `name` is running (its current instance).
pub fn is_running(status: &PodStatus, name: &str) -> bool {
    container(status, name)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some())
}
