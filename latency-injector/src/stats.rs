//! What the proxy saw: counters shared by every connection task, the delays actually
//! applied (measured from arrival to forward, so scheduler lateness is included), and
//! upstream errors by cause.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// Applied-delay samples kept for percentiles; beyond this they are counted only
/// (8 MB at most).
const MAX_SAMPLES: usize = 2_000_000;

#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub connections_delayed: AtomicU64,
    pub active: AtomicU64,
    pub peak_active: AtomicU64,
    pub chunks_delayed: AtomicU64,
    pub requests: AtomicU64,
    pub requests_delayed: AtomicU64,
    pub bytes_upstream: AtomicU64,
    pub bytes_downstream: AtomicU64,
    pub cut_at_end: AtomicU64,
    delays_us: Mutex<Vec<u32>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

fn count(n: &AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

fn bump(n: &AtomicU64, by: u64) {
    n.fetch_add(by, Ordering::Relaxed);
}

impl Stats {
    pub fn add(&self, counter: &AtomicU64, by: u64) {
        bump(counter, by);
    }

    /// A connection started; returns nothing, pair with [`Stats::connection_ended`].
    pub fn connection_started(&self, delayed: bool) {
        bump(&self.connections, 1);
        if delayed {
            bump(&self.connections_delayed, 1);
        }
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_active.fetch_max(now, Ordering::Relaxed);
    }

    pub fn connection_ended(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn active(&self) -> u64 {
        count(&self.active)
    }

    /// Records one applied delay (arrival to forward).
    pub fn record_delay(&self, applied: Duration) {
        let micros = u32::try_from(applied.as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut samples) = self.delays_us.lock()
            && samples.len() < MAX_SAMPLES
        {
            samples.push(micros);
        }
    }

    /// Records an upstream error under a short cause ("connection refused", "timed out").
    pub fn upstream_error(&self, cause: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(cause.to_owned()).or_default() += 1;
        }
    }

    pub fn upstream_errors(&self) -> u64 {
        self.errors
            .lock()
            .map(|e| e.values().sum())
            .unwrap_or_default()
    }

    /// The observations of the report (camelCase).
    pub fn to_json(&self) -> Value {
        let delays = self.delays_us.lock().map(|s| s.clone()).unwrap_or_default();
        let errors = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        json!({
            "connections": count(&self.connections),
            "connectionsDelayed": count(&self.connections_delayed),
            "peakActiveConnections": count(&self.peak_active),
            "chunksDelayed": count(&self.chunks_delayed),
            "requests": count(&self.requests),
            "requestsDelayed": count(&self.requests_delayed),
            "bytesUpstream": count(&self.bytes_upstream),
            "bytesDownstream": count(&self.bytes_downstream),
            "appliedDelayMs": percentiles_ms(delays),
            "upstreamErrors": {
                "total": errors.values().sum::<u64>(),
                "byCause": errors,
            },
            "connectionsCutAtEnd": count(&self.cut_at_end),
        })
    }
}

/// p50/p95/p99/max (nearest rank) in milliseconds of microsecond samples.
pub fn percentiles_ms(mut samples_us: Vec<u32>) -> Value {
    if samples_us.is_empty() {
        return json!({"count": 0, "p50": null, "p95": null, "p99": null, "max": null});
    }
    samples_us.sort_unstable();
    let n = samples_us.len();
    let rank = |p: f64| {
        let index = ((p / 100.0) * n as f64).ceil() as usize;
        f64::from(samples_us[index.clamp(1, n) - 1]) / 1000.0
    };
    json!({
        "count": n,
        "p50": rank(50.0),
        "p95": rank(95.0),
        "p99": rank(99.0),
        "max": f64::from(samples_us[n - 1]) / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let p = percentiles_ms(samples);
        assert_eq!(p["count"], 100);
        assert_eq!(p["p50"], 50.0);
        assert_eq!(p["p95"], 95.0);
        assert_eq!(p["p99"], 99.0);
        assert_eq!(p["max"], 100.0);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let p = percentiles_ms(vec![1500]);
        assert_eq!(p["p50"], 1.5);
        assert_eq!(p["max"], 1.5);
    }

    #[test]
    fn no_samples_are_null() {
        assert!(percentiles_ms(Vec::new())["p99"].is_null());
    }

    #[test]
    fn errors_are_grouped_by_cause() {
        let stats = Stats::default();
        stats.upstream_error("connection refused");
        stats.upstream_error("connection refused");
        stats.upstream_error("timed out");
        let json = stats.to_json();
        assert_eq!(json["upstreamErrors"]["total"], 3);
        assert_eq!(json["upstreamErrors"]["byCause"]["connection refused"], 2);
    }

    #[test]
    fn peak_active_tracks_the_maximum() {
        let stats = Stats::default();
        stats.connection_started(true);
        stats.connection_started(false);
        stats.connection_ended();
        stats.connection_started(false);
        assert_eq!(stats.to_json()["peakActiveConnections"], 2);
        assert_eq!(stats.to_json()["connectionsDelayed"], 1);
        assert_eq!(stats.active(), 2);
    }
}
