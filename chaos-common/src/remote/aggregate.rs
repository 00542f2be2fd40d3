//! The aggregated report (pure): the runner's report of the remote run, with one target
//! per pod whose `details.report` is that pod's own report, the remote observations, the
//! result the worst of the pods' (and the operator's own), and a revert that failed when
//! any pod's revert is not known to have succeeded (exit 4, with the stop commands).

use serde::Serialize;
use serde_json::{Value, json};

use super::Delivery;
use super::session::{Layout, Outcome, PodRun};
use crate::report::{Report, RevertStatus, RunResult, Target};

/// Said of a pod whose container did not restart although the run watched for an OOM kill.
pub const NOT_RESTARTED: &str = "the container did not restart: only the allocator process was \
     OOM-killed (cgroup v1, or a single-process OOM kill without memory.oom.group), or no OOM kill \
     happened; the pod's own report says which";

/// How bad a result is; the run's result is the worst.
fn rank(result: RunResult) -> u8 {
    match result {
        RunResult::Ok | RunResult::DryRun => 0,
        RunResult::Aborted => 1,
        RunResult::BadInput => 2,
        RunResult::Refused => 3,
        RunResult::Failed => 4,
    }
}

fn parse_result(text: &str) -> RunResult {
    match text {
        "ok" => RunResult::Ok,
        "aborted" => RunResult::Aborted,
        "refused" => RunResult::Refused,
        "bad-input" => RunResult::BadInput,
        "dry-run" => RunResult::DryRun,
        _ => RunResult::Failed,
    }
}

/// Whether the pod's fault is known to be gone.
pub fn reverted(r: &PodRun) -> bool {
    match r.outcome {
        // Nothing ran, or the container died with the run in it.
        Some(Outcome::NotStarted | Outcome::ContainerKilled) => true,
        Some(Outcome::Completed) => {
            r.report
                .as_ref()
                .and_then(|rep| rep.pointer("/revert/status"))
                .and_then(Value::as_str)
                != Some("failed")
        }
        Some(Outcome::Lost) | None => false,
    }
}

/// Why a pod did not apply the fault: the delivery's errors, then its own report's
/// (e.g. a node kernel without `sch_netem`), each prefixed with the pod's name.
pub fn why_not(run: &PodRun) -> Vec<String> {
    let reported = run
        .report
        .as_ref()
        .and_then(|r| r.get("errors"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .map(str::to_owned);
    run.errors
        .iter()
        .cloned()
        .chain(reported)
        .map(|e| format!("pod {}: {e}", run.target.name))
        .collect()
}

/// The pod's result.
pub fn pod_result(r: &PodRun, watch_oom: bool) -> RunResult {
    match r.outcome {
        Some(Outcome::Completed) => r
            .report
            .as_ref()
            .and_then(|rep| rep.get("result"))
            .and_then(Value::as_str)
            .map_or(RunResult::Failed, parse_result),
        Some(Outcome::ContainerKilled) if watch_oom => {
            let oom = r.oom.as_ref();
            let killed = oom
                .and_then(|o| o.get("oomKilled"))
                .and_then(Value::as_bool)
                == Some(true);
            let ready = oom
                .and_then(|o| o.get("readyAgainMs"))
                .is_some_and(|v| !v.is_null());
            if killed && ready {
                RunResult::Ok
            } else {
                RunResult::Failed
            }
        }
        _ => RunResult::Failed,
    }
}

/// The remote observations (`$defs/remoteObservations`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    pub delivery: Delivery,
    pub pods: usize,
    pub applied: usize,
    /// Pods by outcome (`completed`, `not-started`, `container-killed`, `lost`).
    pub outcomes: std::collections::BTreeMap<String, usize>,
    /// Pods by their own result.
    pub results: std::collections::BTreeMap<String, usize>,
    /// Pods matched but left out (not Running, over --max-pods).
    pub skipped_pods: Vec<String>,
    /// Slowest time from the start of apply to a pod's "fault applied".
    pub max_applied_ms: Option<f64>,
}

fn ms(d: std::time::Duration) -> f64 {
    crate::report::round(d.as_secs_f64() * 1000.0, 1)
}

fn outcome_name(o: Option<Outcome>) -> String {
    o.and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn target(layout: &Layout, r: &PodRun, start: Option<std::time::Instant>) -> Target {
    let t = &r.target;
    let since = |at: Option<std::time::Instant>| match (start, at) {
        (Some(s), Some(a)) => Some(ms(a.saturating_duration_since(s))),
        _ => None,
    };
    let mut details = json!({
        "container": t.container,
        "node": t.node,
        "podIp": t.ip,
        "uid": t.uid,
        "delivery": layout.delivery,
        "command": layout.command(),
        "stopCommand": layout.kubectl_stop(t),
        "outcome": outcome_name(r.outcome),
        "appliedMs": since(r.applied_at),
        "endedMs": since(r.ended_at),
        "stopSent": r.stop_sent,
        "errors": r.errors,
        "report": r.report,
    });
    match layout.delivery {
        Delivery::Exec => {
            details["copiedTo"] = json!(layout.program());
            details["removed"] = json!(r.removed);
        }
        Delivery::Ephemeral => details["ephemeralContainer"] = json!(layout.name()),
    }
    if !r.updates.is_empty() {
        details["updates"] = json!(r.updates);
    }
    if let Some(oom) = &r.oom {
        let mut oom = oom.clone();
        let restarted = oom.get("containerRestarted").and_then(Value::as_bool) == Some(true);
        if !restarted && r.outcome == Some(Outcome::Completed) {
            oom["note"] = json!(NOT_RESTARTED);
        }
        details["oom"] = oom;
    }
    Target::new("pod", format!("{}/{}", layout.namespace, t.name)).with_details(details)
}

/// Turns the runner's report of a remote run into the aggregated report.
pub fn finish(
    mut report: Report,
    layout: &Layout,
    records: &[PodRun],
    skipped: &[String],
    watch_oom: bool,
    started: Option<std::time::Instant>,
) -> Report {
    if records.is_empty() {
        // Nothing was started (dry run, refusal, bad input, failed resolve): the plan's
        // targets stay as they are.
        return report;
    }
    report.targets = records.iter().map(|r| target(layout, r, started)).collect();
    let mut outcomes = std::collections::BTreeMap::new();
    let mut results = std::collections::BTreeMap::new();
    let mut worst = report.result;
    for r in records {
        *outcomes.entry(outcome_name(r.outcome)).or_insert(0) += 1;
        let result = pod_result(r, watch_oom);
        let name = serde_json::to_value(result)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *results.entry(name).or_insert(0) += 1;
        if rank(result) > rank(worst) {
            worst = result;
        }
        for e in &r.errors {
            report.errors.push(crate::report::ReportError {
                kind: "pod".into(),
                message: format!("pod {}: {e}", r.target.name),
            });
        }
        if r.removed == Some(false) {
            report.warnings.push(format!(
                "{} was not removed from pod {}: {}",
                layout.dir(),
                r.target.name,
                super::exec::kubectl_exec(
                    &layout.namespace,
                    &r.target.name,
                    &r.target.container,
                    &["rm".into(), "-rf".into(), layout.dir()]
                )
            ));
        }
    }
    let observations = Observations {
        delivery: layout.delivery,
        pods: records.len(),
        applied: records.iter().filter(|r| r.applied_at.is_some()).count(),
        outcomes,
        results,
        skipped_pods: skipped.to_vec(),
        max_applied_ms: records
            .iter()
            .filter_map(|r| Some(ms(r.applied_at?.saturating_duration_since(started?))))
            .reduce(f64::max),
    };
    report.observations = serde_json::to_value(observations).unwrap_or(Value::Null);
    if records.iter().any(|r| !reverted(r)) && report.revert.status != RevertStatus::Failed {
        report.revert.status = RevertStatus::Failed;
    }
    if report.revert.status == RevertStatus::Failed && report.revert.manual_steps.is_empty() {
        report.revert.manual_steps = records
            .iter()
            .filter(|r| !reverted(r))
            .map(|r| layout.kubectl_stop(&r.target))
            .collect();
    }
    report.finish(worst)
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
