//! The HorizontalPodAutoscaler algorithm (autoscaling/v2, CPU utilisation), as the
//! Kubernetes documentation describes it, pure so that it is tested without a cluster.
//!
//! Each sync:
//! 1. utilisation = Σ usage / Σ requests over the pods that are Ready and have a reading
//!    (in percent of the CPU request);
//! 2. ratio = utilisation / target; within the tolerance (|ratio − 1| ≤ 0.1) nothing
//!    changes;
//! 3. otherwise desired = ceil(ready pods × ratio). When scaling up, pods that are not
//!    Ready (or have no reading) count as 0 % (the conservative assumption); when scaling
//!    down, pods without a reading count as 100 % of their request;
//! 4. scale-up is limited per sync to max(2 × current, current + 4) (the default
//!    policies: 100 % or 4 pods per 15 s);
//! 5. scale-down is stabilised: the replica count used is the highest recommendation of
//!    the stabilisation window (`behavior.scaleDown.stabilizationWindowSeconds`, default
//!    300 s); scale-up has no window by default;
//! 6. the result is clamped to [minReplicas, maxReplicas].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const TOLERANCE: f64 = 0.1;

/// One pod of the scale target at this sync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodSample {
    pub ready: bool,
    /// CPU in use (millicores), when the metrics have a reading.
    pub usage_millis: Option<f64>,
    /// The sum of its containers' CPU requests (millicores).
    pub request_millis: f64,
}

/// What one sync computes before stabilisation and limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommendation {
    /// Current utilisation in percent of the request (Ready pods with readings).
    pub utilization: u32,
    /// The average usage per Ready pod (millicores).
    pub average_millis: f64,
    pub desired: u32,
}

/// Steps 1-3; `None` when no Ready pod has a reading (the HPA cannot compute).
pub fn recommend(current: u32, target_percent: u32, pods: &[PodSample]) -> Option<Recommendation> {
    let measured: Vec<&PodSample> = pods
        .iter()
        .filter(|p| p.ready && p.usage_millis.is_some() && p.request_millis > 0.0)
        .collect();
    if measured.is_empty() || target_percent == 0 {
        return None;
    }
    let usage: f64 = measured.iter().filter_map(|p| p.usage_millis).sum();
    let requests: f64 = measured.iter().map(|p| p.request_millis).sum();
    let utilization = usage / requests * 100.0;
    let target = f64::from(target_percent);
    let ratio = utilization / target;
    let rec = |desired| Recommendation {
        utilization: utilization.round() as u32,
        average_millis: usage / measured.len() as f64,
        desired,
    };
    if (ratio - 1.0).abs() <= TOLERANCE {
        return Some(rec(current));
    }
    // Missing pods: 0 % when scaling up, 100 % when scaling down (then re-check the
    // direction did not flip, as the controller does).
    let missing: Vec<&PodSample> = pods
        .iter()
        .filter(|p| !(p.ready && p.usage_millis.is_some()) && p.request_millis > 0.0)
        .collect();
    let up = ratio > 1.0;
    let mut total_usage = usage;
    let mut total_requests = requests;
    for p in &missing {
        if up {
            total_requests += p.request_millis;
        } else if p.usage_millis.is_none() {
            total_usage += p.request_millis;
            total_requests += p.request_millis;
        }
    }
    let new_ratio = total_usage / total_requests * 100.0 / target;
    let counted = if up {
        measured.len() + missing.len()
    } else {
        measured.len() + missing.iter().filter(|p| p.usage_millis.is_none()).count()
    };
    if (new_ratio - 1.0).abs() <= TOLERANCE || (new_ratio > 1.0) != up {
        return Some(rec(current));
    }
    Some(rec((new_ratio * counted as f64).ceil() as u32))
}

/// The controller's memory between syncs: recent recommendations.
#[derive(Debug, Default)]
pub struct Stabilizer {
    history: VecDeque<(Instant, u32)>,
}

impl Stabilizer {
    /// Steps 4-6: the replica count to set now.
    pub fn decide(
        &mut self,
        now: Instant,
        current: u32,
        desired: u32,
        (min, max): (u32, u32),
        down_window: Duration,
    ) -> u32 {
        self.history.push_back((now, desired));
        while let Some((t, _)) = self.history.front() {
            if now.duration_since(*t) > down_window {
                self.history.pop_front();
            } else {
                break;
            }
        }
        let mut target = desired;
        if desired < current {
            // The highest recommendation of the window: scale down only as far as every
            // recent sync agreed.
            target = self
                .history
                .iter()
                .map(|(_, d)| *d)
                .max()
                .unwrap_or(desired)
                .min(current);
        }
        let up_limit = (current * 2).max(current + 4);
        target.min(up_limit).clamp(min.max(1), max.max(min.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(usage: f64) -> PodSample {
        PodSample {
            ready: true,
            usage_millis: Some(usage),
            request_millis: 100.0,
        }
    }

    #[test]
    fn one_hot_pod_of_two_doubles_the_replicas() {
        // 500m burnt in one pod with a 100m request, the other idle: 255 % of 70 %.
        let r = recommend(2, 70, &[pod(500.0), pod(10.0)]).unwrap();
        assert_eq!(r.utilization, 255);
        assert_eq!(r.desired, 8);
    }

    #[test]
    fn within_tolerance_nothing_changes() {
        let r = recommend(2, 70, &[pod(75.0), pod(70.0)]).unwrap();
        assert_eq!(r.desired, 2);
        assert!(recommend(2, 70, &[]).is_none());
    }

    #[test]
    fn unready_pods_count_as_idle_when_scaling_up() {
        let starting = PodSample {
            ready: false,
            usage_millis: None,
            request_millis: 100.0,
        };
        // 2 × 100 % of 70 % -> 3 pods without the new one; with it at 0 %: 200/300 = 67 %
        // of 70 %: within tolerance, stay.
        let r = recommend(3, 70, &[pod(100.0), pod(100.0), starting]).unwrap();
        assert_eq!(r.desired, 3);
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let mut s = Stabilizer::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(30);
        assert_eq!(s.decide(t0, 2, 4, (2, 4), w), 4);
        // Load gone: the recommendation drops to 2, but 4 was recommended 10 s ago.
        assert_eq!(s.decide(t0 + Duration::from_secs(10), 4, 2, (2, 4), w), 4);
        assert_eq!(s.decide(t0 + Duration::from_secs(25), 4, 2, (2, 4), w), 4);
        assert_eq!(s.decide(t0 + Duration::from_secs(41), 4, 2, (2, 4), w), 2);
    }

    #[test]
    fn limits_and_bounds() {
        let t0 = Instant::now();
        let decide = |current, desired, bounds| {
            Stabilizer::default().decide(t0, current, desired, bounds, Duration::ZERO)
        };
        assert_eq!(decide(2, 50, (2, 100)), 6, "at most +4 (or ×2)");
        assert_eq!(decide(2, 50, (2, 4)), 4, "maxReplicas");
        assert_eq!(decide(3, 0, (2, 4)), 2, "minReplicas");
    }
}
