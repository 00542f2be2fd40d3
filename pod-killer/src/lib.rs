//! pod-killer: deletes (or, with `--evict`, evicts) pods of a Deployment or StatefulSet
//! one at a time through the Kubernetes API and times each recovery with watches, not
//! polling: the deletion accepted, the old pod gone, the replacement created, scheduled
//! and Ready, and the workload back to its desired ready count. Pods are tracked by UID
//! (a StatefulSet's replacement has the old name). Each kill is recorded as a Kubernetes
//! Event (reason `ChaosPodKilled`, with the run id). Throttling (429 from API Priority
//! and Fairness) is retried after `Retry-After`; only a PodDisruptionBudget's 429 is
//! "blocked by PDB".
//!
//! Privileges: no local ones; in the cluster, the Role of `docs/rbac.yaml` (list
//! Deployments and StatefulSets, list, watch and delete pods, create pods/eviction and
//! events), exactly what the code uses (a test compares them).
//!
//! Revert: nothing to undo. Deleted pods are recreated by their workload; revert stops
//! the watch and the kill loop and says so in the report.
//!
//! # Layout (no module imports one that imports it back)
//! - `cli.rs`: flags and their validation into `Settings`; `Tool`.
//! - `settings.rs`: `Settings` and `Method` (a leaf: everything reads it).
//! - `fault.rs`: `PodKill`, the fault. `resolve.rs`: the resolve step's snapshot.
//! - `plan.rs`: what `--dry-run` prints. `observations.rs`: the report's observations.
//!   `summary.rs`: the run in sentences.
//! - `run.rs`: the pod watch and the kill loop. `strike.rs`: one delete or eviction.
//! - `timeline.rs`: watch events turned into per-kill timestamps (pure).

pub mod cli;
pub mod fault;
pub mod help;
pub mod observations;
pub mod plan;
pub mod resolve;
pub mod run;
pub mod settings;
pub mod strike;
pub mod summary;
pub mod timeline;
