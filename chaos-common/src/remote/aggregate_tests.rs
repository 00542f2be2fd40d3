use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::remote::pods::PodTarget;
use crate::report::Action;

fn layout(delivery: Delivery) -> Layout {
    Layout {
        tool: "cpu-hog",
        run_id: "r1".into(),
        namespace: "lomash-wood".into(),
        delivery,
        remote_dir: "/tmp".into(),
        image: "lomash-wood/chaos-tools:0.1.0".into(),
        argv: vec!["-c".into(), "80".into()],
    }
}

fn run(name: &str, outcome: Outcome, result: Option<&str>, start: Instant) -> PodRun {
    let mut r = PodRun::new(PodTarget {
        name: name.into(),
        uid: format!("uid-{name}"),
        node: None,
        ip: None,
        container: "app".into(),
        restarts: 0,
        ephemeral: Vec::new(),
    });
    r.outcome = Some(outcome);
    r.applied_at = Some(start + Duration::from_millis(300));
    r.report = result.map(
        |res| json!({"schemaVersion": "1.2", "result": res, "revert": {"status": "reverted"}}),
    );
    r
}

fn base() -> Report {
    Report::new("cpu-hog", "0.1.0", "r1", Action::Run).finish(RunResult::Ok)
}

#[test]
fn the_worst_pod_decides_and_targets_hold_each_report() {
    let start = Instant::now();
    let runs = vec![
        run("a", Outcome::Completed, Some("ok"), start),
        run("b", Outcome::Completed, Some("failed"), start),
    ];
    let report = finish(
        base(),
        &layout(Delivery::Exec),
        &runs,
        &["c (Pending)".into()],
        false,
        Some(start),
    );
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.exit_code, 1);
    assert_eq!(report.targets.len(), 2);
    assert_eq!(report.targets[1].name, "lomash-wood/b");
    assert_eq!(report.targets[1].details["report"]["result"], "failed");
    assert_eq!(
        report.targets[0].details["copiedTo"],
        "/tmp/chaos-cpu-hog-r1/cpu-hog"
    );
    assert_eq!(report.targets[0].details["appliedMs"], 300.0);
    assert_eq!(report.observations["results"]["ok"], 1);
    assert_eq!(report.observations["skippedPods"][0], "c (Pending)");
    assert_eq!(report.observations["maxAppliedMs"], 300.0);
}

#[test]
fn a_lost_pod_fails_the_revert_with_its_stop_command() {
    let start = Instant::now();
    let mut lost = run("a", Outcome::Lost, None, start);
    lost.errors.push("stream broke".into());
    let report = finish(
        base(),
        &layout(Delivery::Exec),
        &[lost],
        &[],
        false,
        Some(start),
    );
    assert_eq!(report.exit_code, 4);
    assert_eq!(report.revert.status, RevertStatus::Failed);
    assert_eq!(
        report.revert.manual_steps,
        ["kubectl exec -n lomash-wood a -c app -- /tmp/chaos-cpu-hog-r1/cpu-hog --stop r1"]
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.message == "pod a: stream broke")
    );
}

#[test]
fn a_container_killed_as_expected_is_ok_once_ready_again() {
    let start = Instant::now();
    let mut killed = run("a", Outcome::ContainerKilled, None, start);
    killed.oom =
        Some(json!({"oomKilled": true, "containerRestarted": true, "readyAgainMs": 2500.0}));
    let report = finish(
        base(),
        &layout(Delivery::Exec),
        &[killed.clone()],
        &[],
        true,
        Some(start),
    );
    assert_eq!((report.result, report.exit_code), (RunResult::Ok, 0));
    killed.oom = Some(json!({"oomKilled": true, "containerRestarted": true, "readyAgainMs": null}));
    let report = finish(
        base(),
        &layout(Delivery::Exec),
        &[killed.clone()],
        &[],
        true,
        Some(start),
    );
    assert_eq!(report.result, RunResult::Failed);
    // Without --watch-oom a killed container is a failure.
    let report = finish(
        base(),
        &layout(Delivery::Exec),
        &[killed],
        &[],
        false,
        Some(start),
    );
    assert_eq!(report.result, RunResult::Failed);
}

#[test]
fn a_completed_run_without_restart_says_why_and_leftovers_warn() {
    let start = Instant::now();
    let mut r = run("a", Outcome::Completed, Some("ok"), start);
    r.oom = Some(json!({"oomKilled": false, "containerRestarted": false}));
    r.removed = Some(false);
    let report = finish(
        base(),
        &layout(Delivery::Exec),
        &[r],
        &[],
        true,
        Some(start),
    );
    assert_eq!(report.targets[0].details["oom"]["note"], NOT_RESTARTED);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("rm -rf /tmp/chaos-cpu-hog-r1"))
    );
    assert_eq!(report.exit_code, 0);
}

#[test]
fn an_aborted_run_stays_aborted_and_no_records_leave_the_report_alone() {
    let start = Instant::now();
    let aborted = Report::new("cpu-hog", "0.1.0", "r1", Action::Run).finish(RunResult::Aborted);
    let runs = vec![run("a", Outcome::Completed, Some("aborted"), start)];
    let report = finish(
        aborted,
        &layout(Delivery::Ephemeral),
        &runs,
        &[],
        false,
        Some(start),
    );
    assert_eq!((report.result, report.exit_code), (RunResult::Aborted, 0));
    assert_eq!(
        report.targets[0].details["ephemeralContainer"],
        "chaos-cpu-hog-r1"
    );
    let refused = Report::new("cpu-hog", "0.1.0", "r1", Action::Run).finish(RunResult::Refused);
    let report = finish(refused, &layout(Delivery::Exec), &[], &[], false, None);
    assert_eq!(report.exit_code, 3);
}

#[test]
fn a_pod_that_applied_nothing_says_why_from_its_delivery_and_its_own_report() {
    let mut r = run("a", Outcome::Completed, Some("bad-input"), Instant::now());
    r.errors.push("log stream ended early".into());
    r.report = Some(json!({"result": "bad-input", "errors": [
        {"kind": "bad-input", "message": "--engine netem: the kernel has no sch_netem"},
        {"kind": "other"},
    ]}));
    assert_eq!(
        why_not(&r),
        [
            "pod a: log stream ended early",
            "pod a: --engine netem: the kernel has no sch_netem"
        ]
    );
    r.report = None;
    r.errors.clear();
    assert!(why_not(&r).is_empty());
}
