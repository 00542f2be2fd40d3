//! The Kubernetes layer shared by the tools that act through the API (cargo feature
//! `kube`): client setup, target resolution, Kubernetes Events, throttling, and error
//! messages an operator can act on.
//!
//! # Layout
//! - `client.rs`: `--kubeconfig` / `--context` / in-cluster configuration, and a
//!   reachability check that names the server and the kubeconfig used.
//! - `error.rs`: kube errors mapped to [`crate::ChaosError`] (403 names verb, resource,
//!   namespace and points to `docs/rbac.yaml`).
//! - `namespace.rs`: which namespace (`-n`, `CHAOS_NAMESPACE`, the kubeconfig context's,
//!   `lomash-wood`).
//! - `selector.rs`: label selector validation on the client (bad input, exit 2).
//! - `targets.rs`: workloads and the pure `filter_by_*` functions; `is_available`.
//! - `resolve.rs`: a target spec resolved through the API (selector, workload, pods).
//! - `retry.rs`: 429 throttling (API Priority and Fairness) retried with back-off, told
//!   apart from a PodDisruptionBudget's 429.
//! - `events.rs`: events.k8s.io/v1 Events recording what a run did.
//! - `freeze.rs`: the freeze switch (ConfigMap `chaos-freeze`): checked at start, polled
//!   while a run lasts.

pub mod client;
pub mod error;
pub mod events;
pub mod freeze;
pub mod namespace;
pub mod resolve;
pub mod retry;
pub mod selector;
pub mod targets;

pub use client::{ClientOptions, Connection};
pub use error::api_error;
