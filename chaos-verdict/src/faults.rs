//! What the verdict says about the faults: each fault's window, report and cleanup, the
//! automatic "removed (verified)" check every fault gets, and the abort with its times.

use serde::Serialize;

use crate::evaluate::{CheckResult, Status};
use crate::time::{self, Millis};
use crate::timeline::{Fault, Timeline};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultInfo {
    pub name: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub report: Option<String>,
    pub tool: Option<String>,
    pub tool_result: Option<String>,
    pub revert_status: Option<String>,
    pub report_error: Option<String>,
    pub cleanup: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortInfo {
    pub by: String,
    pub at: String,
    pub reason: String,
    pub breach_at: Option<String>,
    pub tripped_at: Option<String>,
    pub faults_removed_at: Option<String>,
    /// From the breach (or the abort) to every fault removed.
    pub breach_to_removed_ms: Option<Millis>,
}

/// The automatic check every fault gets: its removal was verified.
pub fn removal_check(fault: &Fault) -> CheckResult {
    let report = fault.report.as_ref();
    let (status, detail) = match (report, &fault.cleanup) {
        (Some(Err(e)), _) => (Status::Fail, format!("no readable tool report: {e}")),
        (Some(Ok(r)), _) if !r.removed() => (
            Status::Fail,
            format!(
                "the tool reports revert {} (exit {}): see its manualSteps",
                r.revert_status, r.exit_code
            ),
        ),
        (_, None) => (
            Status::Fail,
            "removal was never verified by the runbook".to_owned(),
        ),
        (_, Some(Err(why))) => (Status::Fail, format!("removal not verified: {why}")),
        (_, Some(Ok(()))) if fault.window().1.is_none() => (
            Status::Fail,
            "the fault has no end in the timeline".to_owned(),
        ),
        (_, Some(Ok(()))) => (Status::Pass, "removed, and the removal verified".to_owned()),
    };
    CheckResult {
        name: format!("fault '{}' removed (verified)", fault.name),
        kind: "outcome",
        window: None,
        metric: None,
        request: None,
        expected: "pass".into(),
        observed: None,
        unit: String::new(),
        samples: None,
        status,
        detail,
    }
}

pub fn fault_info(f: &Fault) -> FaultInfo {
    let (start, end) = f.window();
    let report = f.report.as_ref().and_then(|r| r.as_ref().ok());
    FaultInfo {
        name: f.name.clone(),
        started_at: start.map(time::format),
        ended_at: end.map(time::format),
        report: f.report_path.as_ref().map(|p| p.display().to_string()),
        tool: report.map(|r| r.tool.clone()),
        tool_result: report.map(|r| r.result.clone()),
        revert_status: report.map(|r| r.revert_status.clone()),
        report_error: f.report.as_ref().and_then(|r| r.as_ref().err().cloned()),
        cleanup: f.cleanup.as_ref().map(|c| match c {
            Ok(()) => "verified".to_owned(),
            Err(e) => e.clone(),
        }),
    }
}

pub fn abort_info(t: &Timeline) -> Option<AbortInfo> {
    let a = t.abort.as_ref()?;
    let breach = t.mark("guard-breach").map(|m| m.at);
    let tripped = t.mark("guard-trip").map(|m| m.at);
    let removed = t.mark("faults-removed").map(|m| m.at);
    Some(AbortInfo {
        by: a.by.clone(),
        at: time::format(a.at),
        reason: a.reason.clone(),
        breach_at: breach.map(time::format),
        tripped_at: tripped.map(time::format),
        faults_removed_at: removed.map(time::format),
        breach_to_removed_ms: removed.map(|r| r - breach.unwrap_or(a.at)),
    })
}
