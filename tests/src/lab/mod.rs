//! The lab: a local Lomash Wood cluster whose pods are real processes (issue "The lab").
//! See docs/lab.md for what it is and is not.
//!
//! # Layout
//! - `plan.rs`: names, address ranges and the slot lock of one lab instance;
//!   `cleanup.rs`: removing a lab (and the leftovers of dead ones).
//! - `net.rs`: the node namespace, bridge, host link and pod namespaces (`ip`);
//!   `proxy.rs`: Service routing (nftables DNAT in the node namespace);
//!   `services.rs`: Services and pods -> endpoints and routes (pure);
//!   `hosts.rs`: /etc/hosts and resolv.conf of pods.
//! - `cgroups.rs`: container cgroups (v1 and v2), limits, OOM counter, CPU and memory.
//! - `node.rs`: the kubelet side: pods, ephemeral containers, deletion, Services.
//!   `context.rs`: what a node's pods share (settings, events).
//! - `pod.rs`: one pod's sandbox and state; `status.rs`: its PodStatus; `worker.rs`: one container's life
//!   (start, OOM watch, restart back-off); `probes.rs` + `probe.rs`: probes;
//!   `terminate.rs`: preStop, SIGTERM, SIGKILL; `exec.rs`: exec in a container;
//!   `logs.rs`: container log files.
//! - `spec.rs`: container spec -> lab-init launch (with `images.rs`, `security.rs`,
//!   `env.rs`, `quantity.rs`); `launch.rs`: the launch JSON; `init/`: lab-init itself
//!   (namespaces, mounts, identity, exec).
//! - `stream/`: exec and attach over the websocket channel protocols.
//! - `hpa.rs`: the HPA algorithm (pure); `usage.rs`: CPU and memory of containers from
//!   their cgroups (for the HPA and `kubectl top`).
//! - `backend/`: the stand-in Lomash Wood services (`lab-service`, `lab-stripe`).
//! - `testing.rs`: helpers for tests that drive a node directly.
//! - `mountinfo.rs`, `cmd.rs`, `clock.rs`: small helpers.

pub mod api;
pub mod backend;
pub mod cgroups;
pub mod cleanup;
pub mod clock;
pub mod cmd;
pub mod container;
pub mod context;
pub mod env;
pub mod exec;
pub mod hosts;
pub mod hpa;
pub mod images;
pub mod init;
pub mod inventory;
pub mod launch;
pub mod logs;
pub mod mountinfo;
pub mod net;
pub mod node;
pub mod plan;
pub mod pod;
pub mod pod_state;
pub mod probe;
pub mod probes;
pub mod proxy;
pub mod quantity;
pub mod security;
pub mod services;
pub mod spec;
pub mod stage;
pub mod status;
pub mod stream;
pub mod terminate;
pub mod testing;
pub mod usage;
pub mod worker;
