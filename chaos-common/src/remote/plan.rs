//! The remote plan (pure): the pods, what is copied where or which ephemeral container
//! with which capabilities, the in-pod command, how it is stopped and what stays. This is
//! what `--dry-run` prints and every report records.

use serde_json::json;

use super::Delivery;
use super::ephemeral::CAPABILITIES;
use super::pods::PodTarget;
use super::session::Layout;
use crate::fault::Plan;
use crate::report::Target;

/// What the plan is built from.
#[derive(Debug)]
pub struct Facts<'a> {
    pub layout: &'a Layout,
    pub pods: &'a [PodTarget],
    pub skipped: &'a [String],
    pub selection: String,
    /// Exec delivery: the binary (path, size, arch), as one phrase.
    pub binary: Option<String>,
    /// A Service's addresses the fault is about, as one phrase.
    pub peer: Option<String>,
    /// The hidden sub-command that keeps the peer's addresses current.
    pub update: Option<&'static str>,
    pub max_parallel: usize,
    /// Live runs probe the containers first (exec delivery).
    pub probes: bool,
    pub watch_oom: bool,
    /// The permissions the API server confirmed (SelfSubjectAccessReview).
    pub access: Vec<String>,
}

/// The pods as plan targets, each with its stop command.
pub fn targets(layout: &Layout, pods: &[PodTarget]) -> Vec<Target> {
    pods.iter()
        .map(|p| {
            Target::new("pod", format!("{}/{}", layout.namespace, p.name)).with_details(json!({
                "container": p.container,
                "node": p.node,
                "podIp": p.ip,
                "stopCommand": layout.kubectl_stop(p),
            }))
        })
        .collect()
}

fn pod_list(pods: &[PodTarget]) -> String {
    pods.iter()
        .map(|p| {
            let mut s = format!("{} (container {}", p.name, p.container);
            if let Some(node) = &p.node {
                s.push_str(&format!(", node {node}"));
            }
            if let Some(ip) = &p.ip {
                s.push_str(&format!(", {ip}"));
            }
            s.push(')');
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The steps, in order.
pub fn steps(f: &Facts<'_>) -> Vec<String> {
    let layout = f.layout;
    let command = super::argv::display(
        &layout.program(),
        &layout.argv.iter().map(Into::into).collect::<Vec<_>>(),
    );
    let mut steps = vec![format!(
        "target {} pod(s) in namespace {}, {}: {}",
        f.pods.len(),
        layout.namespace,
        f.selection,
        pod_list(f.pods)
    )];
    if !f.access.is_empty() {
        steps.push(format!(
            "the API server allows this user (SelfSubjectAccessReview): {}",
            f.access.join(", ")
        ));
    }
    if !f.skipped.is_empty() {
        steps.push(format!("leave out {}", f.skipped.join(", ")));
    }
    if let Some(peer) = &f.peer {
        steps.push(format!("resolved {peer}"));
    }
    match layout.delivery {
        Delivery::Exec => {
            if f.probes {
                steps.push(format!(
                    "check each container: tar present, {} a writable directory on an executable mount, uname -m matching the binary",
                    layout.remote_dir
                ));
            }
            steps.push(format!(
                "copy {} into each pod's container as {} through exec (a tar stream into `tar -x -f - -C {}`), at most {} pods at once",
                f.binary.as_deref().unwrap_or("the static binary"),
                layout.program(),
                layout.remote_dir,
                f.max_parallel
            ));
            steps.push(format!(
                "run it there through exec (charged to the container's cgroup): {command}"
            ));
        }
        Delivery::Ephemeral => {
            steps.push(format!(
                "add to each pod the ephemeral container {} (image {}, targetContainerName = the target container, runAsUser 0, capabilities: drop ALL, add {}), at most {} pods at once, running: {command}",
                layout.name(),
                layout.image,
                CAPABILITIES.join(", "),
                f.max_parallel
            ));
            steps.push(
                "wait until it runs (image pull errors and a 120 s time-out end the run), and follow its log"
                    .into(),
            );
        }
    }
    steps.push(
        "wait until each pod's run logs \"fault applied\"; relay its warnings; its report is its last report line"
            .into(),
    );
    if let Some(update) = f.update {
        steps.push(format!(
            "keep the addresses current while the run lasts: on EndpointSlice changes, run `{} {update} {} add|delete ADDR...` through exec in the pod",
            layout.program(),
            layout.run_id
        ));
    }
    if f.watch_oom {
        steps.push(
            "watch each pod: the container's OOM kill (lastState.terminated.reason OOMKilled), restartCount + 1, and the time until it is Ready again"
                .into(),
        );
    }
    steps.push(format!(
        "on Ctrl-C, SIGTERM, SIGHUP or the freeze switch: run `{}` in each pod through exec; by hand: {}",
        layout.stop_command().join(" "),
        f.pods
            .first()
            .map_or_else(|| "kubectl exec ... --stop RUNID".to_owned(), |p| layout.kubectl_stop(p))
    ));
    match layout.delivery {
        Delivery::Exec => steps.push(format!("remove {} from each container (rm -rf)", layout.dir())),
        Delivery::Ephemeral => steps.push(format!(
            "leave the finished ephemeral container {} in each pod's spec (ephemeral containers cannot be removed; it goes with the pod)",
            layout.name()
        )),
    }
    steps
}

/// The plan before resolve (safety rules) and after (everything).
pub fn plan(tool: &str, namespace: &str, destructive: bool, facts: Option<&Facts<'_>>) -> Plan {
    let hypothesis = format!(
        "{tool} runs its local mode in each target pod and reverts there; each pod's own report \
         (targets[].details.report) says what it measured, and the result is the worst of them"
    );
    let mut plan = Plan {
        hypothesis,
        safety: crate::safety::SafetyRequest {
            namespaces: vec![namespace.to_owned()],
            destructive,
        },
        ..Plan::default()
    };
    if let Some(f) = facts {
        plan.targets = targets(f.layout, f.pods);
        plan.steps = steps(f);
    } else {
        plan.steps = vec![format!("resolve the target pods in namespace {namespace}")];
    }
    plan
}
