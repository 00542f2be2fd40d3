//! Observation: 1 Hz samples of each worker's utilisation, and the summary of a run.
//! Pure arithmetic on the CPU counters the workers publish.

use std::time::Duration;

use chaos_common::report::round;
use serde::{Deserialize, Serialize};

/// One sample of the report: utilisation over the interval that ended `tMs` after apply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Milliseconds since apply completed (the workers were started).
    pub t_ms: f64,
    /// Mean per-worker utilisation over the interval, in percent of one CPU (the unit
    /// of --cpu-percent).
    pub cpu_percent: f64,
    /// Each worker's utilisation over the interval, in percent of one CPU.
    pub per_worker_cpu_percent: Vec<f64>,
}

/// Samples shorter than this are skipped (the runner's first tick comes right after
/// apply, when nothing has been measured yet).
const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Turns cumulative CPU counters read at intervals into samples.
#[derive(Debug, Clone)]
pub struct Sampler {
    last_at: Duration,
    last_cpu: Vec<u64>,
    samples: Vec<Sample>,
}

impl Sampler {
    pub fn new(workers: usize) -> Sampler {
        Sampler {
            last_at: Duration::ZERO,
            last_cpu: vec![0; workers],
            samples: Vec::new(),
        }
    }

    /// Records the counters `cpu_ns` read `at` after apply; returns the new sample.
    pub fn record(&mut self, at: Duration, cpu_ns: &[u64]) -> Option<&Sample> {
        let wall = at.checked_sub(self.last_at)?;
        if wall < MIN_INTERVAL || cpu_ns.len() != self.last_cpu.len() {
            return None;
        }
        let per_worker: Vec<f64> = cpu_ns
            .iter()
            .zip(&self.last_cpu)
            .map(|(now, before)| round(percent(now.saturating_sub(*before), wall), 2))
            .collect();
        let deltas: Vec<u64> = cpu_ns
            .iter()
            .zip(&self.last_cpu)
            .map(|(now, before)| now.saturating_sub(*before))
            .collect();
        self.samples.push(Sample {
            t_ms: round(at.as_secs_f64() * 1000.0, 0),
            cpu_percent: round(utilisation_percent(&deltas, wall), 2),
            per_worker_cpu_percent: per_worker,
        });
        self.last_at = at;
        self.last_cpu = cpu_ns.to_vec();
        self.samples.last()
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

/// Mean per-worker utilisation: Σ CPU / (wall × workers) × 100.
pub fn utilisation_percent(cpu_ns: &[u64], wall: Duration) -> f64 {
    if cpu_ns.is_empty() {
        return 0.0;
    }
    let total: u64 = cpu_ns.iter().sum();
    percent(total, wall) / cpu_ns.len() as f64
}

fn percent(cpu_ns: u64, wall: Duration) -> f64 {
    let wall = wall.as_nanos() as f64;
    if wall <= 0.0 {
        0.0
    } else {
        cpu_ns as f64 / wall * 100.0
    }
}

/// The difference of a counter between two snapshots, when both were readable.
pub fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn utilisation_is_the_mean_per_worker() {
        let wall = Duration::from_secs(1);
        assert_eq!(utilisation_percent(&[500 * MS], wall), 50.0);
        assert_eq!(utilisation_percent(&[500 * MS, 300 * MS], wall), 40.0);
        assert_eq!(utilisation_percent(&[], wall), 0.0);
        assert_eq!(utilisation_percent(&[5], Duration::ZERO), 0.0);
    }

    #[test]
    fn samples_are_per_interval() {
        let mut s = Sampler::new(2);
        // The first tick right after apply is skipped.
        assert!(s.record(Duration::from_millis(1), &[0, 0]).is_none());
        let first = s
            .record(Duration::from_secs(1), &[500 * MS, 300 * MS])
            .cloned();
        assert_eq!(
            first,
            Some(Sample {
                t_ms: 1000.0,
                cpu_percent: 40.0,
                per_worker_cpu_percent: vec![50.0, 30.0]
            })
        );
        let second = s
            .record(Duration::from_secs(2), &[1000 * MS, 900 * MS])
            .cloned();
        assert_eq!(
            second.map(|x| x.per_worker_cpu_percent),
            Some(vec![50.0, 60.0])
        );
        assert_eq!(s.samples().len(), 2);
    }

    #[test]
    fn delta_needs_both_snapshots() {
        assert_eq!(delta(Some(3), Some(10)), Some(7));
        assert_eq!(delta(None, Some(10)), None);
        assert_eq!(delta(Some(3), None), None);
    }
}
