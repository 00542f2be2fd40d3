//! The Kubernetes layer shared by the tools that act through the API (cargo feature
//! `kube`): client setup, target resolution, Kubernetes Events, and error messages an
//! operator can act on.
//!
//! # Layout
//! - `client.rs`: `--kubeconfig` / `--context` / in-cluster configuration, and a
//!   reachability check that names the server and the kubeconfig used.
//! - `error.rs`: kube errors mapped to [`crate::ChaosError`] (403 names verb, resource,
//!   namespace and points to `docs/rbac.yaml`).
//! - `targets.rs`: server-side label selector, then pure `filter_by_*` functions.
//! - `events.rs`: events.k8s.io/v1 Events recording what a run did.

pub mod client;
pub mod error;
pub mod events;
pub mod targets;

pub use client::{ClientOptions, Connection};
pub use error::api_error;
