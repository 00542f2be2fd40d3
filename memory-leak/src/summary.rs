//! memory-leak's sentences in the text summary (chaos-common's `summary`), from its
//! typed observations and revert details:
//!
//! ```text
//! grew allocator pid 4242 to 512.3 MiB resident at 49.8 MiB/s (asked 512.0 MiB at 50.0 MiB/s, off by -0.4%) and held it for 70.0 s in all; memory released in 13 ms
//! the allocator was OOM-killed 10.4 s after apply, as --watch-oom expected (oom_kill 0 -> 1)
//! the cgroup's usage peaked at 530.1 MiB of its 512.0 MiB limit
//! ```

use chaos_common::summary::{ReportView, Said, Style, ending, mib, ms, secs};

use crate::observations::{Observations, Released};

/// How far and how fast the memory grew, whether it was OOM-killed, how it ended.
pub fn describe(report: &ReportView, style: &Style) -> Option<Said> {
    let o: Observations = report.observations()?;
    let released: Option<Released> = report.revert_details();
    let achieved = o
        .achieved_rate_mib_per_second
        .map(|r| format!(" at {r:.1} MiB/s"))
        .unwrap_or_default();
    let off = o
        .rate_error_percent
        .map(|e| format!(", off by {}{e:.1}%", if e > 0.0 { "+" } else { "" }))
        .unwrap_or_default();
    let held = report
        .phase_ms("observe")
        .map(|m| format!(" and held it for {} in all", secs(m / 1000.0)))
        .unwrap_or_default();
    let undone = if released.as_ref().is_some_and(|r| r.already_exited) {
        "allocator already gone, reaped"
    } else {
        "memory released"
    };
    let mut sentences = vec![format!(
        "grew allocator pid {} to {} resident{achieved} (asked {} at {:.1} MiB/s{off}){held}; {}",
        o.allocator_pid,
        mib(o.peak_resident_mib),
        mib(o.target_mib),
        o.rate_mib_per_second,
        ending(report, undone, style)
    )];
    if o.oom_killed {
        sentences.push(oom_sentence(report, &o, style));
    } else if let Some(how) = o.allocator_ended.as_deref() {
        sentences.push(style.bad(&format!("the allocator {how} during the run")));
    }
    if let Some(peak) = o.peak_cgroup_usage_mib {
        let limit = o
            .cgroup_limit_mib
            .map(|l| format!(" of its {} limit", mib(l)))
            .unwrap_or_else(|| " (no limit)".into());
        sentences.push(format!("the cgroup's usage peaked at {}{limit}", mib(peak)));
    }
    Some(Said::new(sentences))
}

fn oom_sentence(report: &ReportView, o: &Observations, style: &Style) -> String {
    let after = o
        .oom_killed_after_ms
        .map(|m| format!(" {} after apply", ms(m)))
        .unwrap_or_default();
    let counter = match (o.oom_kills_before, o.oom_kills_after) {
        (Some(b), Some(a)) => format!(" (oom_kill {b} -> {a})"),
        _ => String::new(),
    };
    let group = if o.oom_group_killed {
        ", with its whole cgroup (memory.oom.group)"
    } else {
        ""
    };
    let expected = report
        .parameters
        .get("watchOom")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    let verdict = if expected {
        style.good("as --watch-oom expected")
    } else {
        style.bad("not expected (no --watch-oom)")
    };
    format!("the allocator was OOM-killed{after}{group}, {verdict}{counter}")
}
