//! cpu-hog's sentences in the text summary (chaos-common's `summary`), from its typed
//! observations:
//!
//! ```text
//! held 50.0% of one CPU for 3.0 s on pid 4242 (asked 50%, off by +0.003 points); reverted in 0.31 ms
//! held 79.9% of one CPU on each of 2 workers for 180 s on pid 4242 (asked 80% of the 2-core limit: 80.0% of one CPU each, off by -0.1 points); reverted in 1.2 ms
//! the cgroup's CPU limit throttled it in 5 of 30 periods (250.5 ms in all)
//! ```

use chaos_common::summary::{ReportView, Said, Style, count, ending, percent, secs, signed};

use crate::observations::Observations;

/// What the run held, on what, for how long, and how it ended.
pub fn describe(report: &ReportView, style: &Style) -> Option<Said> {
    let o: Observations = report.observations()?;
    let on = report
        .first_target("process")
        .map(|t| t.split(" (").next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| "this process".into());
    let each = if o.workers > 1 {
        format!(" on each of {} workers", o.workers)
    } else {
        String::new()
    };
    let asked = match (o.of_limit, o.cgroup_cpu_quota_cores) {
        (true, Some(quota)) => format!(
            "asked {}% of the {quota}-core limit: {} of one CPU each",
            o.requested_cpu_percent,
            percent(o.target_cpu_percent)
        ),
        _ => format!("asked {}%", o.requested_cpu_percent),
    };
    let mut sentences = vec![format!(
        "held {} of one CPU{each} for {} on {on} ({asked}, off by {} points); {}",
        percent(o.achieved_cpu_percent),
        secs(o.observed_ms / 1000.0),
        signed(o.error_percent_points),
        ending(report, "reverted", style)
    )];
    if let (Some(throttled), Some(periods)) = (o.cgroup_throttled_periods, o.cgroup_periods) {
        if throttled > 0 {
            let time = o
                .cgroup_throttled_ms
                .map(|ms| format!(" ({ms} ms in all)"))
                .unwrap_or_default();
            sentences.push(format!(
                "the cgroup's CPU limit throttled it in {} of {} periods{time}",
                count(throttled),
                count(periods)
            ));
        }
    }
    Some(Said::new(sentences))
}
