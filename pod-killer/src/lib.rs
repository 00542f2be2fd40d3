//! pod-killer: deletes (or, with `--evict`, evicts) pods of a Deployment one at a time
//! through the Kubernetes API and times each recovery with watches, not polling: the
//! deletion accepted, the old pod gone, the replacement created, scheduled and Ready,
//! and the Deployment back to its desired ready count. Each kill is recorded as a
//! Kubernetes Event (reason `ChaosPodKilled`, with the run id).
//!
//! Privileges: no local ones; in the cluster, the Role of `docs/rbac.yaml` (get, list,
//! watch pods and deployments, delete pods, create pods/eviction and events).
//!
//! Revert: nothing to undo. Deleted pods are recreated by their ReplicaSet; revert stops
//! the watch and the kill loop and says so in the report.
//!
//! # Layout
//! - `cli.rs`: flags, validation, `Tool` (prepare resolves the target).
//! - `resolve.rs`: the prepare-time snapshot (Deployment, selector, pods).
//! - `kill.rs`: `PodKill`, the fault. `plan.rs`: what `--dry-run` prints.
//! - `run.rs`: the pod watch and the kill loop. `strike.rs`: one delete or eviction.
//! - `timeline.rs`: watch events turned into per-kill timestamps (pure).
//! - `observations.rs`: the report's observations and pass criteria.

pub mod cli;
pub mod kill;
pub mod observations;
pub mod plan;
pub mod resolve;
pub mod run;
pub mod strike;
pub mod timeline;
