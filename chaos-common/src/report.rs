//! The report: the one JSON document a tool prints on stdout with `--output json`.
//!
//! Documented in `docs/report.md`, with the JSON Schema in `docs/report.schema.json`;
//! bump [`SCHEMA_VERSION`] on any incompatible change.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::error::{ChaosError, Exit};

pub const SCHEMA_VERSION: &str = "1.2";

/// Rounds `value` to `decimals` places for reports (figures stay readable; the raw
/// precision is never meaningful past a microsecond or a hundredth of a point).
pub fn round(value: f64, decimals: u32) -> f64 {
    let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(i32::MAX));
    let rounded = (value * scale).round() / scale;
    if rounded.is_finite() { rounded } else { value }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    Ok,
    Failed,
    Aborted,
    Refused,
    DryRun,
    /// Input the tool could only judge after parsing (a target that does not exist, a
    /// run id already in use): nothing was touched, exit 2.
    BadInput,
}

/// What the invocation did: a fault run, `--stop RUN_ID`, or `--cleanup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Run,
    Stop,
    Cleanup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevertStatus {
    /// Apply never ran (dry run, refusal, bad input).
    NotApplied,
    /// Everything apply created was removed.
    Reverted,
    /// Revert failed: `manualSteps` says how to remove what may remain.
    Failed,
}

/// What a run acted on: a process, a cgroup, a network namespace, a pod.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl Target {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Target {
            kind: kind.into(),
            name: name.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// One step of the lifecycle, with its timing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: &'static str,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    #[serde(with = "rfc3339")]
    pub ended_at: SystemTime,
    pub duration_ms: f64,
    pub status: &'static str,
}

/// A pass criterion and whether it held.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Criterion {
    pub name: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revert {
    pub status: RevertStatus,
    pub duration_ms: Option<f64>,
    /// Commands an operator can run to remove a fault whose revert failed.
    pub manual_steps: Vec<String>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportError {
    pub kind: String,
    pub message: String,
}

impl From<&ChaosError> for ReportError {
    fn from(error: &ChaosError) -> Self {
        ReportError {
            kind: error.kind().into(),
            message: error.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: &'static str,
    pub action: Action,
    pub tool: String,
    pub version: String,
    pub run_id: String,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    #[serde(with = "rfc3339")]
    pub ended_at: SystemTime,
    /// Experiment step 1: what the run expects to happen.
    pub hypothesis: String,
    /// The validated parameters, as the tool understood them.
    pub parameters: Value,
    /// Experiment step 2, the blast radius: what the fault acts on.
    pub targets: Vec<Target>,
    /// The exact steps of the plan (what --dry-run prints).
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    pub safety: Value,
    pub phases: Vec<Phase>,
    /// Experiment step 3: the steady state measured before apply.
    pub baseline: Value,
    /// Experiment step 5: what was measured while the fault was in place.
    pub observations: Value,
    pub criteria: Vec<Criterion>,
    /// Why the observe phase ended: duration, finished, signal:SIGTERM, failed, ...
    pub stop_reason: Option<String>,
    /// Experiment step 7.
    pub result: RunResult,
    /// Experiment step 6, for the fault itself: was everything removed.
    pub revert: Revert,
    pub errors: Vec<ReportError>,
    pub exit_code: u8,
}

impl Report {
    /// An empty report of `action`, started now: `result` ok, nothing applied.
    pub fn new(tool: &str, version: &str, run_id: &str, action: Action) -> Report {
        let now = SystemTime::now();
        Report {
            schema_version: SCHEMA_VERSION,
            action,
            tool: tool.into(),
            version: version.into(),
            run_id: run_id.into(),
            started_at: now,
            ended_at: now,
            hypothesis: String::new(),
            parameters: Value::Object(serde_json::Map::new()),
            targets: Vec::new(),
            plan: Vec::new(),
            warnings: Vec::new(),
            safety: Value::Null,
            phases: Vec::new(),
            baseline: Value::Null,
            observations: Value::Null,
            criteria: Vec::new(),
            stop_reason: None,
            result: RunResult::Ok,
            revert: Revert {
                status: RevertStatus::NotApplied,
                duration_ms: None,
                manual_steps: Vec::new(),
                details: Value::Null,
            },
            errors: Vec::new(),
            exit_code: 0,
        }
    }

    /// Sets the result and end time, and the exit code they stand for.
    pub fn finish(mut self, result: RunResult) -> Report {
        self.result = result;
        self.ended_at = SystemTime::now();
        self.exit_code = self.exit().code();
        self
    }

    /// The exit code this report stands for (docs/report.md's table).
    pub fn exit(&self) -> Exit {
        if self.revert.status == RevertStatus::Failed {
            return Exit::RevertFailed;
        }
        match self.result {
            RunResult::Ok | RunResult::DryRun | RunResult::Aborted => Exit::Ok,
            RunResult::Failed => Exit::Failed,
            RunResult::Refused => Exit::Refused,
            RunResult::BadInput => Exit::BadInput,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising a tree of plain data cannot fail; fall back to a minimal document
        // rather than panic if it ever did.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"schemaVersion":"{SCHEMA_VERSION}","errors":[{{"kind":"serialize","message":"{e}"}}]}}"#)
        })
    }

    /// The report as JSON data (what `--output json` prints, as a value).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The human summary printed without `--output json`, in the tool's sentences
    /// (`describe`, from the tool crate's `summary.rs`); see [`crate::summary`].
    pub fn to_text(
        &self,
        describe: crate::summary::Describe,
        style: &crate::summary::Style,
    ) -> String {
        crate::summary::render_value(&self.to_value(), describe, style)
    }
}

/// RFC 3339 timestamps in UTC with millisecond precision.
pub mod rfc3339 {
    use std::time::SystemTime;

    pub fn format(time: SystemTime) -> String {
        humantime::format_rfc3339_millis(time).to_string()
    }

    pub fn serialize<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*time))
    }
}
