//! The parts of a chaos-tools JSON report (docs/report.md) that a verdict needs: when
//! the fault was in place and whether it was reverted.
//!
//! The fault window is `phases[apply].startedAt .. phases[revert].endedAt`: from the
//! first change the tool made to the moment its revert finished. For pod-killer
//! (nothing to revert) that is the deletion plus the recovery watch.

use std::path::Path;

use serde_json::Value;

use crate::error::{Result, VerdictError};
use crate::time::{self, Millis};

#[derive(Debug, Clone, PartialEq)]
pub struct ToolReport {
    pub tool: String,
    pub run_id: String,
    /// `ok`, `failed`, `aborted`, `refused`, `dry-run`, `bad-input`.
    pub result: String,
    /// `not-applied`, `reverted`, `failed`.
    pub revert_status: String,
    pub exit_code: i64,
    pub apply_started: Option<Millis>,
    pub revert_ended: Option<Millis>,
}

impl ToolReport {
    /// Reads a report. A tool's stdout may hold log lines before the report when a
    /// wrapper merged streams, so the last line that is a JSON object is taken.
    pub fn read(path: &Path) -> Result<ToolReport> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            VerdictError::bad(format!(
                "cannot read the tool report {}: {e}",
                path.display()
            ))
        })?;
        let value = last_json_object(&text).ok_or_else(|| {
            VerdictError::bad(format!(
                "{} holds no JSON report (a tool run with --output json prints one)",
                path.display()
            ))
        })?;
        Self::from_value(&value).map_err(|e| VerdictError::bad(format!("{}: {e}", path.display())))
    }

    pub fn from_value(v: &Value) -> std::result::Result<ToolReport, String> {
        let text = |key: &str| -> std::result::Result<String, String> {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("not a chaos-tools report: no '{key}'"))
        };
        let phase_time = |name: &str, key: &str| -> std::result::Result<Option<Millis>, String> {
            let phases = v.get("phases").and_then(Value::as_array);
            let found = phases.and_then(|p| {
                p.iter()
                    .find(|ph| ph.get("name").and_then(Value::as_str) == Some(name))
            });
            match found.and_then(|ph| ph.get(key)).and_then(Value::as_str) {
                None => Ok(None),
                Some(t) => time::parse(t).map(Some).map_err(|e| e.to_string()),
            }
        };
        Ok(ToolReport {
            tool: text("tool")?,
            run_id: text("runId")?,
            result: text("result")?,
            revert_status: v
                .pointer("/revert/status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            exit_code: v.get("exitCode").and_then(Value::as_i64).unwrap_or(-1),
            apply_started: phase_time("apply", "startedAt")?,
            revert_ended: phase_time("revert", "endedAt")?,
        })
    }

    /// Whether the report says the fault is gone: reverted, or never applied.
    pub fn removed(&self) -> bool {
        matches!(self.revert_status.as_str(), "reverted" | "not-applied") && self.exit_code != 4
    }
}

fn last_json_object(text: &str) -> Option<Value> {
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        return Some(v);
    }
    text.lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(phases: Value, revert: &str) -> Value {
        json!({"tool": "cpu-hog", "runId": "r1", "result": "ok", "exitCode": 0,
               "phases": phases, "revert": {"status": revert}})
    }

    #[test]
    fn the_window_is_apply_start_to_revert_end() {
        let v = report(
            json!([
                {"name": "safety", "startedAt": "2026-11-28T07:00:00.000Z", "endedAt": "2026-11-28T07:00:00.001Z"},
                {"name": "apply", "startedAt": "2026-11-28T07:00:01.000Z", "endedAt": "2026-11-28T07:00:01.100Z"},
                {"name": "observe", "startedAt": "2026-11-28T07:00:01.100Z", "endedAt": "2026-11-28T07:00:11.100Z"},
                {"name": "revert", "startedAt": "2026-11-28T07:00:11.100Z", "endedAt": "2026-11-28T07:00:11.300Z"}
            ]),
            "reverted",
        );
        let r = ToolReport::from_value(&v).unwrap();
        assert_eq!(
            r.apply_started.map(time::format).as_deref(),
            Some("2026-11-28T07:00:01.000Z")
        );
        assert_eq!(
            r.revert_ended.map(time::format).as_deref(),
            Some("2026-11-28T07:00:11.300Z")
        );
        assert!(r.removed());
    }

    #[test]
    fn a_failed_revert_is_not_removed() {
        let mut v = report(json!([]), "failed");
        v["exitCode"] = json!(4);
        let r = ToolReport::from_value(&v).unwrap();
        assert!(!r.removed());
        assert_eq!(r.apply_started, None);
    }

    #[test]
    fn the_report_is_found_after_log_lines() {
        let text = format!("starting\n{}\n", report(json!([]), "reverted"));
        assert!(last_json_object(&text).is_some());
        assert!(
            ToolReport::from_value(&json!({"hello": 1}))
                .unwrap_err()
                .contains("'tool'")
        );
    }
}
