//! Stopping a container as the kubelet does: the preStop hook (exec, httpGet or sleep)
//! within the grace period, then SIGTERM to the main process, then SIGKILL to every
//! process of the container when the grace period ends.
//!
//! As on a node, SIGTERM to a container's PID 1 that has no handler for it does
//! nothing (the kernel protects a PID namespace's init): such containers end at the
//! deadline with 137.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::cgroups::Cgroup;
use super::container::Instance;
use super::pod::PodShared;
use super::{exec, probe};

/// `terminationGracePeriodSeconds` (default 30).
pub fn grace(pod: &Pod) -> Duration {
    let secs = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Stops `instance` by `deadline`; its exit code.
pub async fn stop(
    pod: &PodShared,
    container: &Container,
    instance: &mut Instance,
    cgroup: &Cgroup,
    deadline: Instant,
) -> i32 {
    if let Some(hook) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    {
        let run = async {
            if let Some(cmd) = hook.exec.as_ref().and_then(|e| e.command.clone()) {
                let left = deadline.saturating_duration_since(Instant::now());
                match exec::run(pod, &container.name, cmd, left).await {
                    Ok(out) if out.code == 0 => Ok(()),
                    Ok(out) => Err(format!("exited {}: {}", out.code, out.stderr.trim())),
                    Err(e) => Err(format!("{e:#}")),
                }
            } else if let Some(sleep) = &hook.sleep {
                tokio::time::sleep(Duration::from_secs(
                    u64::try_from(sleep.seconds).unwrap_or(0),
                ))
                .await;
                Ok(())
            } else if let Some(get) = &hook.http_get {
                let p = k8s_openapi::api::core::v1::Probe {
                    http_get: Some(get.clone()),
                    ..Default::default()
                };
                probe::run_network(&p, container, pod.net.ip)
                    .await
                    .unwrap_or(Ok(()))
            } else {
                Ok(())
            }
        };
        // The container may end during its hook; the hook still gets its time.
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => pod.event(
                Some(&container.name),
                true,
                "FailedPreStopHook",
                format!("PreStopHook failed: {why}"),
            ),
            Err(_) => {}
        }
    }
    instance.signal(Signal::SIGTERM);
    match tokio::time::timeout_at(deadline, instance.wait()).await {
        Ok(code) => code,
        Err(_) => {
            for pid in cgroup.pids() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            instance.signal(Signal::SIGKILL);
            instance.wait().await
        }
    }
}
