//! `summary.md`: the verdict for people, in the order they read it: result, why, checks,
//! phases against the baseline, recovery, abort, comparison with the previous run.

use std::fmt::Write;

use crate::evaluate::Status;
use crate::verdict::Verdict;

pub fn markdown(v: &Verdict) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} run {}: {}\n",
        v.experiment,
        v.run_id,
        v.result.word()
    );
    let _ = writeln!(md, "{}\n", v.summary);
    let _ = writeln!(
        md,
        "Environment: {}. Started {}, data until {}. Chart: [timeline.svg](timeline.svg); per second: [seconds.csv](seconds.csv).\n",
        v.environment,
        v.started_at.as_deref().unwrap_or("—"),
        v.ended_at.as_deref().unwrap_or("—")
    );
    checks(&mut md, v);
    phases(&mut md, v);
    let _ = writeln!(md, "## Recovery\n");
    let _ = match v.recovery.recovery_seconds {
        Some(s) => writeln!(
            md,
            "Recovered {s} s after the faults ended (at {}): {}.\n",
            v.recovery.recovered_at.as_deref().unwrap_or("—"),
            v.recovery.detail
        ),
        None => writeln!(md, "{}.\n", v.recovery.detail),
    };
    if let Some(b) = &v.band {
        let _ = writeln!(
            md,
            "Baseline band: p95 <= {} ms (baseline {} ms), error rate <= {}% (baseline {}%), {} windows of {} ms.\n",
            b.p95_max_ms,
            b.baseline_p95_ms,
            b.error_rate_max_percent,
            b.baseline_error_rate_percent,
            v.band_settings.windows,
            v.band_settings.window_ms
        );
    }
    if let Some(a) = &v.abort {
        let _ = writeln!(md, "## Aborted\n");
        let _ = writeln!(md, "By {} at {}: {}.", a.by, a.at, a.reason);
        let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "—".into());
        let _ = writeln!(
            md,
            "Breach {}, guard trip {}, every fault removed {}.",
            show(&a.breach_at),
            show(&a.tripped_at),
            show(&a.faults_removed_at)
        );
        if let Some(ms) = a.breach_to_removed_ms {
            let _ = writeln!(
                md,
                "From breach to all faults removed: {ms} ms (goal: 5000 ms)."
            );
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Compared with the previous run\n\n{}\n",
        v.comparison
    );
    md
}

fn checks(md: &mut String, v: &Verdict) {
    let _ = writeln!(
        md,
        "## Checks\n\n| Status | Check | Window | Expected | Observed | Samples | Detail |\n|---|---|---|---|---|---|---|"
    );
    for c in &v.checks {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Fail => "**FAIL**",
            Status::Manual => "manual",
        };
        let window = c
            .window
            .as_ref()
            .map(|w| w.name.clone())
            .unwrap_or_default();
        let observed = c
            .observed
            .map(|o| format!("{o} {}", c.unit))
            .unwrap_or_else(|| "—".into());
        let samples = c.samples.map(|s| s.to_string()).unwrap_or_default();
        let _ = writeln!(
            md,
            "| {status} | {} | {window} | {} | {observed} | {samples} | {} |",
            cell(&c.name),
            cell(&c.expected),
            cell(&c.detail)
        );
    }
    md.push('\n');
}

fn phases(md: &mut String, v: &Verdict) {
    let _ = writeln!(
        md,
        "## Phases against the baseline\n\n| Phase | Duration | Requests | Error rate | p50 | p95 | p99 | p95 vs baseline | Error rate vs baseline |\n|---|---|---|---|---|---|---|---|---|"
    );
    let ms = |o: Option<f64>| o.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into());
    let pct = |o: Option<f64>| o.map(|v| format!("{v}%")).unwrap_or_else(|| "—".into());
    for p in &v.phases {
        let vs_p95 = match (p.p95_delta_ms, p.p95_ratio) {
            (Some(d), Some(r)) => format!("{d:+} ms (x{r})"),
            (Some(d), None) => format!("{d:+} ms"),
            _ => "—".into(),
        };
        let vs_err = p
            .error_rate_delta_percent
            .map(|d| format!("{d:+} points"))
            .unwrap_or_else(|| "—".into());
        let open = if p.ended { "" } else { " (open)" };
        let _ = writeln!(
            md,
            "| {}{open} | {} s | {} | {} | {} | {} | {} | {vs_p95} | {vs_err} |",
            p.name,
            crate::time::seconds_between(0, p.duration_ms),
            p.stats.requests,
            pct(p.stats.error_rate_percent),
            ms(p.stats.p50_ms),
            ms(p.stats.p95_ms),
            ms(p.stats.p99_ms)
        );
    }
    md.push('\n');
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
