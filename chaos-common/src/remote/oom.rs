//! memory-leak `--watch-oom` in remote mode: the pod is watched (a watch on its name) for
//! what Kubernetes shows of an OOM kill: the container's `restartCount` going up with
//! `lastState.terminated.reason = OOMKilled`, the container running again, and the pod
//! Ready again. Times are taken when the watch event arrives (the API's own timestamps
//! have one-second resolution), in milliseconds since apply started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use tracing::{info, warn};

use super::session::{Ctx, PodRun, Shared};
use crate::kube::targets::is_ready;

/// How long the run waits for a killed container's pod to be Ready again.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(180);

/// What the watch saw (`oom` in the pod's target details).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub container_restarted: bool,
    pub oom_killed: bool,
    pub last_termination_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub restart_count_before: i32,
    pub restart_count_after: i32,
    pub killed_ms: Option<f64>,
    pub running_again_ms: Option<f64>,
    pub ready_again_ms: Option<f64>,
    /// From the kill to Ready again.
    pub recovery_ms: Option<f64>,
    /// Said when the container did not restart.
    pub note: Option<String>,
}

/// Whether the pod's container was killed and the run waits for it to be Ready again.
pub fn recovering(r: &PodRun) -> bool {
    r.recovering_until.is_some_and(|t| Instant::now() < t)
}

fn ms(ctx: &Ctx) -> f64 {
    crate::report::round(ctx.started.elapsed().as_secs_f64() * 1000.0, 1)
}

/// Updates `seen` with a new state of the pod; true when something changed.
///
/// The kill is seen at the first of: the restart count going up, or the container not
/// running (it ran when the run started in it). A container killed again soon after an
/// earlier kill waits in `CrashLoopBackOff` (10 s, then doubling) before the kubelet
/// restarts it and counts the restart; its termination is in `lastState` meanwhile (in
/// `state` for the moment before). Ready again needs the container running again.
pub fn step(seen: &mut Seen, status: Option<&ContainerStatus>, ready: bool, now_ms: f64) -> bool {
    let before = seen.clone();
    let mut running = false;
    if let Some(c) = status {
        running = c.state.as_ref().is_some_and(|s| s.running.is_some());
        let down = c.state.as_ref().is_some_and(|s| s.running.is_none());
        if (c.restart_count > seen.restart_count_before || down) && !seen.container_restarted {
            seen.container_restarted = true;
            seen.killed_ms = Some(now_ms);
        }
        seen.restart_count_after = c.restart_count;
        let terminated = c
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
        if let Some(t) = terminated {
            if seen.container_restarted {
                seen.last_termination_reason = t.reason.clone();
                seen.exit_code = Some(t.exit_code);
                seen.oom_killed = t.reason.as_deref() == Some("OOMKilled");
            }
        }
        if seen.container_restarted && running && seen.running_again_ms.is_none() {
            seen.running_again_ms = Some(now_ms);
        }
    }
    if seen.container_restarted && running && ready && seen.ready_again_ms.is_none() {
        seen.ready_again_ms = Some(now_ms);
        seen.recovery_ms = seen.killed_ms.map(|k| crate::report::round(now_ms - k, 1));
    }
    *seen != before
}

/// Watches the pod until it is Ready again after a kill, or until aborted.
pub async fn watch(ctx: Arc<Ctx>, run: Arc<Shared>) {
    let target = run.borrow().target.clone();
    let mut seen = Seen {
        restart_count_before: target.restarts,
        restart_count_after: target.restarts,
        ..Seen::default()
    };
    run.send_modify(|r| r.oom = serde_json::to_value(&seen).ok());
    let api: Api<Pod> = Api::namespaced(ctx.conn.client.clone(), &ctx.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
            Ok(_) => continue,
            Err(e) => {
                warn!("watching pod {}: {e} (retrying)", target.name);
                continue;
            }
        };
        let status = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|all| all.iter().find(|c| c.name == target.container));
        let was_killed = seen.container_restarted;
        if !step(&mut seen, status, is_ready(&pod), ms(&ctx)) {
            continue;
        }
        if seen.container_restarted && !was_killed {
            info!(
                pod = %target.name,
                "container {} of pod {} restarted (last state: {})",
                target.container,
                target.name,
                seen.last_termination_reason.as_deref().unwrap_or("unknown")
            );
        }
        let done = seen.ready_again_ms.is_some();
        run.send_modify(|r| {
            r.oom = serde_json::to_value(&seen).ok();
            r.recovering_until = match (seen.container_restarted, done) {
                // The kill just seen: wait for Ready again (this replaces the short
                // window a run that reported its allocator OOM-killed was given).
                (true, false) if !was_killed => Some(Instant::now() + RECOVERY_LIMIT),
                (true, false) => r.recovering_until.or(Some(Instant::now() + RECOVERY_LIMIT)),
                (true, true) => None,
                // No kill yet: keep that window, if any.
                (false, _) => r.recovering_until,
            };
        });
        if done {
            info!(pod = %target.name, "pod {} is Ready again", target.name);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    };

    fn status(restarts: i32, reason: Option<&str>, running: bool) -> ContainerStatus {
        ContainerStatus {
            name: "app".into(),
            restart_count: restarts,
            last_state: reason.map(|r| ContainerState {
                terminated: Some(ContainerStateTerminated {
                    reason: Some(r.into()),
                    exit_code: 137,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            state: running.then(|| ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn kill_restart_and_ready_are_timed_in_order() {
        let mut seen = Seen {
            restart_count_before: 0,
            ..Seen::default()
        };
        assert!(!step(&mut seen, Some(&status(0, None, true)), true, 10.0));
        assert!(step(
            &mut seen,
            Some(&status(1, Some("OOMKilled"), false)),
            false,
            500.0
        ));
        assert!(seen.oom_killed && seen.container_restarted);
        assert_eq!((seen.killed_ms, seen.exit_code), (Some(500.0), Some(137)));
        assert!(step(
            &mut seen,
            Some(&status(1, Some("OOMKilled"), true)),
            false,
            700.0
        ));
        assert_eq!(seen.running_again_ms, Some(700.0));
        assert!(step(
            &mut seen,
            Some(&status(1, Some("OOMKilled"), true)),
            true,
            1500.0
        ));
        assert_eq!(
            (seen.ready_again_ms, seen.recovery_ms),
            (Some(1500.0), Some(1000.0))
        );
    }

    #[test]
    fn a_kill_in_back_off_is_seen_before_the_restart_is_counted() {
        // Killed again soon after an earlier OOM kill: the container waits in
        // CrashLoopBackOff with the new termination in lastState, its restart count
        // unchanged until the kubelet restarts it.
        let mut seen = Seen {
            restart_count_before: 1,
            restart_count_after: 1,
            ..Seen::default()
        };
        assert!(!step(
            &mut seen,
            Some(&status(1, Some("OOMKilled"), true)),
            true,
            10.0
        ));
        assert!(
            !seen.container_restarted,
            "the earlier kill is not this run's"
        );
        let mut waiting = status(1, Some("OOMKilled"), false);
        waiting.state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        // The pod's Ready condition may lag: no recovery while the container is down.
        assert!(step(&mut seen, Some(&waiting), true, 300.0));
        assert!(seen.oom_killed && seen.container_restarted);
        assert_eq!((seen.killed_ms, seen.ready_again_ms), (Some(300.0), None));
        assert!(step(
            &mut seen,
            Some(&status(2, Some("OOMKilled"), true)),
            false,
            10_300.0
        ));
        assert!(step(
            &mut seen,
            Some(&status(2, Some("OOMKilled"), true)),
            true,
            11_000.0
        ));
        assert_eq!(seen.restart_count_after, 2);
        assert_eq!(
            (seen.running_again_ms, seen.recovery_ms),
            (Some(10_300.0), Some(10_700.0))
        );
    }

    #[test]
    fn an_older_termination_is_not_this_runs_kill() {
        let mut seen = Seen {
            restart_count_before: 3,
            ..Seen::default()
        };
        step(&mut seen, Some(&status(3, Some("Error"), true)), true, 5.0);
        assert!(!seen.container_restarted && !seen.oom_killed);
        assert_eq!(seen.last_termination_reason, None);
    }
}
