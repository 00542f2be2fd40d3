//! The baseline band and the time to recover.
//!
//! **Band.** From the same run's baseline (the `baseline` phase, same request filter):
//! a window is inside the band when it holds at least one request and
//!
//! - its error rate <= baseline error rate + `error_points` percentage points, and
//! - its p95 <= max(baseline p95 x `p95_factor`, baseline p95 + `p95_slack_ms`).
//!
//! The factor is the "back to baseline" tolerance of a healthy service under the same
//! load; the slack keeps a fast service (p95 of 3 ms) from being judged on noise. An
//! empty window is never inside: no data is not a recovery.
//!
//! **Time to recover.** From a reference moment (the end of the fault window, or its
//! start), candidate moments are tried every [`STEP_MS`]; the service recovered at the
//! first candidate `c` whose next `windows` windows of `window_ms` each (`[c, c+w)`,
//! `[c+w, c+2w)`, ...) are all inside the band and all end before the data does. The
//! time to recover is `c - reference`. No such candidate: not recovered (a failure).

use serde::Serialize;

use crate::series::{Series, Stats, Window};
use crate::time::{self, Millis};

/// Resolution of the time to recover.
pub const STEP_MS: Millis = 100;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BandSettings {
    pub p95_factor: f64,
    pub p95_slack_ms: f64,
    pub error_points: f64,
    pub window_ms: Millis,
    pub windows: u32,
}

/// The band computed from a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Band {
    pub baseline_p95_ms: f64,
    pub baseline_error_rate_percent: f64,
    pub p95_max_ms: f64,
    pub error_rate_max_percent: f64,
}

impl Band {
    /// `None` when the baseline holds no request.
    pub fn from_baseline(baseline: &Stats, s: &BandSettings) -> Option<Band> {
        let p95 = baseline.p95_ms?;
        let err = baseline.error_rate_percent?;
        Some(Band {
            baseline_p95_ms: p95,
            baseline_error_rate_percent: err,
            p95_max_ms: chaos_common::report::round(
                (p95 * s.p95_factor).max(p95 + s.p95_slack_ms),
                3,
            ),
            error_rate_max_percent: chaos_common::report::round(err + s.error_points, 4),
        })
    }

    pub fn contains(&self, stats: &Stats) -> bool {
        match (stats.error_rate_percent, stats.p95_ms) {
            (Some(err), Some(p95)) => err <= self.error_rate_max_percent && p95 <= self.p95_max_ms,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    /// `fault-end` or `fault-start`.
    pub from: String,
    pub reference_at: Option<String>,
    pub recovered: bool,
    pub recovered_at: Option<String>,
    pub recovery_seconds: Option<f64>,
    /// Why there is no time to recover (no baseline, no fault, not recovered).
    pub detail: String,
    #[serde(skip)]
    pub recovered_ms: Option<Millis>,
}

/// Searches for the recovery moment after `reference`, in data that ends at `data_end`.
pub fn time_to_recover(
    series: &Series,
    name: Option<&str>,
    band: &Band,
    settings: &BandSettings,
    reference: Millis,
    data_end: Millis,
) -> Option<Millis> {
    let span = settings.window_ms * Millis::from(settings.windows);
    // The last window must hold a request: no candidate after this one can succeed.
    let last_useful = series.last_at()? - span + settings.window_ms;
    let mut candidate = reference;
    while candidate + span <= data_end && candidate <= last_useful {
        let all_inside = (0..Millis::from(settings.windows)).all(|i| {
            let from = candidate + i * settings.window_ms;
            band.contains(&series.stats(
                Window {
                    from,
                    to: from + settings.window_ms,
                },
                name,
            ))
        });
        if all_inside {
            return Some(candidate);
        }
        candidate += STEP_MS;
    }
    None
}

impl Recovery {
    pub fn unknown(from: &str, reference: Option<Millis>, detail: impl Into<String>) -> Recovery {
        Recovery {
            from: from.to_owned(),
            reference_at: reference.map(time::format),
            recovered: false,
            recovered_at: None,
            recovery_seconds: None,
            detail: detail.into(),
            recovered_ms: None,
        }
    }

    pub fn measured(
        from: &str,
        reference: Millis,
        found: Option<Millis>,
        settings: &BandSettings,
    ) -> Recovery {
        match found {
            Some(at) => Recovery {
                from: from.to_owned(),
                reference_at: Some(time::format(reference)),
                recovered: true,
                recovered_at: Some(time::format(at)),
                recovery_seconds: Some(time::seconds_between(reference, at)),
                detail: format!(
                    "inside the baseline band for {} consecutive {} s windows from then on",
                    settings.windows,
                    time::seconds_between(0, settings.window_ms)
                ),
                recovered_ms: Some(at),
            },
            None => Recovery::unknown(
                from,
                Some(reference),
                format!(
                    "not recovered: no moment after {} from which {} consecutive {} s windows stay inside the baseline band before the data ends",
                    time::format(reference),
                    settings.windows,
                    time::seconds_between(0, settings.window_ms)
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: BandSettings = BandSettings {
        p95_factor: 1.5,
        p95_slack_ms: 5.0,
        error_points: 1.0,
        window_ms: 1000,
        windows: 3,
    };

    /// 10 requests a second from `from_s` to `to_s`; `bad(second)` makes that second slow.
    fn traffic(to_s: i64, slow: impl Fn(i64) -> bool) -> Series {
        let mut s = Series::default();
        for sec in 0..to_s {
            for i in 0..10 {
                let d = if slow(sec) { 500.0 } else { 10.0 };
                s.push(sec * 1000 + i * 100, d, 200, false, Some("a"));
            }
        }
        s.finish();
        s
    }

    fn band() -> Band {
        let st = Stats {
            p95_ms: Some(10.0),
            error_rate_percent: Some(0.0),
            requests: 10,
            ..Stats::default()
        };
        Band::from_baseline(&st, &SETTINGS).unwrap()
    }

    #[test]
    fn the_band_takes_the_larger_of_factor_and_slack() {
        let b = band();
        assert_eq!(b.p95_max_ms, 15.0);
        let st = Stats {
            p95_ms: Some(2.0),
            error_rate_percent: Some(0.5),
            requests: 1,
            ..Stats::default()
        };
        let b = Band::from_baseline(&st, &SETTINGS).unwrap();
        assert_eq!((b.p95_max_ms, b.error_rate_max_percent), (7.0, 1.5));
        assert!(
            !b.contains(&Stats::default()),
            "an empty window is never inside the band"
        );
    }

    #[test]
    fn recovery_is_the_start_of_k_good_windows_after_the_reference() {
        // Slow from 10 s to 14.999 s; the fault ended at 12 s.
        let s = traffic(30, |sec| (10..15).contains(&sec));
        let at = time_to_recover(&s, None, &band(), &SETTINGS, 12_000, 30_000);
        assert_eq!(at, Some(15_000));
    }

    #[test]
    fn a_service_that_never_degraded_recovers_at_once() {
        let s = traffic(30, |_| false);
        assert_eq!(
            time_to_recover(&s, None, &band(), &SETTINGS, 12_000, 30_000),
            Some(12_000)
        );
    }

    #[test]
    fn one_good_window_between_bad_ones_is_not_recovery() {
        let s = traffic(30, |sec| (10..15).contains(&sec) || sec == 16);
        assert_eq!(
            time_to_recover(&s, None, &band(), &SETTINGS, 12_000, 30_000),
            Some(17_000)
        );
    }

    #[test]
    fn data_that_ends_too_soon_is_not_recovered() {
        let s = traffic(17, |sec| (10..15).contains(&sec));
        assert_eq!(
            time_to_recover(&s, None, &band(), &SETTINGS, 12_000, 17_000),
            None
        );
    }

    #[test]
    fn silence_after_the_fault_is_not_recovery() {
        let mut s = traffic(12, |_| false);
        s.finish();
        assert_eq!(
            time_to_recover(&s, None, &band(), &SETTINGS, 12_000, 40_000),
            None
        );
    }
}
