//! Samples taken while the allocator runs, and the figures computed from them: the
//! achieved growth rate (a least-squares line over the ramp), the allocator's CPU cost,
//! and the ~1 Hz downsampling of the series the report carries.

use crate::units::{MIB, round};
use crate::watch::TICKS_PER_SECOND;

/// One observation, `t` seconds after the allocator said it was ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: f64,
    /// VmRSS of the allocator, bytes.
    pub resident: u64,
    /// Usage of the memory cgroup the allocator is charged to, bytes.
    pub cgroup_usage: Option<u64>,
    /// utime + stime of the allocator, ticks.
    pub cpu_ticks: Option<u64>,
}

/// Slope of the least-squares line through `points` (x, y); None with fewer than two
/// distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The samples taken while memory was growing: up to the end of the ramp.
fn growing(samples: &[Sample], ramp_seconds: f64) -> impl Iterator<Item = &Sample> {
    samples.iter().filter(move |s| s.t <= ramp_seconds)
}

/// Achieved growth in bytes per second: the slope of resident memory over the ramp.
/// None when the ramp window holds under half a second of samples.
pub fn achieved_rate(samples: &[Sample], ramp_seconds: f64) -> Option<f64> {
    let points: Vec<(f64, f64)> = growing(samples, ramp_seconds)
        .map(|s| (s.t, s.resident as f64))
        .collect();
    let span = points.last()?.0 - points.first()?.0;
    if span < 0.5 {
        return None;
    }
    slope(&points)
}

/// CPU used by the allocator while growing, in percent of one core.
pub fn cpu_percent(samples: &[Sample], ramp_seconds: f64) -> Option<f64> {
    let with_cpu: Vec<(f64, u64)> = growing(samples, ramp_seconds)
        .filter_map(|s| Some((s.t, s.cpu_ticks?)))
        .collect();
    let (first, last) = (with_cpu.first()?, with_cpu.last()?);
    let seconds = last.0 - first.0;
    if seconds < 0.5 {
        return None;
    }
    let ticks = last.1.saturating_sub(first.1) as f64;
    Some(ticks / TICKS_PER_SECOND / seconds * 100.0)
}

/// About one sample per `every` seconds: the first sample of each interval.
pub fn downsample(samples: &[Sample], every: f64) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut next = 0.0;
    for s in samples {
        if s.t + 1e-9 >= next {
            out.push(*s);
            next = (s.t / every).floor() * every + every;
        }
    }
    out
}

/// Rate in MiB/s and its error against `requested` (bytes/s), in percent.
pub fn rate_figures(achieved: Option<f64>, requested: f64) -> (Option<f64>, Option<f64>) {
    let mb = achieved.map(|a| round(a / MIB as f64, 1));
    let error = achieved.map(|a| round((a - requested) / requested * 100.0, 1));
    (mb, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(rate: f64, until: f64, limit: f64) -> Vec<Sample> {
        (0..100)
            .map(|i| {
                let t = f64::from(i) * 0.1;
                Sample {
                    t,
                    resident: (2.0 * MIB as f64 + (rate * t).min(limit)) as u64,
                    cgroup_usage: None,
                    cpu_ticks: Some((t * 3.0) as u64),
                }
            })
            .take_while(|s| s.t <= until)
            .collect()
    }

    #[test]
    fn slope_of_a_line_is_exact() {
        let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)];
        assert_eq!(slope(&points), Some(2.0));
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn achieved_rate_ignores_the_hold() -> Result<(), String> {
        let rate = 50.0 * MIB as f64;
        let samples = line(rate, 9.9, 200.0 * MIB as f64);
        let achieved = achieved_rate(&samples, 4.0).ok_or("no rate")?;
        assert!((achieved - rate).abs() / rate < 0.01, "{achieved}");
        assert_eq!(achieved_rate(&samples, 0.2), None);
        let (mb, err) = rate_figures(Some(achieved), rate);
        assert_eq!(mb, Some(50.0));
        assert!(err.is_some_and(|e| e.abs() < 1.0));
        Ok(())
    }

    #[test]
    fn cpu_percent_is_per_core() -> Result<(), String> {
        let samples = line(MIB as f64, 9.9, f64::MAX);
        let pct = cpu_percent(&samples, 9.0).ok_or("no cpu")?;
        assert!((pct - 3.0).abs() < 0.2, "{pct}");
        Ok(())
    }

    #[test]
    fn downsampling_keeps_one_per_second() {
        let samples = line(MIB as f64, 9.9, f64::MAX);
        let kept = downsample(&samples, 1.0);
        let times: Vec<f64> = kept.iter().map(|s| (s.t * 10.0).round() / 10.0).collect();
        assert_eq!(
            times,
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
        );
    }
}
