//! latency-injector: adds precise, concurrent latency to TCP connections and HTTP
//! requests, from user space like toxiproxy, or for TCP egress with the kernel's netem.
//!
//! Two engines (`--engine`, `engine.rs`): the proxy (every mode) and netem (TCP egress:
//! an owned prio/netem/u32 setup on the egress interfaces, `netem.rs`); `auto` picks
//! netem for TCP egress where the kernel has sch_netem and no foreign root qdisc is in
//! the way, else the proxy. Without a target, every outgoing TCP connection of the
//! namespace is delayed (netem only). Three placements for the proxy:
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
//! What passes through is what the peers sent, byte for byte, and closes as they came:
//! a FIN half-closes the other side, a reset resets it (after the bytes before it), one
//! upstream connection per client connection, an upstream that refuses gives the client
//! a reset. TCP mode holds each chunk (and the close after it) for latency ± jitter from
//! its arrival. HTTP mode (`--endpoint`, `--method`, `--http`) finds request boundaries
//! with `httparse` and Content-Length / chunked framing (responses are framed too) and
//! holds only the matching requests; anything that is not HTTP/1.x, and everything after
//! a 101 or CONNECT, passes through untouched.
//!
//! Privileges: none for explicit mode; the transparent modes need CAP_NET_ADMIN in the
//! network namespace (nftables, SO_MARK, IP_TRANSPARENT, policy routing, `ss -K`) and the
//! `nft`, `ip` and `ss` binaries; the netem engine CAP_NET_ADMIN, `tc` and `ip`.
//!
//! Revert: the transparent modes first let new connections go direct (egress empties the
//! table's targets, ingress deletes its table), then the proxy drains the connections it
//! has (bounded by `--drain-timeout`; a signal ends the drain), then the table (egress)
//! and the policy routing (ingress) go. A watchdog process deletes the table, and a guard
//! process the routing, if the injector is SIGKILLed; `--cleanup` deletes both kinds.
//! netem: the filters go first (new packets go direct), the held packets leave, then the
//! run's root qdiscs are deleted by handle (the default qdisc comes back); a guard process
//! deletes them if the injector dies, and `--cleanup` deletes every root qdisc with the
//! engine's marker (`qdiscs.rs`).
//!
//! # Layout
//! - `cli.rs`: flags and their validation (table tests in `cli_tests.rs`); `size.rs`:
//!   byte sizes; `target.rs`: the chosen mode, address resolution; `settings.rs`: the
//!   checked flags; `config.rs`: from them to the fault and its parameters.
//! - `fault.rs`: the tool's fault, dispatching to the chosen engine; `engine.rs`: the
//!   choice (pure) and the facts it reads; `engine_config.rs`: what the flags allow.
//! - netem: `netem.rs` (apply, observe, revert, cleanup), `netem_plan.rs`, `tc.rs` (the
//!   `tc` argument vectors), `qdiscs.rs` (reading `tc -j`: default, ours, foreign roots;
//!   counters), `devices.rs` (egress interfaces), `probe.rs` (does the kernel have a
//!   qdisc kind, asked over netlink without creating one), `netem_guard.rs`.
//! - `proxy_fault.rs`: the proxy's fault contract (baseline, apply, observe, conclude, revert);
//!   `placement.rs`: where the proxy sits; `plan.rs`: the plan; `observations.rs`: the
//!   report's typed observations; `summary.rs`: the run in sentences.
//! - `proxy.rs`: listener and drain; `accept.rs`: the accept loop; `connection.rs`: one
//!   connection (relay, lifecycle); `dial.rs`: its upstream; `leg.rs`: one direction
//!   (read, queue, deliver bytes and closes); `queue.rs`: the pieces on their way and the
//!   `Schedule` that times them; `schedule.rs`: TCP schedules (at once, per-chunk delay);
//!   `http.rs`: HTTP schedules; `exchanges.rs`: what an HTTP connection's legs share; `framing.rs`: HTTP/1.x message boundaries; `chunked.rs`:
//!   chunked bodies; `heads.rs`: heads with httparse; `matching.rs`: which requests match
//!   (normalised paths).
//! - `timer.rs`: the precise hold timer; `model.rs`: latency, jitter, probability,
//!   direction and the RNG; `stats.rs`: counters and errors by cause.
//! - `rules.rs`: nftables rule builders; `nft` (chaos-common): running `nft`;
//!   `redirect.rs`: the table, its watchdog, the routing and its guard, bypassing
//!   connections; `routes.rs`: ingress's policy routing; `guard.rs`: the guard processes;
//!   `conns.rs`: established connections from /proc/net/tcp{,6}, `ss -K`;
//!   `sockets.rs`: socket options (SO_ORIGINAL_DST, SO_MARK, IP_TRANSPARENT, SO_LINGER).
//! - `remote.rs`: remote mode's forms (docs/remote.md).

pub mod accept;
pub mod chunked;
pub mod cli;
pub mod config;
pub mod connection;
pub mod conns;
pub mod devices;
pub mod dial;
pub mod engine;
pub mod engine_config;
pub mod exchanges;
pub mod fault;
pub mod framing;
pub mod guard;
pub mod heads;
pub mod help;
pub mod http;
pub mod leg;
pub mod matching;
pub mod model;
pub mod netem;
pub mod netem_guard;
pub mod netem_plan;
pub mod observations;
pub mod placement;
pub mod plan;
pub mod probe;
pub mod proxy;
pub mod proxy_fault;
pub mod qdiscs;
pub mod queue;
pub mod redirect;
pub mod remote;
pub mod routes;
pub mod rules;
pub mod schedule;
pub mod settings;
pub mod size;
pub mod sockets;
pub mod stats;
pub mod summary;
pub mod target;
pub mod tc;
pub mod timer;

/// The tool's name: its tables are `chaos-latency-injector-<run id>`.
pub const TOOL: &str = "latency-injector";

// Shared with the other table-owning tool; they live in chaos-common.
pub use chaos_common::{nft, watchdog};
