//! latency-injector: adds precise, concurrent latency to TCP connections and HTTP
//! requests from user space, like toxiproxy, without `tc netem`.
//!
//! Explicit proxy mode (`--listen ADDR --upstream HOST:PORT`) needs no privilege: clients
//! are pointed at the listen address. Each chunk travelling toward the upstream (or back,
//! with `--direction`) is held for latency ± jitter from the moment it arrived, in order,
//! without serialising connections. With `--endpoint`/`--method`/`--http` the proxy
//! speaks HTTP (hyper) and holds only matching requests; keep-alive and streaming bodies
//! pass through.
//!
//! Revert: the proxy stops accepting, in-flight connections get `--drain-timeout` to
//! finish (HTTP connections close after the request in flight), the rest are closed and
//! counted. Nothing outlives the process in explicit mode.
//!
//! # Layout
//! - `cli.rs`: flags and their validation into a [`fault::LatencyProxy`].
//! - `fault.rs`: the fault contract (plan, baseline, apply, observe, conclude, revert).
//! - `proxy.rs`: listener, connection tasks, upstream connect, drain.
//! - `pipe.rs`: one direction of a TCP connection, immediate or per-chunk delayed.
//! - `http.rs`: HTTP mode (hyper server + client per connection, request matching).
//! - `model.rs`: the latency model (latency, jitter, probability, direction) and its RNG.
//! - `stats.rs`: counters, applied-delay percentiles, upstream errors by cause.

pub mod cli;
pub mod conns;
pub mod fault;
pub mod http;
pub mod model;
pub mod nft;
pub mod pipe;
pub mod proxy;
pub mod redirect;
pub mod rules;
pub mod sockets;
pub mod stats;
pub mod timer;
pub mod watchdog;
