//! chaos-common: what every chaos-tools injector shares.
//!
//! - the fault contract ([`fault::Fault`]: plan, resolve, preflight, check_access, apply,
//!   observe, revert) and the
//!   lifecycle runner that drives it ([`runner::run`]), which owns signals, timing and the
//!   guarantee that whatever was applied is reverted;
//! - the report every tool prints ([`report::Report`], documented in `docs/report.md`)
//!   and the exit codes ([`error::Exit`]);
//! - the safety rules ([`safety`]) and the flags every tool shares ([`cli::CommonArgs`]);
//! - readers for the process's cgroup, v1 and v2 ([`cgroup`]);
//! - the registry of running instances behind `--stop RUN_ID` ([`instance`]);
//! - [`tool::main`], the thin `main` every binary calls.
//!
//! Nothing here needs privileges; the faults that do say so in their own crates.
//!
//! # Layout
//! - `fault.rs`: the contract. `runner.rs` (+ `runner/`): the lifecycle. `report.rs`: the
//!   report.
//! - `safety.rs`, `cli.rs`, `duration.rs`, `size.rs`, `runid.rs`: input and the rules
//!   applied to it.
//! - `signals.rs`, `progress.rs`, `logging.rs`: process plumbing; `instance.rs` (+
//!   `instance/`): the trusted registry behind `--stop` and `--cleanup`.
//! - `cgroup/`: cgroup v1 and v2 readers and their pure parsers.
//! - `nft.rs`, `watchdog.rs`: nftables through the `nft` binary's JSON API, and the
//!   process that removes a tool's table if the tool dies or hangs (network tools).
//! - `tool.rs` (+ `tool/`): the shared `main` (hidden sub-commands, parse, log,
//!   stop/cleanup, completions and man page, `TOOL summary FILE`, run, print, exit code).
//! - `summary/`: the report in sentences (the text printed without `--output json`);
//!   each tool adds its own sentences through [`tool::Tool::summarize`].
//! - `kube/` (feature `kube`): the Kubernetes client layer; `remote/` (feature `remote`):
//!   remote mode, the tools' local mode run inside pods (docs/remote.md).

pub mod cgroup;
pub mod cli;
pub mod duration;
pub mod error;
pub mod fault;
pub mod instance;
#[cfg(feature = "kube")]
pub mod kube;
pub mod logging;
pub mod nft;
pub mod progress;
#[cfg(feature = "remote")]
pub mod remote;
pub mod report;
pub mod runid;
pub mod runner;
pub mod safety;
pub mod signals;
pub mod size;
pub mod summary;
pub mod tool;
pub mod watchdog;

pub use error::{ChaosError, Exit, Result};
pub use fault::{Conclusion, Fault, Plan, Progress};
pub use report::{Criterion, Report, Target};
