//! What the proxy saw: counters shared by every connection task, the delays actually
//! applied (measured from arrival to delivery, so timer lateness is included), and
//! errors by cause. Connection tasks see only this (and a [`Counter`] to bump), never
//! the proxy's own state.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Applied-delay samples kept for percentiles; beyond this they are counted only
/// (8 MB at most).
const MAX_SAMPLES: usize = 2_000_000;

/// The plain counters, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Connections,
    ConnectionsDelayed,
    ChunksDelayed,
    Requests,
    RequestsDelayed,
    BytesUpstream,
    BytesDownstream,
    ResetsFromClient,
    ResetsFromUpstream,
    /// HTTP connections the drain closed between two requests.
    ClosedIdle,
    /// Connections still open when the drain ended, closed by the proxy.
    CutAtEnd,
}

const COUNTERS: usize = Counter::CutAtEnd as usize + 1;

#[derive(Debug, Default)]
pub struct Stats {
    counters: [AtomicU64; COUNTERS],
    active: AtomicU64,
    peak_active: AtomicU64,
    delays_us: Mutex<Vec<u32>>,
    upstream_errors: Mutex<BTreeMap<String, u64>>,
    accept_errors: Mutex<BTreeMap<String, u64>>,
    passthrough: Mutex<BTreeMap<String, u64>>,
}

fn bump_map(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    if let Ok(mut map) = map.lock() {
        *map.entry(key.to_owned()).or_default() += 1;
    }
}

fn copy_map(map: &Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    map.lock().map(|m| m.clone()).unwrap_or_default()
}

impl Stats {
    pub fn add(&self, counter: Counter, by: u64) {
        self.counters[counter as usize].fetch_add(by, Ordering::Relaxed);
    }

    pub fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }

    /// A connection was accepted; pair with [`Stats::connection_ended`].
    pub fn connection_started(&self) {
        self.bump(Counter::Connections);
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_active.fetch_max(now, Ordering::Relaxed);
    }

    pub fn connection_ended(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    pub fn peak_active(&self) -> u64 {
        self.peak_active.load(Ordering::Relaxed)
    }

    /// Records one applied delay (arrival to delivery).
    pub fn record_delay(&self, applied: Duration) {
        let micros = u32::try_from(applied.as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut samples) = self.delays_us.lock()
            && samples.len() < MAX_SAMPLES
        {
            samples.push(micros);
        }
    }

    pub fn delays_us(&self) -> Vec<u32> {
        self.delays_us.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// An upstream failed: `cause` is short and stable ("connect: connection refused").
    pub fn upstream_error(&self, cause: &str) {
        bump_map(&self.upstream_errors, cause);
    }

    pub fn upstream_errors(&self) -> BTreeMap<String, u64> {
        copy_map(&self.upstream_errors)
    }

    /// Accepting a connection failed (the open-files limit, most often).
    pub fn accept_error(&self, cause: &str) {
        bump_map(&self.accept_errors, cause);
    }

    pub fn accept_errors(&self) -> BTreeMap<String, u64> {
        copy_map(&self.accept_errors)
    }

    /// A connection stopped being parsed as HTTP, for `reason`.
    pub fn passthrough(&self, reason: &str) {
        bump_map(&self.passthrough, reason);
    }

    pub fn passthroughs(&self) -> BTreeMap<String, u64> {
        copy_map(&self.passthrough)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_grouped_by_cause() {
        let stats = Stats::default();
        stats.upstream_error("connect: connection refused");
        stats.upstream_error("connect: connection refused");
        stats.accept_error("too many open files");
        let errors = stats.upstream_errors();
        assert_eq!(errors["connect: connection refused"], 2);
        assert_eq!(stats.accept_errors().values().sum::<u64>(), 1);
    }

    #[test]
    fn peak_active_tracks_the_maximum() {
        let stats = Stats::default();
        stats.connection_started();
        stats.connection_started();
        stats.connection_ended();
        stats.connection_started();
        assert_eq!(stats.peak_active(), 2);
        assert_eq!(stats.active(), 2);
        assert_eq!(stats.get(Counter::Connections), 3);
    }
}
