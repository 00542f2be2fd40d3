//! memory-leak: grows anonymous resident memory at a set rate (MiB per second) up to a
//! target, holds it, and releases it; watches for the kernel's OOM killer and reports it.
//!
//! The memory is allocated by a child process, the same binary re-executed as
//! `memory-leak __allocate`, so that it can join a memory cgroup before it allocates
//! (memory already allocated does not move with a process on cgroup v1) and so that an
//! OOM kill ends the allocator, not the supervisor that reports it. Every page is written
//! with a non-zero byte, so it is resident and cannot be backed by the shared zero page.
//!
//! **Privileges.** None to act on the tool's own cgroup. `--cgroup DIR` needs write access
//! to `DIR/cgroup.procs` (root, or a delegated cgroup).
//!
//! **Revert.** The parent sends SIGTERM to the allocator, then SIGKILL after a short
//! grace; the kernel frees everything at once when the child exits. The child is killed
//! by the kernel if the parent dies first (`PR_SET_PDEATHSIG`), so even a SIGKILLed
//! supervisor leaves no memory behind. Nothing else outlives the run.
//!
//! # Layout
//! - `cli.rs`: the flags (runbook and TypeScript forms) and all validation.
//! - `sizing.rs`: pure conversion of the flags into target, rate, ramp and duration.
//! - `leak.rs`: the [`leak::MemoryLeak`] fault: plan, preflight, apply, observe, revert.
//! - `plan.rs`: the plan text and the memory-headroom safety rule.
//! - `allocator.rs`: the child: join the cgroup, grow on an absolute 20 Hz schedule, hold.
//! - `child.rs`: starting, signalling and reaping the child from the parent.
//! - `watch.rs`: /proc readers (VmRSS, CPU time) and how a child's death is classified.
//! - `stats.rs`: samples, downsampling, the growth-rate fit, the CPU cost.
//! - `sweep.rs`: `--cleanup`: ends allocators whose supervisor is gone.

pub mod allocator;
pub mod child;
pub mod cli;
pub mod leak;
pub mod plan;
pub mod sizing;
pub mod stats;
pub mod sweep;
pub mod watch;

/// One mebibyte: every "MB" of this tool's flags and reports is a MiB.
pub const MIB: u64 = 1 << 20;

/// Bytes as MiB, rounded to 0.1 for reports.
pub fn mib(bytes: u64) -> f64 {
    round1(bytes as f64 / MIB as f64)
}

/// Rounds to two decimals for reports (rates).
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Rounds to one decimal for reports.
pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
