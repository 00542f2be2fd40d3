//! The report's `observations` for latency-injector, typed (documented field by field
//! here, in docs/report.schema.json and in docs/latency-injector.md).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::{Counter, Stats};

pub use chaos_common::report::round;

/// Occurrences by cause.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub total: u64,
    pub by_cause: BTreeMap<String, u64>,
}

impl Tally {
    fn of(by_cause: BTreeMap<String, u64>) -> Tally {
        Tally {
            total: by_cause.values().sum(),
            by_cause,
        }
    }
}

/// The holds actually applied, from arrival to delivery (timer lateness included):
/// per chunk in TCP mode, per request in HTTP mode. Nearest-rank percentiles.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedDelay {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl AppliedDelay {
    pub fn of(mut samples_us: Vec<u32>) -> AppliedDelay {
        if samples_us.is_empty() {
            return AppliedDelay::default();
        }
        samples_us.sort_unstable();
        let n = samples_us.len();
        let ms = |us: u32| Some(round(f64::from(us) / 1000.0, 3));
        let rank = |p: f64| {
            let index = ((p / 100.0) * n as f64).ceil() as usize;
            ms(samples_us[index.clamp(1, n) - 1])
        };
        AppliedDelay {
            count: n as u64,
            p50_ms: rank(50.0),
            p95_ms: rank(95.0),
            p99_ms: rank(99.0),
            max_ms: ms(samples_us[n - 1]),
        }
    }
}

/// What the proxy counted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// TCP mode: connections whose chunks were held (`--probability` picks them).
    pub connections_delayed: u64,
    pub peak_active_connections: u64,
    /// TCP mode: chunks held.
    pub chunks_delayed: u64,
    /// HTTP mode: request heads parsed, and those held.
    pub requests: u64,
    pub requests_delayed: u64,
    /// Bytes delivered toward the upstream and toward the clients.
    pub bytes_upstream: u64,
    pub bytes_downstream: u64,
    /// Resets (or read errors) that came from each side and were passed on.
    pub resets_from_client: u64,
    pub resets_from_upstream: u64,
    pub applied_delay: AppliedDelay,
    /// Upstreams that refused or failed, by cause (`connect: connection refused`).
    pub upstream_errors: Tally,
    /// Failed accepts (`open-files limit`), apart from upstream errors.
    pub accept_errors: Tally,
    /// HTTP mode: connections that stopped being parsed and passed through untouched,
    /// by reason (`not-http1`, `upgrade`, `connect`, `head-too-large`,
    /// `header-timeout`, `bad-framing`).
    pub passthrough: Tally,
}

impl Counters {
    pub fn of(stats: &Stats) -> Counters {
        Counters {
            connections: stats.get(Counter::Connections),
            connections_delayed: stats.get(Counter::ConnectionsDelayed),
            peak_active_connections: stats.peak_active(),
            chunks_delayed: stats.get(Counter::ChunksDelayed),
            requests: stats.get(Counter::Requests),
            requests_delayed: stats.get(Counter::RequestsDelayed),
            bytes_upstream: stats.get(Counter::BytesUpstream),
            bytes_downstream: stats.get(Counter::BytesDownstream),
            resets_from_client: stats.get(Counter::ResetsFromClient),
            resets_from_upstream: stats.get(Counter::ResetsFromUpstream),
            applied_delay: AppliedDelay::of(stats.delays_us()),
            upstream_errors: Tally::of(stats.upstream_errors()),
            accept_errors: Tally::of(stats.accept_errors()),
            passthrough: Tally::of(stats.passthroughs()),
        }
    }
}

/// One observation (1 Hz).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Milliseconds since apply completed.
    pub t_ms: u64,
    pub active_connections: u64,
    pub connections: u64,
    pub chunks_delayed: u64,
    pub requests_delayed: u64,
    pub upstream_errors: u64,
}

impl Sample {
    pub fn of(stats: &Stats, t_ms: u64) -> Sample {
        Sample {
            t_ms,
            active_connections: stats.active(),
            connections: stats.get(Counter::Connections),
            chunks_delayed: stats.get(Counter::ChunksDelayed),
            requests_delayed: stats.get(Counter::RequestsDelayed),
            upstream_errors: stats.upstream_errors().values().sum(),
        }
    }
}

/// Transparent modes: the redirect and the connections it could not catch.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redirected {
    /// `inet chaos-latency-injector-<run id>`.
    pub table: String,
    /// Connections the rule redirected (its nftables counter; null if unreadable).
    pub redirected_connections: Option<u64>,
    /// Matching connections established before the table that were still open after it
    /// (null if /proc could not be read: see `bypassError`).
    pub bypassing_connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bypass_error: Option<String>,
    /// `--reset-existing` was given and there was something to close.
    pub reset: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_error: Option<String>,
    /// Ingress: `preserved` (the application sees each client's own address) or
    /// `rewritten` (`--allow-source-rewrite`: it sees 127.0.0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<&'static str>,
}

/// The report's `observations`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    /// The address the proxy listened on.
    pub listen: String,
    #[serde(flatten)]
    pub counters: Counters,
    pub samples: Vec<Sample>,
    #[serde(flatten)]
    pub redirect: Option<Redirected>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let p = AppliedDelay::of(samples);
        assert_eq!(p.count, 100);
        assert_eq!(
            (p.p50_ms, p.p95_ms, p.p99_ms),
            (Some(50.0), Some(95.0), Some(99.0))
        );
        assert_eq!(p.max_ms, Some(100.0));
        assert_eq!(AppliedDelay::of(vec![1500]).p50_ms, Some(1.5));
        assert!(AppliedDelay::of(Vec::new()).p99_ms.is_none());
    }

    #[test]
    fn observations_serialise_in_camel_case_with_units() {
        let stats = Stats::default();
        stats.upstream_error("connect: connection refused");
        let observations = Observations {
            listen: "127.0.0.1:1".into(),
            counters: Counters::of(&stats),
            samples: vec![Sample::of(&stats, 1000)],
            redirect: None,
        };
        let json = serde_json::to_value(&observations).unwrap_or_default();
        assert_eq!(
            json["upstreamErrors"]["byCause"]["connect: connection refused"],
            1
        );
        assert_eq!(json["samples"][0]["tMs"], 1000);
        assert!(json["appliedDelay"]["p50Ms"].is_null());
        assert!(json.get("table").is_none());
    }
}
