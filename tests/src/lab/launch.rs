//! What `lab-init` is asked to do: the JSON the kubelet writes for one container process
//! (a new sandbox) or for one exec (joining a running container). Built by
//! [`crate::lab::spec`] from the pod spec; read by [`crate::lab::init`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One process to start inside a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Launch {
    /// The command and its arguments (`argv[0]` is searched in the env's PATH).
    pub argv: Vec<String>,
    /// The process environment, exactly (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory inside the container (default `/`).
    pub working_dir: Option<String>,
    pub identity: Identity,
    /// `cgroup.procs` files of the container's cgroups (one per controller hierarchy):
    /// the process is placed there before it is started.
    pub cgroup_procs: Vec<PathBuf>,
    /// `cgroup.procs` files the shim (lab-init's first stage) moves itself to once the
    /// container process runs (the pod's cgroups on v1, their `_shims` leaf on v2: see
    /// `cgroups::shim_rel`), so that only container processes are
    /// charged to, and killed with, the container's cgroups.
    pub shim_cgroup_procs: Vec<PathBuf>,
    /// lab-init writes the container process's pid (as the host sees it) here.
    pub pid_file: PathBuf,
    pub sandbox: Sandbox,
}

/// User, groups and capabilities of the process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (fsGroup, supplementalGroups).
    pub groups: Vec<u32>,
    /// The bounding set, as `CAP_*` names. A root process also gets them as effective and
    /// permitted capabilities; a non-root process gets none (no ambient capabilities, as
    /// containerd does for non-root users).
    pub capabilities: Vec<String>,
    /// `allowPrivilegeEscalation: false` (PR_SET_NO_NEW_PRIVS).
    pub no_new_privs: bool,
}

/// Where the process lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Sandbox {
    /// A new container: new mount, UTS, IPC, cgroup and (unless `pid_of` is set) PID
    /// namespaces, in the pod's network namespace.
    New(NewSandbox),
    /// An exec: join every namespace of the running container process `target_pid`.
    Join { target_pid: i32 },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    /// The pod's network namespace file (`/run/netns/NAME`).
    pub net_ns: PathBuf,
    /// Join this process's PID namespace instead of a new one (an ephemeral container's
    /// `targetContainerName`).
    pub pid_of: Option<i32>,
    pub hostname: String,
    /// `readOnlyRootFilesystem`: every mount except volumes, /dev and /proc is read-only.
    pub read_only_root: bool,
    /// Bind mounts, in order (volumes, /etc/hosts, resolv.conf, image directories).
    pub mounts: Vec<BindMount>,
    /// Host directories covered by an empty read-only tmpfs after the binds (the lab's
    /// other pods).
    #[serde(default)]
    pub hidden: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// What the first stage hands the second (the process that becomes the container's
/// command): the part that runs inside the new PID namespace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stage2 {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub identity: Identity,
    /// Mount a fresh /proc for the PID namespace (new sandboxes).
    pub mount_proc: bool,
}
