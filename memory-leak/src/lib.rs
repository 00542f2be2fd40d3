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
//! to `DIR/cgroup.procs` (root, or a delegated cgroup). In a cgroup with
//! `memory.oom.group = 1`, CAP_SYS_RESOURCE lets the supervisor outlive the group kill.
//!
//! **Revert.** The parent sends SIGTERM to the allocator, then SIGKILL after a short
//! grace; the kernel frees everything at once when the child exits. The child is killed
//! by the kernel if the parent dies first (`PR_SET_PDEATHSIG`), so even a SIGKILLed
//! supervisor leaves no memory behind. A shielded supervisor's `oom_score_adj` is put
//! back. Nothing else outlives the run.
//!
//! # Layout
//! Imports go one way, down this list (no module imports one that imports it back):
//! - `cli.rs`: the flags (runbook and TypeScript forms) and all validation, into a
//!   [`config::LeakConfig`] and a [`fault::MemoryLeak`].
//! - `fault.rs`: the [`fault::MemoryLeak`] fault: preflight, apply, observe, revert.
//! - `plan.rs`: the plan text, from the configuration.
//! - `observations.rs`: the typed baseline, observations and revert details.
//! - `summary.rs`: the run in sentences, for the text summary.
//! - `config.rs`: the run's configuration (plain data the others read).
//! - `rules.rs`: the memory-headroom safety rule; OOM and `memory.high` expectations.
//! - `sizing.rs`: pure conversion of the flags into target, rate, ramp and duration.
//! - `child.rs`: starting, signalling and reaping the child from the parent.
//! - `allocator.rs`: the child: join the cgroup, grow on an absolute 20 Hz schedule, hold.
//! - `shield.rs`: the supervisor's own `oom_score_adj` against a group OOM kill.
//! - `sweep.rs`: `--cleanup`: ends allocators whose supervisor is provably gone.
//! - `stats.rs`: the growth-rate fit, the CPU cost, downsampling.
//! - `watch.rs`: /proc readers (VmRSS, CPU time, capabilities) and how a child's death
//!   is classified.
//! - `units.rs`: MiB and rounding.

pub mod allocator;
pub mod child;
pub mod cli;
pub mod config;
pub mod fault;
pub mod help;
pub mod observations;
pub mod plan;
pub mod rules;
pub mod shield;
pub mod sizing;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod units;
pub mod watch;
