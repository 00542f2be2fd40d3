//! Remote mode (cargo feature `remote`; docs/remote.md): a tool resolves target pods
//! through the Kubernetes API and runs its own local mode inside each of them,
//! concurrently, then prints one report holding each pod's own report.
//!
//! cpu-hog and memory-leak run inside the target container (copied there through exec as
//! a tar stream), so that its cgroup pays; net-partition and latency-injector run in an
//! ephemeral container with `NET_ADMIN` in the pod's network namespace.
//!
//! A tool takes part through [`crate::tool::Tool::remote`]: it flattens [`RemoteArgs`]
//! into its flags and answers with a [`Request`] when they select pods; `tool::main` then
//! runs [`run::run`] instead of the local fault.
//!
//! # Layout
//! - `args.rs`: the remote flags; `argv.rs`: the in-pod command line from `ArgMatches`.
//! - `binary.rs`, `tar.rs`: what exec delivery copies, and how.
//! - `api.rs`, `pods.rs`, `peers.rs`: reads (pods, containers, Services, EndpointSlices).
//! - `access.rs` (RBAC), `security.rs` (Pod Security), `probe.rs` (container checks):
//!   preflight facts, judged in `fault.rs`'s `preflight`.
//! - `exec.rs`: exec through the API; `session.rs`: one pod's run (state, output lines);
//!   `by_exec.rs`, `ephemeral.rs`: the two deliveries, start to report.
//! - `keeper.rs`: a peer Service's addresses kept current; `oom.rs`: the pod watch of
//!   memory-leak --watch-oom.
//! - `resolve.rs`, `plan.rs`, `fault.rs`: the facts, the plan and the `Fault` the runner
//!   drives.
//! - `aggregate.rs`: the one report; `run.rs`: the entry point from `tool.rs`; `stop.rs`:
//!   `--stop RUNID` and `--cleanup` in the matched pods.

pub mod access;
pub mod aggregate;
pub mod api;
pub mod args;
pub mod argv;
pub mod binary;
pub mod by_exec;
pub mod cleanup;
pub mod ephemeral;
pub mod exec;
pub mod fault;
pub mod keeper;
pub mod oom;
pub mod peers;
pub mod plan;
pub mod pods;
pub mod probe;
pub mod resolve;
pub mod run;
pub mod security;
pub mod session;
pub mod stop;
pub mod tar;

pub use args::{RemoteArgs, Selection};

use crate::error::Result;
use peers::Peer;

/// How a tool's local mode reaches a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Copied into the target container through exec and run there (its cgroup pays).
    Exec,
    /// An ephemeral container `chaos-TOOL-RUNID` with NET_ADMIN in the pod's network
    /// namespace, from the debug image.
    Ephemeral,
}

/// A Service whose addresses a tool needs inside the pod.
#[derive(Debug, Clone)]
pub struct PeerUse {
    pub service: String,
    /// The flag that named it, for messages (`-t/--target-service`).
    pub flag: &'static str,
    /// The port asked for, if any.
    pub port: Option<u16>,
    /// The in-pod arguments the resolved Service turns into.
    pub args: fn(&Peer, Option<u16>) -> Result<Vec<String>>,
    /// The hidden sub-command that updates a running fault's addresses
    /// (`TOOL NAME RUNID add|delete ADDR...`), when they are kept current.
    pub update: Option<&'static str>,
}

/// What a tool asks of the remote layer: its answer to `Tool::remote`.
#[derive(Debug, Clone)]
pub struct Request {
    pub args: RemoteArgs,
    pub selection: Selection,
    pub delivery: Delivery,
    /// The tool's own argument ids that are not forwarded to the pod (translated into
    /// `peer` arguments, or remote-only).
    pub skip: Vec<&'static str>,
    pub peer: Option<PeerUse>,
    /// Arguments the tool adds to every in-pod command line (before the fixed tail).
    pub extra: Vec<String>,
    /// Watch the pods for OOM kills and restarts (memory-leak `--watch-oom`).
    pub watch_oom: bool,
    /// Whether the fault is destructive (the approval rule in production).
    pub destructive: bool,
}

impl Request {
    /// The request when `args` select pods; `None` (local mode) otherwise, after refusing
    /// remote-only flags given without a selection.
    pub fn from_args(tool: &str, args: &RemoteArgs, delivery: Delivery) -> Result<Option<Request>> {
        let Some(selection) = args.selection()? else {
            args.check_local(tool)?;
            return Ok(None);
        };
        Ok(Some(Request {
            args: args.clone(),
            selection,
            delivery,
            skip: Vec::new(),
            peer: None,
            extra: Vec::new(),
            watch_oom: false,
            destructive: false,
        }))
    }
}
