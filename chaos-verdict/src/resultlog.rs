//! The result log: the seed's Markdown table `| Date | Experiment | Environment | Result
//! | Notes |`, one row per run, and the figures of an experiment's previous run.
//!
//! - A run's row replaces that experiment's placeholder row (Date and Result `—`, as the
//!   seed's "Pending first run" and "Scheduled post-launch" rows) when there is one, and
//!   otherwise goes after the table's last row. A file without the table gets one at its
//!   end (a new file: a title and the table).
//! - The previous run's figures are read back from its Notes cell, which the verdict
//!   writes in a fixed form: `recovery 12.3 s`, `fault p95 210 ms`, `fault errors 0.4%`
//!   (`not recovered` when it did not). The log is then the only record needed: it is the
//!   file teams keep and review, and a sidecar could drift from it. Hand-written rows
//!   without those figures are skipped when looking for the previous run's figures.
//! - `|` in a cell is written `\|` and newlines become spaces, so a row stays one row.

use serde::{Deserialize, Serialize};

const COLUMNS: [&str; 5] = ["Date", "Experiment", "Environment", "Result", "Notes"];
const PLACEHOLDER_CELLS: [&str; 3] = ["—", "-", ""];

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub date: String,
    pub experiment: String,
    pub environment: String,
    pub result: String,
    pub notes: String,
}

/// The figures a run's notes carry, for the comparison with the next run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub recovery_seconds: Option<f64>,
    pub fault_p95_ms: Option<f64>,
    pub fault_error_rate_percent: Option<f64>,
}

/// The previous run of an experiment, as the log records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Previous {
    pub date: String,
    pub result: String,
    pub figures: Figures,
}

impl Row {
    pub fn to_markdown(&self) -> String {
        let cells = [
            &self.date,
            &self.experiment,
            &self.environment,
            &self.result,
            &self.notes,
        ];
        let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
        format!("| {} |", cells.join(" | "))
    }

    fn is_placeholder(&self) -> bool {
        PLACEHOLDER_CELLS.contains(&self.date.as_str())
            && PLACEHOLDER_CELLS.contains(&self.result.as_str())
    }
}

fn escape(cell: &str) -> String {
    cell.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .trim()
        .to_owned()
}

/// Splits a table line into cells, honouring `\|`.
fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?;
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    if !cell.trim().is_empty() {
        out.push(cell.trim().to_owned());
    }
    Some(out)
}

fn parse_row(line: &str) -> Option<Row> {
    let c = cells(line)?;
    if c.len() != COLUMNS.len() {
        return None;
    }
    Some(Row {
        date: c[0].clone(),
        experiment: c[1].clone(),
        environment: c[2].clone(),
        result: c[3].clone(),
        notes: c[4].clone(),
    })
}

/// The line range of the result-log table: (header line, one past the last row).
fn table(lines: &[&str]) -> Option<(usize, usize)> {
    let header = lines
        .iter()
        .position(|l| cells(l).is_some_and(|c| c == COLUMNS))?;
    let mut end = header + 1;
    while end < lines.len() && lines[end].trim_start().starts_with('|') {
        end += 1;
    }
    Some((header, end))
}

/// The log's text with `row` added (see the module docs for where).
pub fn with_row(text: &str, row: &Row) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let new = row.to_markdown();
    let Some((header, end)) = table(&lines) else {
        let mut out = text.to_owned();
        if out.is_empty() {
            out.push_str("# Chaos Test Result Log\n");
        } else if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "\n| {} |\n|------|-----------|-------------|--------|-------|\n{new}\n",
            COLUMNS.join(" | ")
        ));
        return out;
    };
    let placeholder = (header + 2..end).find(|&i| {
        parse_row(lines[i]).is_some_and(|r| r.experiment == row.experiment && r.is_placeholder())
    });
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    match placeholder {
        Some(i) => out[i] = new,
        None => out.insert(end, new),
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

/// The last recorded run of `experiment` whose notes carry figures.
pub fn previous(text: &str, experiment: &str) -> Option<Previous> {
    let lines: Vec<&str> = text.lines().collect();
    let (header, end) = table(&lines)?;
    lines[(header + 1).min(end)..end]
        .iter()
        .rev()
        .filter_map(|l| parse_row(l))
        .filter(|r| r.experiment == experiment && !r.is_placeholder())
        .map(|r| Previous {
            figures: figures(&r.notes),
            date: r.date,
            result: r.result,
        })
        .find(|p| p.figures != Figures::default())
}

/// Reads the figures the verdict writes into Notes.
pub fn figures(notes: &str) -> Figures {
    Figures {
        recovery_seconds: number_after(notes, "recovery ", " s"),
        fault_p95_ms: number_after(notes, "fault p95 ", " ms"),
        fault_error_rate_percent: number_after(notes, "fault errors ", "%"),
    }
}

fn number_after(text: &str, prefix: &str, suffix: &str) -> Option<f64> {
    text.match_indices(prefix).find_map(|(i, _)| {
        let rest = &text[i + prefix.len()..];
        let end = rest.find(suffix)?;
        rest[..end].trim().parse().ok()
    })
}

/// The notes' figures part: `recovery 12.3 s; fault p95 210 ms (baseline 120 ms); fault errors 0.4% (baseline 0%)`.
pub fn figures_text(
    f: &Figures,
    baseline_p95: Option<f64>,
    baseline_errors: Option<f64>,
) -> String {
    let mut parts = Vec::new();
    parts.push(match f.recovery_seconds {
        Some(s) => format!("recovery {s} s"),
        None => "not recovered".to_owned(),
    });
    if let Some(p) = f.fault_p95_ms {
        let base = baseline_p95
            .map(|b| format!(" (baseline {b} ms)"))
            .unwrap_or_default();
        parts.push(format!("fault p95 {p} ms{base}"));
    }
    if let Some(e) = f.fault_error_rate_percent {
        let base = baseline_errors
            .map(|b| format!(" (baseline {b}%)"))
            .unwrap_or_default();
        parts.push(format!("fault errors {e}%{base}"));
    }
    parts.join("; ")
}

/// "recovery 12.3 s, last time 9.8 s; ..." against the previous run.
pub fn comparison(experiment: &str, now: &Figures, previous: Option<&Previous>) -> String {
    let Some(prev) = previous else {
        return format!("first recorded {experiment} run with figures in the result log");
    };
    let pair = |label: &str, unit: &str, a: Option<f64>, b: Option<f64>| -> String {
        let show =
            |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v}{unit}"));
        let show_now = if label == "recovery" && a.is_none() {
            "not recovered".to_owned()
        } else {
            show(a)
        };
        format!("{label} {show_now}, last time {}", show(b))
    };
    format!(
        "{}; {}; {} (previous {experiment} run: {}, {})",
        pair(
            "recovery",
            " s",
            now.recovery_seconds,
            prev.figures.recovery_seconds
        ),
        pair(
            "fault p95",
            " ms",
            now.fault_p95_ms,
            prev.figures.fault_p95_ms
        ),
        pair(
            "fault errors",
            "%",
            now.fault_error_rate_percent,
            prev.figures.fault_error_rate_percent
        ),
        prev.date,
        prev.result
    )
}

#[cfg(test)]
#[path = "resultlog_tests.rs"]
mod tests;
