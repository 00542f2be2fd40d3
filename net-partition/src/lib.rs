//! net-partition: drops (or, with `--reject`, rejects) traffic between the network
//! namespace it runs in and a set of targets, for a bounded time, then removes exactly
//! what it added. EXP-004 and the original `network-partition` tool, done right.
//!
//! Everything a run creates lives in one nftables table, `inet
//! chaos-net-partition-<run id>`: the sets `targets4` / `targets6` holding the resolved
//! targets (so they can be updated without recreating rules), a named counter per
//! direction, and the chains `egress` (hook output) and, with `--bidirectional`,
//! `ingress` (hook input). Apply is one atomic `nft -j -f -` transaction.
//!
//! *Privileges*: root or CAP_NET_ADMIN in the target network namespace, and the `nft`
//! binary (Debian package `nftables`). `--dry-run` needs neither.
//!
//! *Revert*: `nft delete table inet chaos-net-partition-<run id>` ("already gone" is
//! success); nothing is flushed and nothing else is touched. The runner reverts on every
//! exit path it sees; a watchdog process (see [`watchdog`]), started before the table is
//! created, deletes it if this process is SIGKILLed or hangs past the end of the run;
//! `--cleanup` deletes every `chaos-net-partition-*` table.
//!
//! # Layout
//! - `cli.rs`: flags and their validation into a [`fault::Partition`].
//! - `target.rs`: `-H` values: CIDR parser, host-name checks, resolution, set elements.
//! - `rules.rs`: the nftables JSON document (pure), `render.rs`: its nft-syntax view.
//! - `fault.rs`: the fault (plan, resolve, apply, observe, revert).
//! - `update.rs`: the hidden `__targets` sub-command that updates a running partition's
//!   sets (remote mode keeps `-t SERVICE` current with it).
//! - `watch.rs`: counter samples; `observations.rs`: the report's typed `observations`;
//!   `probe.rs`: the TCP connect probe; `summary.rs`: the run in sentences.
//! - `nft` and `watchdog` (from chaos-common): running `nft`, and the process that
//!   removes the table if this one is killed.

pub mod cli;
pub mod fault;
pub mod help;
pub mod observations;
pub mod probe;
pub mod render;
pub mod rules;
pub mod summary;
pub mod target;
pub mod update;
pub mod watch;

/// The tool's name: its tables are `chaos-net-partition-<run id>`.
pub const TOOL: &str = "net-partition";

// Shared with the other table-owning tool; they live in chaos-common.
pub use chaos_common::{nft, watchdog};
