//! What every pod of one lab node shares: its plan, cgroup layout, settings, the known
//! Services (for /etc/hosts) and the event sink.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedSender;

use super::cgroups::Layout;
use super::hosts::ServiceName;
use super::images::ImageDirs;
use super::plan::Plan;

/// What an OOM kill of one process does to its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OomMode {
    /// The whole container ends (Kubernetes on cgroup v2, `memory.oom.group`): the lab
    /// kills every process of the container's cgroup when its OOM-kill counter rises.
    #[default]
    Group,
    /// Only the process the kernel chose dies (cgroup v1 nodes): the container goes on
    /// unless that process was its main one.
    Process,
}

/// Node settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub images: ImageDirs,
    pub oom: OomMode,
    /// Restart back-off: the first restart is immediate, then `initial`, doubling up to
    /// `max` (the kubelet: 10 s and 300 s).
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How often OOM-kill counters are read.
    pub oom_poll: Duration,
    pub node_name: String,
}

impl NodeConfig {
    /// The kubelet's values, with binaries from `bin_dir` and static tools from `dist_dir`.
    pub fn new(bin_dir: PathBuf, dist_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            images: ImageDirs { bin_dir, dist_dir },
            oom: OomMode::Group,
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            oom_poll: Duration::from_millis(100),
            node_name: "lab-node".to_owned(),
        }
    }

    pub fn lab_init(&self) -> PathBuf {
        self.images.bin_dir.join("lab-init")
    }
}

/// An Event about a pod, as the kubelet records it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabEvent {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// `spec.containers{app}` (or `spec.ephemeralContainers{NAME}`), `None` for the pod.
    pub field_path: Option<String>,
    pub warning: bool,
    pub reason: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

pub struct Context {
    pub plan: Plan,
    pub layout: Layout,
    pub config: NodeConfig,
    /// The node's address as pods see it (status.hostIP).
    pub host_ip: String,
    pub services: Mutex<Vec<ServiceName>>,
    pub events: UnboundedSender<LabEvent>,
}

impl Context {
    pub fn services(&self) -> Vec<ServiceName> {
        self.services.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
