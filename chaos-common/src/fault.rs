//! The fault contract: plan, apply, observe, revert.
//!
//! A fault struct holds configuration only. What `apply` creates (child processes,
//! threads, tables) goes into a `Handle`, which `revert` consumes. The runner in
//! [`crate::runner`] drives every fault the same way and owns signals and timing.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::error::Result;
use crate::report::{Criterion, Target};
use crate::safety::SafetyRequest;

/// What a fault will do, computed without touching anything: `--dry-run` prints it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Experiment step 1: the expected effect, in one sentence.
    pub hypothesis: String,
    /// Experiment step 2: what the fault acts on.
    pub targets: Vec<Target>,
    /// The exact steps, in order, each starting with a verb ("start 2 workers ...").
    pub steps: Vec<String>,
    /// Things the operator should know before going ahead (expected OOM kill, ...).
    pub warnings: Vec<String>,
    /// What the safety rules need to know.
    pub safety: SafetyRequest,
}

/// What one observation says about the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Keep going until the duration ends.
    Running,
    /// The fault has completed its work early (e.g. the allocator was OOM-killed and the
    /// run asked for that); the reason becomes `stopReason`.
    Finished(String),
    /// The fault broke; the run ends as failed.
    Failed(String),
}

/// The measurements of a run, collected right before revert.
#[derive(Debug, Clone, Default)]
pub struct Conclusion {
    pub observations: Value,
    /// Pass criteria; any that did not hold makes the result `failed` (exit 1).
    pub criteria: Vec<Criterion>,
}

pub trait Fault: Send {
    /// What apply created, consumed by revert.
    type Handle: Send;

    /// Pure: the plan printed by `--dry-run` and recorded in every report.
    fn plan(&self) -> Plan;

    /// Turns names into concrete targets (pods through the Kubernetes API, host names
    /// through DNS, Service endpoints), after the common safety rules passed and before
    /// the plan is printed. Runs in dry runs too; touches nothing. An error ends the run
    /// with a report: `ChaosError::BadInput` (no such target) exits 2,
    /// `ChaosError::Refused` exits 3, anything else 1.
    fn resolve(&mut self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Fault-specific safety rules (memory headroom, minimum ready replicas), checked
    /// after [`Fault::resolve`], in dry runs too. Return `ChaosError::Refused` to refuse.
    /// Privileges belong in [`Fault::check_access`].
    fn preflight(&self) -> Result<()> {
        Ok(())
    }

    /// The privileges and programs a live run needs (root, CAP_NET_ADMIN, `nft`, write
    /// access to a cgroup): live runs only, before the countdown, so that a dry run works
    /// anywhere and a live run fails before anything is touched.
    fn check_access(&self) -> Result<()> {
        Ok(())
    }

    /// Experiment step 3: measure the steady state before apply.
    fn baseline(&mut self) -> impl Future<Output = Result<Value>> + Send {
        async { Ok(Value::Null) }
    }

    /// Start the fault. On error, undo any partial work before returning.
    fn apply(&mut self) -> impl Future<Output = Result<Self::Handle>> + Send;

    /// How often the runner calls [`Fault::observe`].
    fn observe_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Sample what the fault is doing. Must be cancel-safe: the runner drops the future
    /// when a signal arrives or the duration ends.
    fn observe(
        &mut self,
        handle: &mut Self::Handle,
    ) -> impl Future<Output = Result<Progress>> + Send;

    /// Summarise the observations and evaluate pass criteria, right before revert.
    fn conclude(&mut self, handle: &mut Self::Handle) -> Conclusion;

    /// Undo exactly what apply did. Idempotent: "already gone" is success. Returns
    /// details for the report (e.g. how long the workers took to stop).
    fn revert(&mut self, handle: Self::Handle) -> impl Future<Output = Result<Value>> + Send;

    /// Commands an operator can run by hand if revert fails.
    fn manual_revert_steps(&self) -> Vec<String> {
        Vec::new()
    }
}
