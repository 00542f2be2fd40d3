//! Metric checks: statistics of the check's window, compared with the baseline where the
//! metric asks, and the time to recover. (Part of `evaluate`.)

use super::{CheckResult, NamedWindow, Run, judge, round};
use crate::checks::{CheckSpec, Metric};
use crate::recovery::{self, Band};
use crate::series::{Stats, Window, percent};
use crate::time;

impl Run<'_> {
    pub(super) fn metric(&self, spec: &CheckSpec, r: &mut CheckResult) {
        let Some((_, metric)) = &spec.metric else {
            return;
        };
        let window = match self.window(&spec.window) {
            Ok(w) => w,
            Err(why) => {
                r.detail = format!("no data: {why}");
                return;
            }
        };
        let request = spec.request.as_deref();
        let stats = self.series.stats(window.window, request);
        r.samples = Some(stats.requests);
        let open = if window.ended {
            ""
        } else {
            " (the window had not ended: measured to the end of the data)"
        };
        r.window = Some(window.clone());
        if let Metric::RecoverySeconds { from_start } = metric {
            return self.recovery_check(spec, r, &window, *from_start);
        }
        if stats.requests == 0 {
            r.detail = format!(
                "no data: no {}requests in window '{}'",
                request.map(|n| format!("'{n}' ")).unwrap_or_default(),
                window.name
            );
            return;
        }
        match self.observe(metric, &stats, &window, request) {
            Ok(v) => judge(r, spec, v, format!("{} requests{open}", stats.requests)),
            Err(why) => r.detail = format!("no data: {why}"),
        }
    }

    fn observe(
        &self,
        metric: &Metric,
        stats: &Stats,
        window: &NamedWindow,
        request: Option<&str>,
    ) -> Result<f64, String> {
        let no_baseline = || {
            format!(
                "no baseline requests{} to compare with",
                request.map(|n| format!(" named '{n}'")).unwrap_or_default()
            )
        };
        let base = || self.baseline(request).ok_or_else(no_baseline);
        let need = |v: Option<f64>| v.ok_or_else(|| "no requests".to_owned());
        #[allow(clippy::cast_precision_loss)]
        let count = |n: u64| n as f64;
        Ok(match metric {
            Metric::Requests => count(stats.requests),
            Metric::Errors => count(stats.errors),
            Metric::ErrorRate => need(stats.error_rate_percent)?,
            Metric::P50 => need(stats.p50_ms)?,
            Metric::P95 => need(stats.p95_ms)?,
            Metric::P99 => need(stats.p99_ms)?,
            Metric::Status(spec) => count(stats.count_status(spec)),
            Metric::StatusPercent(spec) => percent(stats.count_status(spec), stats.requests),
            Metric::P95Ratio => {
                let b = need(base()?.p95_ms)?;
                round(need(stats.p95_ms)? / b.max(f64::MIN_POSITIVE), 3)
            }
            Metric::P95Delta => round(need(stats.p95_ms)? - need(base()?.p95_ms)?, 3),
            Metric::ErrorRateDelta => round(
                need(stats.error_rate_percent)? - need(base()?.error_rate_percent)?,
                4,
            ),
            Metric::PeakErrorRate => self
                .band_windows(window, request)
                .iter()
                .filter_map(|s| s.error_rate_percent)
                .fold(0.0, f64::max),
            Metric::ElevatedErrorSeconds => {
                let band = Band::from_baseline(&base()?, &self.band).ok_or_else(no_baseline)?;
                let over = self
                    .band_windows(window, request)
                    .iter()
                    .filter(|s| {
                        s.error_rate_percent
                            .is_some_and(|e| e > band.error_rate_max_percent)
                    })
                    .count();
                #[allow(clippy::cast_precision_loss)]
                let secs = over as f64 * time::seconds_between(0, self.band.window_ms);
                secs
            }
            Metric::RecoverySeconds { .. } => return Err("recovery is measured separately".into()),
        })
    }

    /// The window cut into band windows (the last one may be shorter).
    fn band_windows(&self, window: &NamedWindow, request: Option<&str>) -> Vec<Stats> {
        let mut out = Vec::new();
        let mut from = window.window.from;
        while from < window.window.to {
            let to = (from + self.band.window_ms).min(window.window.to);
            out.push(self.series.stats(Window { from, to }, request));
            from = to;
        }
        out
    }

    fn recovery_check(
        &self,
        spec: &CheckSpec,
        r: &mut CheckResult,
        window: &NamedWindow,
        from_start: bool,
    ) {
        let request = spec.request.as_deref();
        let Some(band) = self
            .baseline(request)
            .and_then(|b| Band::from_baseline(&b, &self.band))
        else {
            r.detail = "no data: no baseline to define the band".into();
            return;
        };
        if !from_start && !window.ended {
            r.detail = format!("not recovered: '{}' never ended", window.name);
            return;
        }
        let reference = if from_start {
            window.window.from
        } else {
            window.window.to
        };
        let found = recovery::time_to_recover(
            self.series,
            request,
            &band,
            &self.band,
            reference,
            self.data_end,
        );
        let from = if from_start {
            "fault-start"
        } else {
            "fault-end"
        };
        let rec = recovery::Recovery::measured(from, reference, found, &self.band);
        match rec.recovery_seconds {
            Some(secs) => judge(
                r,
                spec,
                secs,
                format!(
                    "recovered at {}; {}",
                    rec.recovered_at.unwrap_or_default(),
                    rec.detail
                ),
            ),
            None => r.detail = rec.detail,
        }
    }
}
