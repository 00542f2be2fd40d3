//! The mutable state of a pod on the node: its containers' slots and its conditions'
//! transition times (what `status.rs` composes a PodStatus from).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ContainerStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::cgroups::Cgroup;
use super::context::LabEvent;
use super::launch::Launch;

/// The state of one container (or ephemeral container) of the pod.
#[derive(Debug, Clone)]
pub struct ContainerSlot {
    pub status: ContainerStatus,
    pub ephemeral: bool,
    /// The running instance's main pid.
    pub pid: Option<i32>,
    pub cgroup: Option<Cgroup>,
    /// The running instance's launch (exec reuses its identity and environment).
    pub launch: Option<Launch>,
}

#[derive(Debug, Default)]
pub struct PodState {
    pub containers: BTreeMap<String, ContainerSlot>,
    /// Condition type -> (status, lastTransitionTime).
    pub conditions: BTreeMap<String, (bool, Time)>,
    pub terminating: bool,
    pub events: Vec<LabEvent>,
}
