//! Ephemeral-container delivery (net-partition, latency-injector): a container
//! `chaos-TOOL-RUNID` added to the pod (`pods/ephemeralcontainers`, a strategic merge
//! patch as `kubectl debug` sends), sharing the pod's network namespace and the target
//! container's process namespace, running the tool as root with only `NET_ADMIN`. The
//! session waits until it runs (image pull errors and a time-out end it), then follows
//! its log: JSON log lines are relayed, the report is the last report line.
//!
//! Ephemeral containers cannot be removed: the finished one stays in the pod's spec until
//! the pod is replaced (docs/remote.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{
    Capabilities, ContainerStateWaiting, EphemeralContainer, Pod, SecurityContext,
};
use k8s_openapi::chrono::{DateTime, Utc};
use kube::api::{Api, LogParams, Patch, PatchParams};
use tracing::{info, warn};

use super::pods::PodTarget;
use super::session::{Ctx, Outcome, Shared, Stage, on_line};

/// How long the container may take to start (an image pull included).
pub const START_LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(200);
/// The only capability the tools need (nft uses netlink; no raw sockets).
pub const CAPABILITIES: &[&str] = &["NET_ADMIN"];
/// Waiting reasons that will not resolve by waiting.
const FATAL: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The ephemeral container for `target` (pure: the plan prints it).
pub fn spec(ctx: &Ctx, target: &PodTarget) -> EphemeralContainer {
    EphemeralContainer {
        name: ctx.name(),
        image: Some(ctx.image.clone()),
        command: Some(ctx.command()),
        target_container_name: Some(target.container.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        // Root for nft (the pod's runAsUser 1001 would apply otherwise and leave the
        // process without effective capabilities), with NET_ADMIN only.
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                add: Some(CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        }),
        stdin: Some(false),
        tty: Some(false),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

fn ended(shared: &Shared, outcome: Outcome, error: Option<String>) {
    if let Some(e) = &error {
        warn!("{e}");
    }
    shared.send_modify(|r| {
        r.errors.extend(error);
        r.outcome = Some(outcome);
        r.stage = Stage::Ended;
        r.ended_at = Some(Instant::now());
    });
}

/// The ephemeral container's state: Ok(true) running, Ok(false) not yet, Err why not.
fn state_of(pod: &Pod, name: &str) -> Result<Option<bool>, String> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == name));
    let Some(state) = status.and_then(|s| s.state.as_ref()) else {
        return Ok(None);
    };
    if state.running.is_some() || state.terminated.is_some() {
        return Ok(Some(true));
    }
    match &state.waiting {
        Some(ContainerStateWaiting {
            reason: Some(reason),
            message,
        }) if FATAL.contains(&reason.as_str()) => Err(format!(
            "{reason}: {}",
            message.as_deref().unwrap_or("no message")
        )),
        _ => Ok(Some(false)),
    }
}

async fn wait_running(api: &Api<Pod>, pod: &str, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        match api.get(pod).await {
            Ok(p) => match state_of(&p, name) {
                Ok(Some(true)) => return Ok(()),
                Ok(_) => {}
                Err(why) => {
                    return Err(format!(
                        "ephemeral container {name} in pod {pod} cannot start: {why}"
                    ));
                }
            },
            Err(e) => warn!("reading pod {pod}: {e} (retrying)"),
        }
        if Instant::now() > deadline {
            return Err(format!(
                "ephemeral container {name} in pod {pod} did not start within {} s",
                START_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A log line with its timestamp prefix (`timestamps=true`) split off.
fn split_timestamp(line: &str) -> (Option<DateTime<Utc>>, &str) {
    match line.split_once(' ') {
        Some((ts, rest)) => match DateTime::parse_from_rfc3339(ts) {
            Ok(t) => (Some(t.with_timezone(&Utc)), rest),
            Err(_) => (None, line),
        },
        None => (None, line),
    }
}

/// Follows the container's log until it ends, reconnecting (from the last line's time)
/// when the stream breaks while the container still runs.
async fn follow(api: &Api<Pod>, shared: &Shared, pod: &str, name: &str) -> Result<(), String> {
    let mut since: Option<DateTime<Utc>> = None;
    loop {
        let params = LogParams {
            container: Some(name.to_owned()),
            follow: true,
            timestamps: true,
            since_time: since,
            ..Default::default()
        };
        match api.log_stream(pod, &params).await {
            Ok(stream) => {
                let mut lines = std::pin::pin!(stream.lines());
                while let Some(Ok(line)) = lines.next().await {
                    let (ts, text) = split_timestamp(&line);
                    since = ts.or(since);
                    on_line(shared, pod, text);
                }
            }
            Err(e) => warn!("following {name} in pod {pod}: {e}"),
        }
        match api.get(pod).await {
            Ok(p) if terminated(&p, name) => return Ok(()),
            Ok(_) => tokio::time::sleep(POLL).await,
            Err(e) if crate::kube::error::code_of(&e) == Some(404) => {
                return Err(format!("pod {pod} is gone"));
            }
            Err(e) => {
                warn!("reading pod {pod}: {e} (retrying)");
                tokio::time::sleep(POLL * 5).await;
            }
        }
    }
}

fn terminated(pod: &Pod, name: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == name))
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.terminated.is_some())
}

/// Adds the container, waits until it runs, follows it until its run ends.
pub async fn session(ctx: Arc<Ctx>, shared: Arc<Shared>) {
    let target = shared.borrow().target.clone();
    let pod = target.name.as_str();
    let name = ctx.name();
    let api: Api<Pod> = Api::namespaced(ctx.conn.client.clone(), &ctx.namespace);
    let permit = ctx.permits.clone().acquire_owned().await;
    shared.send_modify(|r| r.stage = Stage::Delivering);
    if ctx.is_stopping() {
        let error = format!("pod {pod}: stopped before its ephemeral container was added");
        return ended(&shared, Outcome::NotStarted, Some(error));
    }
    let patch = serde_json::json!({"spec": {"ephemeralContainers": [spec(&ctx, &target)]}});
    if let Err(e) = api
        .patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        let error = format!("cannot add ephemeral container {name} to pod {pod}: {e}");
        return ended(&shared, Outcome::NotStarted, Some(error));
    }
    info!(pod, "added ephemeral container {name} to pod {pod}");
    if let Err(e) = wait_running(&api, pod, &name).await {
        return ended(&shared, Outcome::NotStarted, Some(e));
    }
    shared.send_modify(|r| r.stage = Stage::Started);
    drop(permit);
    let followed = follow(&api, &shared, pod, &name).await;
    let has_report = shared.borrow().report.is_some();
    match (has_report, followed) {
        (true, _) => ended(&shared, Outcome::Completed, None),
        (false, Err(e)) => ended(&shared, Outcome::Lost, Some(e)),
        (false, Ok(())) => ended(
            &shared,
            Outcome::Lost,
            Some(format!(
                "ephemeral container {name} in pod {pod} ended without a report (kubectl logs -n {} {pod} -c {name})",
                ctx.namespace
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, PodStatus};

    fn pod_with(state: ContainerState) -> Pod {
        Pod {
            status: Some(PodStatus {
                ephemeral_container_statuses: Some(vec![ContainerStatus {
                    name: "chaos-x-r".into(),
                    state: Some(state),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pull_errors_end_the_wait_and_pending_keeps_it() {
        let waiting = |reason: &str| ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some("pull access denied".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            state_of(&pod_with(waiting("ContainerCreating")), "chaos-x-r"),
            Ok(Some(false))
        );
        let e = state_of(&pod_with(waiting("ErrImagePull")), "chaos-x-r");
        assert_eq!(e, Err("ErrImagePull: pull access denied".into()));
        assert_eq!(state_of(&Pod::default(), "chaos-x-r"), Ok(None));
    }

    #[test]
    fn timestamps_are_split_off() {
        let (t, rest) = split_timestamp("2026-01-02T03:04:05.123456789Z {\"a\":1}");
        assert!(t.is_some());
        assert_eq!(rest, "{\"a\":1}");
        assert_eq!(split_timestamp("no-time here").1, "no-time here");
    }
}
