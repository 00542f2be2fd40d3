//! Resource usage of running containers, from their cgroups, as the kubelet's resource
//! metrics give it to metrics-server: CPU as the rate of the CPU-time counter over the
//! last [`WINDOW`] (millicores), memory as the working set. One reading per container
//! per [`Sampler::sample`] call (the lab calls it every second).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::cgroups::Cgroup;

/// The rate window (metrics-server's resolution is 15 s; the lab reacts faster).
pub const WINDOW: Duration = Duration::from_secs(5);
/// Readings kept per container.
const KEEP: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu_millis: f64,
    pub memory_bytes: u64,
}

/// One reading: (time, CPU ns, working set bytes).
type Reading = (Instant, u64, u64);

#[derive(Debug, Default)]
pub struct Sampler {
    /// (pod uid, container) -> readings.
    readings: BTreeMap<(String, String), VecDeque<Reading>>,
}

/// millicores from two CPU-time readings.
pub fn cpu_rate(a: (Instant, u64), b: (Instant, u64)) -> Option<f64> {
    let dt = b.0.checked_duration_since(a.0)?.as_secs_f64();
    if dt <= 0.0 || b.1 < a.1 {
        return None;
    }
    Some((b.1 - a.1) as f64 / 1e9 / dt * 1000.0)
}

impl Sampler {
    /// Reads every `(pod uid, container, cgroup)` now; forgets containers not listed.
    pub fn sample(&mut self, now: Instant, running: &[(String, String, Cgroup)]) {
        let live: Vec<(String, String)> = running
            .iter()
            .map(|(p, c, _)| (p.clone(), c.clone()))
            .collect();
        self.readings.retain(|k, _| live.contains(k));
        for (pod, container, cgroup) in running {
            let (Ok(cpu), Ok(mem)) = (cgroup.cpu_usage_ns(), cgroup.memory_working_set()) else {
                continue;
            };
            let q = self
                .readings
                .entry((pod.clone(), container.clone()))
                .or_default();
            // A restarted container (new counter below the old one) starts over.
            if q.back().is_some_and(|(_, last, _)| cpu < *last) {
                q.clear();
            }
            q.push_back((now, cpu, mem));
            while q.len() > KEEP {
                q.pop_front();
            }
        }
    }

    /// A container's usage over the window (needs two readings).
    pub fn container(&self, pod: &str, container: &str) -> Option<Usage> {
        let q = self.readings.get(&(pod.to_owned(), container.to_owned()))?;
        let last = q.back()?;
        let first = q
            .iter()
            .find(|(t, _, _)| last.0.duration_since(*t) <= WINDOW)
            .filter(|f| f.0 < last.0)?;
        Some(Usage {
            cpu_millis: cpu_rate((first.0, first.1), (last.0, last.1))?,
            memory_bytes: last.2,
        })
    }

    /// Every container of a pod with a reading.
    pub fn pod(&self, pod: &str) -> Vec<(String, Usage)> {
        self.readings
            .keys()
            .filter(|(p, _)| p == pod)
            .filter_map(|(p, c)| self.container(p, c).map(|u| (c.clone(), u)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_core_is_500_millicores() {
        let t = Instant::now();
        let rate = cpu_rate(
            (t, 1_000_000_000),
            (t + Duration::from_secs(2), 2_000_000_000),
        )
        .unwrap();
        assert!((rate - 500.0).abs() < 1e-6, "{rate}");
        assert!(cpu_rate((t, 5), (t, 6)).is_none());
        assert!(cpu_rate((t, 6), (t + Duration::from_secs(1), 5)).is_none());
    }
}
