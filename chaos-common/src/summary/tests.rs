use serde_json::{Value, json};

use super::*;

fn report(overrides: Value) -> Value {
    let mut base = json!({
        "schemaVersion": "1.1", "action": "run", "tool": "cpu-hog", "version": "0.1.0+abc",
        "runId": "r1", "startedAt": "2026-11-28T10:04:05.000Z", "endedAt": "2026-11-28T10:04:08.000Z",
        "hypothesis": "h", "parameters": {}, "targets": [{"kind": "process", "name": "pid 4242 (this machine)"}],
        "plan": ["start 1 worker", "stop it"], "warnings": [], "safety": {},
        "phases": [
            {"name": "apply", "durationMs": 1.0, "status": "completed"},
            {"name": "observe", "durationMs": 3000.4, "status": "completed"}
        ],
        "baseline": null, "observations": {"x": 1}, "criteria": [], "stopReason": "duration",
        "result": "ok", "revert": {"status": "reverted", "durationMs": 0.31, "manualSteps": []},
        "errors": [], "exitCode": 0
    });
    if let (Some(base), Some(over)) = (base.as_object_mut(), overrides.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    base
}

fn hook(report: &ReportView, _: &Style) -> Option<Said> {
    let x = report.observations.get("x")?.as_u64()?;
    Some(Said::new(vec![format!(
        "did {x} thing; {}",
        ending(report, "reverted", &Style::plain())
    )]))
}

fn text(value: Value) -> String {
    render_value(&value, hook, &Style::plain())
}

#[test]
fn a_run_is_its_tool_sentence_under_a_header() {
    let out = text(report(json!({})));
    assert_eq!(
        out,
        "cpu-hog run r1: ok\n  did 1 thing; reverted in 0.31 ms\n"
    );
}

#[test]
fn without_a_tool_sentence_the_generic_one_says_how_long_and_how_it_ended() {
    let out = text(report(json!({
        "observations": {}, "stopReason": "signal:SIGTERM", "result": "aborted"
    })));
    assert!(
        out.contains("the fault was in place for 3.0 s; stopped by SIGTERM; reverted in 0.31 ms"),
        "{out}"
    );
    assert!(out.starts_with("cpu-hog run r1: stopped early, fault reverted\n"));
}

#[test]
fn a_dry_run_prints_its_plan_once_numbered() {
    let out = text(report(json!({
        "result": "dry-run", "phases": [], "observations": null, "stopReason": null,
        "revert": {"status": "not-applied", "durationMs": null, "manualSteps": []}
    })));
    assert_eq!(
        out,
        "cpu-hog dry run r1: nothing was touched\n  on process pid 4242 (this machine)\n  would:\n    1. start 1 worker\n    2. stop it\n"
    );
}

#[test]
fn refusals_and_failures_say_why_once() {
    let error = json!({"kind": "refused", "message": "production run during peak hours"});
    let out = text(report(json!({
        "result": "refused", "phases": [], "errors": [error.clone(), error],
        "revert": {"status": "not-applied", "manualSteps": []}
    })));
    assert_eq!(
        out,
        "cpu-hog run r1: refused, nothing was touched\n  why: production run during peak hours\n"
    );
    let out = text(report(json!({
        "result": "failed", "stopReason": "apply-failed", "observations": null,
        "phases": [{"name": "apply", "durationMs": 1.0, "status": "failed"}],
        "errors": [{"kind": "fault", "message": "upstream unreachable"}],
        "revert": {"status": "not-applied", "manualSteps": []}
    })));
    assert!(out.contains("nothing was applied (apply-failed)"), "{out}");
    assert!(out.contains("error: upstream unreachable"), "{out}");
}

#[test]
fn a_failed_revert_lists_the_commands_that_remove_the_fault() {
    let out = text(report(json!({
        "result": "failed",
        "revert": {"status": "failed", "durationMs": 2.0, "manualSteps": ["nft delete table inet chaos-x"]}
    })));
    assert!(out.starts_with("cpu-hog run r1: REVERT FAILED"), "{out}");
    assert!(
        out.ends_with("remove what may remain with:\n    nft delete table inet chaos-x\n"),
        "{out}"
    );
}

#[test]
fn criteria_are_listed_unless_the_tool_judged_them() {
    let out = text(report(json!({
        "result": "failed",
        "criteria": [{"name": "oomKilled", "expected": "true", "actual": "false", "passed": false}]
    })));
    assert!(
        out.contains("FAIL: oomKilled: expected true, got false"),
        "{out}"
    );
}

#[test]
fn stop_reports_say_what_happened() {
    let stop = |result: &str, running: bool, errors: Value| {
        text(report(json!({
            "action": "stop", "result": result, "phases": [], "plan": [],
            "targets": [{"kind": "process", "name": "pid 7 (cpu-hog run r1)"}],
            "observations": {"stopped": [7], "running": running}, "errors": errors,
            "revert": {"status": "not-applied", "manualSteps": []}
        })))
    };
    let out = stop("ok", true, json!([]));
    assert!(
        out.contains("stopped pid 7 (cpu-hog run r1): it reverted its fault and exited"),
        "{out}"
    );
    let out = stop("ok", false, json!([]));
    assert!(out.contains("already ended; nothing to stop"), "{out}");
    let out = stop(
        "bad-input",
        false,
        json!([{"kind": "bad-input", "message": "no cpu-hog run r1 is running"}]),
    );
    assert!(out.starts_with("cpu-hog --stop r1: bad input"), "{out}");
    assert!(out.contains("why: no cpu-hog run r1 is running"), "{out}");
}

#[test]
fn cleanup_reports_list_what_was_removed() {
    let out = text(report(json!({
        "action": "cleanup", "phases": [], "plan": [],
        "observations": {"stopped": ["a"], "removed": ["table inet chaos-net-partition-a"]},
        "revert": {"status": "not-applied", "manualSteps": []}
    })));
    assert_eq!(
        out,
        "cpu-hog --cleanup r1: ok\n  stopped 1 run: a\n  removed 1 leftover:\n    table inet chaos-net-partition-a\n"
    );
    let out = text(report(json!({
        "action": "cleanup", "phases": [], "plan": [], "observations": {"stopped": [], "removed": []},
        "revert": {"status": "not-applied", "manualSteps": []}
    })));
    assert!(out.contains("nothing to clean up"), "{out}");
}

#[test]
fn several_targets_are_a_table_of_each_pod_s_own_sentence() {
    let pod = |x: u64| report(json!({"observations": {"x": x}}));
    let out = text(report(json!({
        "observations": {"delivery": "exec", "pods": 3, "applied": 2, "maxAppliedMs": 812.0, "skippedPods": []},
        "targets": [
            {"kind": "pod", "name": "lomash-wood/product-service-a", "details": {"outcome": "completed", "report": pod(1)}},
            {"kind": "pod", "name": "lomash-wood/product-service-bb", "details": {"outcome": "completed", "report": pod(22)}},
            {"kind": "pod", "name": "lomash-wood/p-c", "details": {"outcome": "lost", "report": null, "errors": ["exec stream lost"]}}
        ]
    })));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "cpu-hog run r1: ok");
    assert_eq!(
        lines[1],
        "  POD                             OUTCOME    RESULT  WHAT HAPPENED"
    );
    assert_eq!(
        lines[2],
        "  lomash-wood/product-service-a   completed  ok      did 1 thing; reverted in 0.31 ms"
    );
    assert_eq!(
        lines[3],
        "  lomash-wood/product-service-bb  completed  ok      did 22 thing; reverted in 0.31 ms"
    );
    assert_eq!(
        lines[4],
        "  lomash-wood/p-c                 lost       none    exec stream lost"
    );
    assert_eq!(
        lines[5],
        "  the fault was applied in 2 of 3 pods (the slowest after 812 ms)"
    );
}

#[test]
fn colour_only_when_asked() {
    let value = report(json!({}));
    let plain = render_value(&value, hook, &Style::plain());
    let coloured = render_value(&value, hook, &Style { colour: true });
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[32mok\x1b[0m"), "{coloured}");
}
