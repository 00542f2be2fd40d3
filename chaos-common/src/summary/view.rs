//! A report read back from its JSON form: what the text summary is rendered from, for a
//! run just finished (its [`crate::report::Report`] serialised), a report saved by a
//! runbook (`TOOL summary FILE`), or a pod's own report inside remote mode's aggregated
//! report (`targets[].details.report`). Every field has a default, so a partial report
//! (an older version, a pod that died half-way) still renders.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ReportView {
    pub action: String,
    pub tool: String,
    pub version: String,
    pub run_id: String,
    pub started_at: String,
    pub ended_at: String,
    pub hypothesis: String,
    pub parameters: Value,
    pub targets: Vec<TargetView>,
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    pub phases: Vec<PhaseView>,
    pub baseline: Value,
    pub observations: Value,
    pub criteria: Vec<CriterionView>,
    pub stop_reason: Option<String>,
    pub result: String,
    pub revert: RevertView,
    pub errors: Vec<ErrorView>,
    pub exit_code: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct TargetView {
    pub kind: String,
    pub name: String,
    pub details: Value,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PhaseView {
    pub name: String,
    pub duration_ms: f64,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CriterionView {
    pub name: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RevertView {
    pub status: String,
    pub duration_ms: Option<f64>,
    pub manual_steps: Vec<String>,
    pub details: Value,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ErrorView {
    pub kind: String,
    pub message: String,
}

impl ReportView {
    /// Reads a report from its JSON value; None when it is not a report object.
    pub fn from_value(value: &Value) -> Option<ReportView> {
        if !value.is_object() {
            return None;
        }
        serde_json::from_value(value.clone()).ok()
    }

    /// The report's observations as a tool's typed struct; None when absent or of
    /// another shape.
    pub fn observations<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.observations.is_null() {
            return None;
        }
        serde_json::from_value(self.observations.clone()).ok()
    }

    /// `revert.details` as a tool's typed struct.
    pub fn revert_details<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.revert.details.is_null() {
            return None;
        }
        serde_json::from_value(self.revert.details.clone()).ok()
    }

    /// How long the named phase took, in ms (the last one of that name).
    pub fn phase_ms(&self, name: &str) -> Option<f64> {
        self.phases
            .iter()
            .rev()
            .find(|p| p.name == name)
            .map(|p| p.duration_ms)
    }

    /// A number among the parameters.
    pub fn parameter_f64(&self, key: &str) -> Option<f64> {
        self.parameters.get(key).and_then(Value::as_f64)
    }

    /// True for remote mode's aggregated report: targets that carry a pod's own report.
    pub fn is_aggregate(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.details.get("report").is_some())
    }

    /// The first target's name: what a local run acted on.
    pub fn first_target(&self, kind: &str) -> Option<&str> {
        self.targets
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.name.as_str())
    }
}
