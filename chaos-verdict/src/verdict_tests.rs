use super::*;
use crate::checks;
use crate::series::Series;
use crate::timeline::Timeline;
use crate::tool_report::ToolReport;

const BAND: BandSettings = BandSettings {
    p95_factor: 1.5,
    p95_slack_ms: 5.0,
    error_points: 1.0,
    window_ms: 1000,
    windows: 2,
};

fn healthy(to_s: i64) -> Series {
    let mut s = Series::default();
    for at in (0..to_s * 1000).step_by(100) {
        s.push(at, 10.0, 200, false, Some("products"));
    }
    s.finish();
    s
}

fn timeline(extra: &str) -> Timeline {
    let text = format!(
        "chaos-verdict-timeline\t1\nphase-start\tbaseline\t1970-01-01T00:00:00Z\nphase-end\tbaseline\t1970-01-01T00:00:10Z\n\
         fault-start\tflip\t1970-01-01T00:00:10Z\nfault-end\tflip\t1970-01-01T00:00:15Z\n{extra}"
    );
    Timeline::parse(&text).unwrap()
}

fn verdict(series: &Series, tl: &Timeline, lines: &str) -> Verdict {
    let specs = checks::parse(&format!("chaos-verdict-checks\t1\n{lines}")).unwrap();
    let run = Run {
        series,
        timeline: tl,
        base_dir: "/".into(),
        band: BAND,
        data_end: 30_000,
        confirmed: &[],
    };
    let id = Identity {
        experiment: "EXP-001".into(),
        run_id: "r1".into(),
        environment: "staging".into(),
    };
    let points = PointsInfo {
        files: vec!["p".into()],
        lines: 0,
        requests: 0,
        partial_tail: false,
        first_at: None,
        last_at: None,
        request_names: vec![],
    };
    build(&id, &run, &specs, points, None)
}

const VERIFIED: &str = "cleanup\tflip\t1970-01-01T00:00:15.5Z\tverified\n";
const PASSING: &str = "name=few errors\twindow=fault\tmetric=errors\tlt=5\n";

#[test]
fn all_checks_passing_and_the_fault_verified_is_a_pass() {
    let v = verdict(&healthy(30), &timeline(VERIFIED), PASSING);
    assert_eq!(v.result, Outcome::Pass);
    assert_eq!(v.exit_code, 0);
    assert_eq!(v.checks.len(), 2, "the check and the fault's removal");
    assert_eq!(v.recovery.recovery_seconds, Some(0.0));
    assert_eq!(v.result_log_row.result, "PASS");
    assert_eq!(v.result_log_row.environment, "Staging");
    assert!(
        v.result_log_row
            .notes
            .contains("recovery 0 s; fault p95 10 ms (baseline 10 ms)"),
        "{}",
        v.result_log_row.notes
    );
}

#[test]
fn an_unverified_removal_fails_the_run() {
    let v = verdict(&healthy(30), &timeline(""), PASSING);
    assert_eq!(v.result, Outcome::Fail);
    let c = v
        .checks
        .iter()
        .find(|c| c.name == "fault 'flip' removed (verified)")
        .unwrap();
    assert!(c.detail.contains("never verified"), "{}", c.detail);
    let v = verdict(
        &healthy(30),
        &timeline("cleanup\tflip\t1970-01-01T00:00:16Z\tfailed: rule still there\n"),
        PASSING,
    );
    assert!(
        v.summary
            .contains("failed: \"fault 'flip' removed (verified)\""),
        "{}",
        v.summary
    );
}

#[test]
fn a_tool_that_could_not_revert_fails_the_run() {
    let mut tl = timeline(VERIFIED);
    tl.faults[0].report = Some(Ok(ToolReport {
        tool: "net-partition".into(),
        run_id: "r1-flip".into(),
        result: "failed".into(),
        revert_status: "failed".into(),
        exit_code: 4,
        apply_started: Some(10_000),
        revert_ended: Some(15_000),
    }));
    let v = verdict(&healthy(30), &tl, PASSING);
    assert_eq!(v.result, Outcome::Fail);
    assert_eq!(v.faults[0].revert_status.as_deref(), Some("failed"));
}

#[test]
fn manual_checks_left_make_it_partial_and_failures_win() {
    let manual = format!("{PASSING}name=Grafana shows it\tkind=manual\n");
    let v = verdict(&healthy(30), &timeline(VERIFIED), &manual);
    assert_eq!((v.result, v.exit_code), (Outcome::Partial, 5));
    assert!(
        v.summary.contains("to confirm: \"Grafana shows it\""),
        "{}",
        v.summary
    );
    let failing = format!("{manual}name=no requests at all\twindow=fault\tmetric=requests\tlt=1\n");
    let v = verdict(&healthy(30), &timeline(VERIFIED), &failing);
    assert_eq!((v.result, v.exit_code), (Outcome::Fail, 1));
}

#[test]
fn an_abort_is_its_own_result_with_its_times() {
    let extra = format!(
        "{VERIFIED}mark\tguard-breach\t1970-01-01T00:00:12Z\tbreach\nmark\tguard-trip\t1970-01-01T00:00:14Z\ttrip\n\
         abort\tguard\t1970-01-01T00:00:14Z\terror rate 50% over 10 s\nmark\tfaults-removed\t1970-01-01T00:00:15Z\t\n"
    );
    let v = verdict(&healthy(30), &timeline(&extra), PASSING);
    assert_eq!((v.result, v.exit_code), (Outcome::Aborted, 6));
    let a = v.abort.unwrap();
    assert_eq!(a.breach_to_removed_ms, Some(3000));
    assert_eq!(a.tripped_at.as_deref(), Some("1970-01-01T00:00:14.000Z"));
    assert!(
        v.summary
            .starts_with("ABORTED: aborted by guard: error rate 50% over 10 s"),
        "{}",
        v.summary
    );
    assert_eq!(v.result_log_row.result, "ABORTED");
}

#[test]
fn every_phase_is_compared_with_the_baseline() {
    let mut s = healthy(30);
    for at in (10_000..15_000).step_by(100) {
        s.push(at + 50, 40.0, 500, true, Some("products"));
    }
    s.finish();
    let v = verdict(&s, &timeline(VERIFIED), PASSING);
    let fault = v.phases.iter().find(|p| p.name == "fault").unwrap();
    assert_eq!(fault.stats.error_rate_percent, Some(50.0));
    assert_eq!(fault.error_rate_delta_percent, Some(50.0));
    assert_eq!(fault.p95_delta_ms, Some(30.0));
    assert_eq!(fault.p95_ratio, Some(4.0));
    let base = v.phases.iter().find(|p| p.name == "baseline").unwrap();
    assert_eq!((base.p95_delta_ms, base.duration_ms), (Some(0.0), 10_000));
}

#[test]
fn a_run_without_baseline_data_cannot_measure_recovery() {
    let mut s = Series::default();
    for at in (10_000..30_000).step_by(100) {
        s.push(at, 10.0, 200, false, None);
    }
    s.finish();
    let v = verdict(
        &s,
        &timeline(VERIFIED),
        "name=back\tmetric=recovery-seconds\tle=60\n",
    );
    assert_eq!(v.result, Outcome::Fail);
    assert!(
        v.recovery.detail.contains("no baseline"),
        "{}",
        v.recovery.detail
    );
    assert!(
        v.result_log_row.notes.contains("not recovered"),
        "{}",
        v.result_log_row.notes
    );
}
