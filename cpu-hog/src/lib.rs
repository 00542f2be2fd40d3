//! cpu-hog: holds a precise CPU load on the machine, pod or container it runs in.
//!
//! Each worker is a thread running a feedback loop on its own thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`): it spins while it is behind `share × wall time since
//! start` and sleeps while it is ahead, in cycles of about 10 ms, so the load is smooth
//! at 1-second sampling and time lost to contention is made up where the scheduler
//! allows (with a cap on the debt, so a stall never ends in a long 100% burst). With
//! `--of-limit` the share is taken of the cgroup's CPU quota, which is what an HPA and
//! the container's throttling see.
//!
//! Privileges: none. The load is charged to whatever cgroup the process runs in.
//!
//! Revert: one atomic flag stops every worker within one spin chunk or sleep (at most
//! 10 ms); revert sets it, joins the threads and records how long that took. Workers
//! are threads of this process, so nothing outlives it: `--cleanup` only needs to stop
//! running instances.
//!
//! # Layout
//! - `cli.rs`: the flags and their validation into a [`fault::CpuBurn`].
//! - `load.rs`: pure resolution of the worker count and per-worker share.
//! - `fault.rs`: the fault (plan, apply, observe, conclude, revert).
//! - `observations.rs`: the typed baseline and observations of the report.
//! - `summary.rs`: the run in sentences, for the text summary.
//! - `worker.rs`: the worker threads, their CPU counters and the stop flag.
//! - `control.rs`: the pure feedback controller each worker runs.
//! - `watch.rs`: 1 Hz samples and the arithmetic of the observations.

pub mod cli;
pub mod control;
pub mod fault;
pub mod help;
pub mod load;
pub mod observations;
pub mod summary;
pub mod watch;
pub mod worker;
