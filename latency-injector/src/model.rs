//! The latency model: how long each chunk or request is held, and which connections or
//! requests are affected. Pure, so it is table-tested.

use std::time::Duration;

use serde::Serialize;

/// Which way the delayed bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client to upstream (requests): the default.
    Upstream,
    /// Upstream to client (responses).
    Downstream,
    /// Both ways (a round trip then gains twice the latency).
    Both,
}

impl Direction {
    pub fn delays_upstream(self) -> bool {
        matches!(self, Direction::Upstream | Direction::Both)
    }

    pub fn delays_downstream(self) -> bool {
        matches!(self, Direction::Downstream | Direction::Both)
    }
}

/// latency ± jitter (uniform), applied to `probability` percent of connections or requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyModel {
    pub latency: Duration,
    pub jitter: Duration,
    /// Percent, 0-100.
    pub probability: f64,
    pub direction: Direction,
}

impl LatencyModel {
    /// True when nothing is ever delayed (0 ms ± 0 ms, or probability 0): the proxy
    /// then copies bytes straight through.
    pub fn is_noop(&self) -> bool {
        (self.latency.is_zero() && self.jitter.is_zero()) || self.probability <= 0.0
    }

    /// Whether a new connection or request is affected, from one uniform draw.
    pub fn affects(&self, rng: &mut Rng) -> bool {
        !self.is_noop() && rng.unit() * 100.0 < self.probability
    }

    /// One delay: latency plus a uniform draw in [-jitter, +jitter], never below zero.
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter = self.jitter.as_secs_f64();
        let offset = (rng.unit() * 2.0 - 1.0) * jitter;
        Duration::from_secs_f64((self.latency.as_secs_f64() + offset).max(0.0))
    }
}

/// SplitMix64: tiny, fast, good enough for jitter and sampling (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from the clock and a per-call counter, so that connections
    /// accepted in the same nanosecond still draw differently.
    pub fn from_entropy() -> Rng {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Rng(nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(latency_ms: u64, jitter_ms: u64, probability: f64) -> LatencyModel {
        LatencyModel {
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
            probability,
            direction: Direction::Upstream,
        }
    }

    #[test]
    fn samples_stay_within_latency_plus_minus_jitter() {
        let mut rng = Rng::new(7);
        let m = model(100, 20, 100.0);
        let samples: Vec<Duration> = (0..10_000).map(|_| m.sample(&mut rng)).collect();
        assert!(samples.iter().all(|d| *d >= Duration::from_millis(80)));
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(120)));
        let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / 10_000.0;
        assert!((mean - 0.1).abs() < 0.001, "mean {mean}");
    }

    #[test]
    fn jitter_larger_than_latency_never_goes_negative() {
        let mut rng = Rng::new(1);
        let m = model(5, 50, 100.0);
        assert!((0..1000).all(|_| m.sample(&mut rng) <= Duration::from_millis(55)));
    }

    #[test]
    fn no_jitter_is_exact() {
        let mut rng = Rng::new(3);
        assert_eq!(
            model(250, 0, 100.0).sample(&mut rng),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn probability_selects_about_that_share() {
        let table = [(0.0, 0, 0), (100.0, 10_000, 10_000), (30.0, 2_800, 3_200)];
        for (probability, low, high) in table {
            let mut rng = Rng::new(11);
            let m = model(100, 0, probability);
            let hits = (0..10_000).filter(|_| m.affects(&mut rng)).count();
            assert!((low..=high).contains(&hits), "{probability}%: {hits}");
        }
    }

    #[test]
    fn zero_latency_is_a_noop() {
        assert!(model(0, 0, 100.0).is_noop());
        assert!(model(10, 0, 0.0).is_noop());
        assert!(!model(0, 5, 100.0).is_noop());
    }

    #[test]
    fn directions() {
        assert!(Direction::Upstream.delays_upstream() && !Direction::Upstream.delays_downstream());
        assert!(
            !Direction::Downstream.delays_upstream() && Direction::Downstream.delays_downstream()
        );
        assert!(Direction::Both.delays_upstream() && Direction::Both.delays_downstream());
    }
}
