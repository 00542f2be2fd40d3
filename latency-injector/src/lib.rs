//! latency-injector: adds precise, concurrent latency to TCP connections and HTTP
//! requests from user space, like toxiproxy, without `tc netem`.
//!
//! Three placements, one proxy:
//! - explicit (`--listen ADDR --upstream HOST:PORT`): no privilege; clients are pointed
//!   at the listen address;
//! - transparent egress (`--target HOST[:PORT]`, `-H`/`-p`): outbound connections of
//!   this network namespace to the target are redirected (nftables nat output) into the
//!   proxy, which recovers the original destination (SO_ORIGINAL_DST) and dials it with
//!   a socket mark the rule excludes (SO_MARK);
//! - transparent ingress (`--app-port`, default 3000, with `--endpoint`): inbound
//!   connections to the application port are redirected (nat prerouting) into the proxy,
//!   which forwards to the application on 127.0.0.1.
//!
//! TCP: each chunk travelling toward the upstream (or back, with `--direction`) is held
//! for latency ± jitter from the moment it arrived, in order, without serialising
//! connections. HTTP (`--endpoint`, `--method`, `--http`): hyper on both sides; only
//! matching requests are held; keep-alive and streaming bodies pass through.
//!
//! Privileges: none for explicit mode; the transparent modes need CAP_NET_ADMIN in the
//! network namespace (nftables, SO_MARK, `ss -K`) and the `nft` and `ss` binaries.
//!
//! Revert: the transparent modes delete the run's table `inet chaos-latency-injector-<run
//! id>` first (new connections go direct); a watchdog process deletes it if the injector
//! is SIGKILLed; `--cleanup` deletes every such table. Then the proxy stops accepting,
//! in-flight connections get `--drain-timeout` to finish (HTTP connections close after
//! the request in flight), and the rest are closed and counted.
//!
//! # Layout
//! - `cli.rs`: flags, mode selection and validation into a [`fault::LatencyProxy`]
//!   (table tests in `cli_tests.rs`); `target.rs`: the chosen mode, address resolution.
//! - `fault.rs`: the fault contract (plan, baseline, apply, observe, conclude, revert).
//! - `proxy.rs`: listener, connection tasks, upstream connect, drain.
//! - `pipe.rs`: one direction of a TCP connection, immediate or per-chunk delayed.
//! - `http.rs`: HTTP mode (hyper server + client per connection, request matching).
//! - `timer.rs`: the precise hold timer.
//! - `model.rs`: the latency model (latency, jitter, probability, direction) and its RNG.
//! - `stats.rs`: counters, applied-delay percentiles, upstream errors by cause.
//! - `rules.rs`: nftables rule builders; `nft` (chaos-common): running `nft` (JSON API).
//! - `redirect.rs`: the table, its watchdog (chaos-common), bypassing connections.
//! - `conns.rs`: established connections from /proc/net/tcp{,6}, `ss -K`.
//! - `sockets.rs`: SO_ORIGINAL_DST and SO_MARK.
//! - `remote.rs`: remote mode's forms (docs/remote.md).

pub mod cli;
pub mod conns;
pub mod fault;
pub mod http;
pub mod model;
pub mod pipe;
pub mod proxy;
pub mod redirect;
pub mod remote;
pub mod rules;
pub mod sockets;
pub mod stats;
pub mod target;
pub mod timer;

/// The tool's name: its tables are `chaos-latency-injector-<run id>`.
pub const TOOL: &str = "latency-injector";

// Shared with the other table-owning tool; they live in chaos-common.
pub use chaos_common::{nft, watchdog};
