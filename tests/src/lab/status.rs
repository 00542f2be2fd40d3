//! A pod's PodStatus, composed from its containers' states: phase, conditions (with
//! their transition times), container and ephemeral container statuses, IPs, QoS class.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodIP, PodStatus};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::clock;
use super::pod_state::PodState;

/// What of a pod the status is composed from, besides its state.
pub struct PodView<'a> {
    pub pod: &'a Pod,
    pub ip: String,
    pub host_ip: &'a str,
    pub started: &'a Time,
}

pub fn compose(pod: &PodView<'_>, state: &mut PodState) -> PodStatus {
    let spec_order: Vec<String> = pod
        .pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    // A terminating pod's containers are no longer ready (the kubelet stops probing).
    let statuses: Vec<ContainerStatus> = spec_order
        .iter()
        .filter_map(|n| state.containers.get(n).map(|s| s.status.clone()))
        .map(|mut s| {
            s.ready &= !state.terminating;
            s
        })
        .collect();
    let ephemeral: Vec<ContainerStatus> = state
        .containers
        .values()
        .filter(|s| s.ephemeral)
        .map(|s| s.status.clone())
        .collect();
    let all_ready = !statuses.is_empty()
        && statuses.len() == spec_order.len()
        && statuses.iter().all(|s| s.ready);
    let ready = all_ready;
    let any_started = statuses.iter().any(|s| {
        s.state
            .as_ref()
            .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            || s.last_state
                .as_ref()
                .is_some_and(|st| st.terminated.is_some())
    });
    let phase = phase(pod.pod, &statuses, any_started);
    let now = clock::time();
    let mut conditions = Vec::new();
    for (kind, value) in [
        ("PodReadyToStartContainers", true),
        ("Initialized", true),
        ("Ready", ready),
        ("ContainersReady", all_ready),
        ("PodScheduled", true),
    ] {
        let entry = state
            .conditions
            .entry(kind.to_owned())
            .or_insert((value, now.clone()));
        if entry.0 != value {
            *entry = (value, now.clone());
        }
        conditions.push(PodCondition {
            type_: kind.to_owned(),
            status: if value { "True" } else { "False" }.to_owned(),
            last_transition_time: Some(entry.1.clone()),
            reason: (!value && (kind == "Ready" || kind == "ContainersReady"))
                .then(|| "ContainersNotReady".to_owned()),
            ..Default::default()
        });
    }
    let ip = pod.ip.clone();
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        container_statuses: Some(statuses),
        ephemeral_container_statuses: (!ephemeral.is_empty()).then_some(ephemeral),
        host_ip: Some(pod.host_ip.to_owned()),
        pod_ip: Some(ip.clone()),
        pod_ips: Some(vec![PodIP { ip }]),
        start_time: Some(pod.started.clone()),
        qos_class: Some(qos_class(pod.pod).to_owned()),
        ..Default::default()
    }
}

fn phase(pod: &Pod, statuses: &[ContainerStatus], any_started: bool) -> &'static str {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".to_owned());
    let terminated: Vec<i32> = statuses
        .iter()
        .filter_map(|s| s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code))
        .collect();
    if policy != "Always" && !statuses.is_empty() && terminated.len() == statuses.len() {
        return if terminated.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    if any_started { "Running" } else { "Pending" }
}

/// Guaranteed when every container's limits equal its requests for cpu and memory,
/// BestEffort when nothing is set, else Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.clone().unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        any |= !limits.is_empty() || !requests.is_empty();
        for res in ["cpu", "memory"] {
            let l = limits.get(res);
            let q = requests.get(res).or(l);
            guaranteed &= l.is_some() && l == q;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        _ => "Burstable",
    }
}
