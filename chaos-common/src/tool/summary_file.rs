//! `TOOL summary [FILE]`: the text summary of a report saved with `--output json`, the
//! same renderer a text run prints with.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use serde_json::Value;

use crate::error::Exit;
use crate::summary::{ReportView, Style};

use super::Tool;

/// `TOOL summary [FILE]`: FILE, or stdin when absent or `-`; the last line that is a
/// report counts, so a runbook's log with the report at its end works too.
pub(super) const SUMMARY: &str = "summary";

pub(super) fn summary<T: Tool>(args: &[OsString]) -> ExitCode {
    let mut text = String::new();
    let read = match args {
        [] => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        [one] if one == "-" => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        [file] => std::fs::read_to_string(file).map(|t| text = t),
        _ => {
            eprintln!(
                "{}: error: usage: {} summary [REPORT.json|-]",
                T::NAME,
                T::NAME
            );
            return Exit::BadInput.into();
        }
    };
    if let Err(e) = read {
        eprintln!("{}: error: cannot read the report: {e}", T::NAME);
        return Exit::BadInput.into();
    }
    let report = serde_json::from_str::<Value>(text.trim()).ok().or_else(|| {
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .find(|v| v.get("schemaVersion").is_some())
    });
    match report.as_ref().and_then(ReportView::from_value) {
        Some(view) if !view.tool.is_empty() => {
            print!(
                "{}",
                crate::summary::render(&view, T::summarize, &Style::detect())
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "{}: error: no report found (give the JSON a run printed with --output json)",
                T::NAME
            );
            Exit::BadInput.into()
        }
    }
}
