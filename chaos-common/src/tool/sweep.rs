//! `--stop RUN_ID` and `--cleanup`: find runs in the registry, stop them, remove what
//! runs left behind; each prints a report like a run does.

use std::time::Duration;

use serde_json::json;
use tracing::{error, info};

use crate::error::ChaosError;
use crate::instance::{self, Instance};
use crate::report::{Action, Report, ReportError, RevertStatus, RunResult, Target};

use super::Tool;

/// How long `--stop` and `--cleanup` wait for a run to finish its revert.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn instance_target(i: &Instance) -> Target {
    Target::new(
        "process",
        format!("pid {} ({} run {})", i.pid, i.tool, i.run_id),
    )
}

/// `--stop RUN_ID`: SIGTERM to the run and wait for its revert. "Nothing to stop" is
/// success only when the registry could be read and remembers the run as ended: a run
/// id it has never seen is bad input (exit 2, most likely a typo), and a directory that
/// exists but is not trusted makes the answer unknowable, which is a failure.
pub(super) fn stop_one(tool: &str, version: &str, run_id: &str) -> Report {
    let mut report = Report::new(tool, version, run_id, Action::Stop);
    report.hypothesis = format!("the {tool} run {run_id} stops and reverts its fault");
    let listing = instance::list(tool, Some(run_id));
    report.targets = listing.instances.iter().map(instance_target).collect();
    report.plan = listing
        .instances
        .iter()
        .map(|i| format!("send SIGTERM to pid {} and wait for its revert", i.pid))
        .collect();
    if listing.instances.is_empty() {
        if !listing.skipped.is_empty() {
            let e = ChaosError::Precondition(format!(
                "cannot tell whether {tool} run {run_id} is running: {}",
                listing.skipped.join("; ")
            ));
            error!("{e}");
            report.errors.push(ReportError::from(&e));
            return report.finish(RunResult::Failed);
        }
        report.observations = json!({ "stopped": [], "running": false });
        if instance::ended::ended(tool, run_id).is_some() {
            info!("{tool} run {run_id} has already ended: nothing to stop");
            return report.finish(RunResult::Ok);
        }
        let e = ChaosError::bad_input(never_ran(tool, run_id));
        error!("{e}");
        report.errors.push(ReportError::from(&e));
        return report.finish(RunResult::BadInput);
    }
    let mut stopped = Vec::new();
    for running in &listing.instances {
        match instance::stop(running, STOP_TIMEOUT) {
            Ok(()) => stopped.push(running.pid),
            Err(e) => {
                error!("{e}");
                report.errors.push(ReportError::from(&e));
            }
        }
    }
    report.observations = json!({ "stopped": stopped, "running": true });
    let result = if report.errors.is_empty() {
        RunResult::Ok
    } else {
        RunResult::Failed
    };
    report.finish(result)
}

/// What `--stop` says of a run id that is neither running nor remembered as ended.
fn never_ran(tool: &str, run_id: &str) -> String {
    let days = instance::ended::RETENTION.as_secs() / 86_400;
    format!(
        "no {tool} run {run_id} is running, and none ended here in the last {days} days: \
         check the run id (the report and the first log line of a run print it; state in {})",
        instance::candidate_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )
}

/// `--cleanup`: stop this tool's runs in this network namespace, then remove what runs
/// left behind. With `--dry-run`, only say what would be stopped and removed.
pub(super) fn cleanup<T: Tool>(version: &str, dry_run: bool) -> Report {
    let mut report = Report::new(T::NAME, version, &crate::runid::generate(), Action::Cleanup);
    report.hypothesis = format!(
        "no {} run and nothing a run created is left in this network namespace",
        T::NAME
    );
    // Only runs in this network namespace: sweeping one pod (or test namespace) must not
    // stop experiments running elsewhere on the same host.
    let listing = instance::list(T::NAME, None);
    let here: Vec<Instance> = listing
        .instances
        .into_iter()
        .filter(|i| instance::in_own_network_namespace(i.pid))
        .collect();
    report.targets = here.iter().map(instance_target).collect();
    report.warnings = listing
        .skipped
        .iter()
        .map(|s| format!("not read: {s}"))
        .collect();
    let unknowable = !listing.skipped.is_empty();
    let mut failed = false;
    let mut stopped = Vec::new();
    for running in &here {
        report.plan.push(format!(
            "stop run {} (pid {}) and wait for its revert",
            running.run_id, running.pid
        ));
        if dry_run {
            continue;
        }
        match instance::stop(running, STOP_TIMEOUT) {
            Ok(()) => stopped.push(running.run_id.clone()),
            Err(e) => {
                error!("{e}");
                report.errors.push(ReportError::from(&e));
                failed = true;
            }
        }
    }
    let removed = match T::cleanup_leftovers(dry_run) {
        Ok(removed) => removed,
        Err(e) => {
            error!("cleanup failed: {e}");
            report.errors.push(ReportError::from(&e));
            failed = true;
            Vec::new()
        }
    };
    for line in &removed {
        if dry_run {
            report.plan.push(format!("remove {line}"));
        } else {
            info!("removed {line}");
        }
    }
    if dry_run {
        return report.finish(RunResult::DryRun);
    }
    info!(
        "cleanup done: {} run(s) stopped, {} leftover(s) removed",
        stopped.len(),
        removed.len()
    );
    report.observations = json!({ "stopped": stopped, "removed": removed });
    if failed {
        // Something a run created may still be in place: exit 4, as a failed revert.
        report.revert.status = RevertStatus::Failed;
        report.revert.manual_steps = vec![format!("{} --cleanup", T::NAME)];
    }
    report.finish(if failed || unknowable {
        RunResult::Failed
    } else {
        RunResult::Ok
    })
}
