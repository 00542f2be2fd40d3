//! The probe loops of one running container: startup first (until it succeeds),
//! then readiness (drives `ready`) and liveness (reports a failure to the worker, which
//! restarts the container) side by side. Every failed probe is an `Unhealthy` Event.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::sync::watch;

use super::pod::PodShared;
use super::{exec, probe};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Readiness,
    Liveness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
        }
    }
}

/// Runs until aborted by the worker; sends `true` on `liveness` when the container must
/// be restarted.
pub async fn run(pod: Arc<PodShared>, container: Container, liveness: watch::Sender<bool>) {
    if let Some(p) = &container.startup_probe {
        if !until_outcome(&pod, &container, p, Kind::Startup).await {
            let _ = liveness.send(true);
            return;
        }
    }
    let readiness = async {
        if let Some(p) = &container.readiness_probe {
            readiness_loop(&pod, &container, p).await;
        }
    };
    let live = async {
        if let Some(p) = &container.liveness_probe {
            if !until_outcome(&pod, &container, p, Kind::Liveness).await {
                let _ = liveness.send(true);
            }
        }
    };
    tokio::join!(readiness, live);
}

/// One probe attempt.
async fn attempt(pod: &Arc<PodShared>, container: &Container, p: &Probe) -> Result<(), String> {
    if let Some(result) = probe::run_network(p, container, pod.net.ip).await {
        return result;
    }
    if let Some(cmd) = p.exec.as_ref().and_then(|e| e.command.clone()) {
        let timeout = probe::timing(p).timeout;
        return match exec::run(pod, &container.name, cmd, timeout).await {
            Ok(out) if out.code == 0 => Ok(()),
            Ok(out) => Err(format!(
                "command exited {}: {}",
                out.code,
                out.stdout.trim()
            )),
            Err(e) => Err(format!("{e:#}")),
        };
    }
    Err("the probe has no handler the lab supports (httpGet, tcpSocket, exec)".to_owned())
}

fn unhealthy(pod: &PodShared, container: &Container, kind: Kind, why: &str) {
    pod.event(
        Some(&container.name),
        true,
        "Unhealthy",
        format!("{} probe failed: {why}", kind.name()),
    );
}

/// Startup and liveness: true once it succeeds (startup) or never returns while it
/// keeps succeeding (liveness); false after `failureThreshold` failures in a row.
async fn until_outcome(pod: &Arc<PodShared>, container: &Container, p: &Probe, kind: Kind) -> bool {
    let t = probe::timing(p);
    tokio::time::sleep(t.initial_delay).await;
    let mut failures = 0;
    loop {
        match attempt(pod, container, p).await {
            Ok(()) if kind == Kind::Startup => return true,
            Ok(()) => failures = 0,
            Err(why) => {
                unhealthy(pod, container, kind, &why);
                failures += 1;
                if failures >= t.failure_threshold {
                    return false;
                }
            }
        }
        tokio::time::sleep(t.period).await;
    }
}

async fn readiness_loop(pod: &Arc<PodShared>, container: &Container, p: &Probe) {
    let t = probe::timing(p);
    tokio::time::sleep(t.initial_delay).await;
    let (mut ok, mut bad) = (0u32, 0u32);
    loop {
        match attempt(pod, container, p).await {
            Ok(()) => {
                ok += 1;
                bad = 0;
                if ok >= t.success_threshold {
                    set_ready(pod, &container.name, true);
                }
            }
            Err(why) => {
                unhealthy(pod, container, Kind::Readiness, &why);
                bad += 1;
                ok = 0;
                if bad >= t.failure_threshold {
                    set_ready(pod, &container.name, false);
                }
            }
        }
        tokio::time::sleep(t.period.max(Duration::from_millis(100))).await;
    }
}

fn set_ready(pod: &PodShared, name: &str, ready: bool) {
    let changed = match pod.lock().containers.get_mut(name) {
        Some(slot) if slot.status.ready != ready => {
            slot.status.ready = ready;
            true
        }
        _ => false,
    };
    if changed {
        pod.publish();
    }
}
