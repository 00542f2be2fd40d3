//! The checks file: one named check per line, written by the runbook library from the
//! seed's pass criteria (format in docs/runbooks.md).
//!
//! ```text
//! chaos-verdict-checks    1
//! name=baseline p95 < 300 ms    window=baseline    metric=p95    lt=300
//! name=< 5 errors in the deletion window    window=fault    metric=errors    lt=5
//! name=p95 back to baseline within 60 s    metric=recovery-seconds    from=fault-start    le=60
//! name=login works    window=fault    request=auth-login    metric=error-rate    lt=1
//! name=pod rescheduled within 30 s    kind=value    source=faults/kill.json    pointer=/observations/kills/0/readyMs    scale=0.001    unit=s    le=30
//! name=logs carry PrismaClientKnownRequestError    kind=outcome    observed=pass    detail=kubectl logs ... matched
//! name=Stripe retries visible in the Stripe dashboard    kind=manual
//! ```
//!
//! Fields are `key=value`, separated by one tab (shown as spaces above); a value may
//! hold `=` but not a tab.

use std::path::{Path, PathBuf};

use crate::error::{Result, VerdictError};
use crate::series::StatusSpec;

const HEADER: &str = "chaos-verdict-checks\t1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Computed from k6's points over a window.
    Metric,
    /// A number the run produced elsewhere (a tool report, kubectl), compared with a threshold.
    Value,
    /// The outcome of a command the runbook ran: `pass` or `fail`.
    Outcome,
    /// Cannot be measured from here; an operator confirms it with `--confirm NAME`.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => observed < threshold,
            Op::Le => observed <= threshold,
            Op::Gt => observed > threshold,
            Op::Ge => observed >= threshold,
            Op::Eq => (observed - threshold).abs() < 1e-9,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    Requests,
    Errors,
    ErrorRate,
    P50,
    P95,
    P99,
    /// Requests whose status is in the set.
    Status(StatusSpec),
    /// Share of the window's requests whose status is in the set.
    StatusPercent(StatusSpec),
    /// p95 / the baseline's p95.
    P95Ratio,
    /// p95 - the baseline's p95.
    P95Delta,
    /// Error rate - the baseline's, in percentage points.
    ErrorRateDelta,
    /// Time to recover from the fault's end (or start with `from=fault-start`).
    RecoverySeconds {
        from_start: bool,
    },
    /// The highest error rate of any band window inside the window.
    PeakErrorRate,
    /// Seconds of band windows inside the window whose error rate was above the band.
    ElevatedErrorSeconds,
}

impl Metric {
    fn parse(text: &str) -> std::result::Result<Metric, String> {
        let status = |spec: &str| StatusSpec::parse(spec);
        Ok(match text {
            "requests" => Metric::Requests,
            "errors" => Metric::Errors,
            "error-rate" => Metric::ErrorRate,
            "p50" => Metric::P50,
            "p95" => Metric::P95,
            "p99" => Metric::P99,
            "p95-ratio" => Metric::P95Ratio,
            "p95-delta" => Metric::P95Delta,
            "error-rate-delta" => Metric::ErrorRateDelta,
            "recovery-seconds" => Metric::RecoverySeconds { from_start: false },
            "peak-error-rate" => Metric::PeakErrorRate,
            "elevated-error-seconds" => Metric::ElevatedErrorSeconds,
            _ => match text.split_once(':') {
                Some(("status", spec)) => Metric::Status(status(spec)?),
                Some(("status-percent", spec)) => Metric::StatusPercent(status(spec)?),
                _ => {
                    return Err(format!(
                        "unknown metric '{text}' (requests, errors, error-rate, p50, p95, p99, status:CODES, \
                     status-percent:CODES, p95-ratio, p95-delta, error-rate-delta, recovery-seconds, \
                     peak-error-rate, elevated-error-seconds)"
                    ));
                }
            },
        })
    }

    pub fn unit(&self) -> &'static str {
        match self {
            Metric::Requests | Metric::Errors | Metric::Status(_) => "requests",
            Metric::ErrorRate | Metric::StatusPercent(_) | Metric::PeakErrorRate => "%",
            Metric::ErrorRateDelta => "points",
            Metric::P50 | Metric::P95 | Metric::P99 | Metric::P95Delta => "ms",
            Metric::P95Ratio => "x baseline",
            Metric::RecoverySeconds { .. } | Metric::ElevatedErrorSeconds => "s",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub name: String,
    pub kind: Kind,
    /// `run`, a phase name, `fault`, `fault+SECONDS`, `fault:NAME`, `after-fault`.
    pub window: String,
    pub metric: Option<(String, Metric)>,
    pub request: Option<String>,
    pub op: Option<(Op, f64)>,
    pub observed: Option<String>,
    pub source: Option<PathBuf>,
    pub pointer: Option<String>,
    pub scale: f64,
    pub unit: String,
    pub detail: String,
}

/// Reads a checks file; every problem is bad input naming the line.
pub fn read(path: &Path) -> Result<Vec<CheckSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        VerdictError::bad(format!(
            "cannot read the checks file {}: {e}",
            path.display()
        ))
    })?;
    parse(&text).map_err(|e| VerdictError::bad(format!("{}: {e}", path.display())))
}

pub fn parse(text: &str) -> std::result::Result<Vec<CheckSpec>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, l)) if l.trim_end() == HEADER => {}
        _ => {
            return Err(format!(
                "the first line must be '{}'",
                HEADER.replace('\t', "<TAB>")
            ));
        }
    }
    let mut checks: Vec<CheckSpec> = Vec::new();
    for (i, line) in lines {
        let check = parse_line(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if checks.iter().any(|c| c.name == check.name) {
            return Err(format!(
                "line {}: a second check named '{}'",
                i + 1,
                check.name
            ));
        }
        checks.push(check);
    }
    if checks.is_empty() {
        return Err("no checks: a verdict needs at least one".into());
    }
    Ok(checks)
}

fn parse_line(line: &str) -> std::result::Result<CheckSpec, String> {
    let mut c = CheckSpec {
        name: String::new(),
        kind: Kind::Metric,
        window: "run".into(),
        metric: None,
        request: None,
        op: None,
        observed: None,
        source: None,
        pointer: None,
        scale: 1.0,
        unit: String::new(),
        detail: String::new(),
    };
    let mut from_start = None;
    for field in line.split('\t') {
        let (key, value) = field
            .split_once('=')
            .ok_or(format!("'{field}' is not key=value"))?;
        let number = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or(format!("{key}={value}: not a number"))
        };
        match key {
            "name" => c.name = value.trim().to_owned(),
            "kind" => c.kind = parse_kind(value)?,
            "window" => c.window = value.to_owned(),
            "metric" => c.metric = Some((value.to_owned(), Metric::parse(value)?)),
            "request" => c.request = Some(value.to_owned()),
            "lt" | "le" | "gt" | "ge" | "eq" => {
                if c.op.is_some() {
                    return Err("more than one of lt, le, gt, ge, eq".into());
                }
                c.op = Some((parse_op(key), number()?));
            }
            "observed" => c.observed = Some(value.to_owned()),
            "source" => c.source = Some(PathBuf::from(value)),
            "pointer" => c.pointer = Some(value.to_owned()),
            "scale" => c.scale = number()?,
            "unit" => c.unit = value.to_owned(),
            "detail" => c.detail = value.to_owned(),
            "from" => {
                from_start = Some(match value {
                    "fault-start" => true,
                    "fault-end" => false,
                    _ => return Err(format!("from={value}: expected fault-end or fault-start")),
                })
            }
            _ => return Err(format!("unknown key '{key}'")),
        }
    }
    if let (Some(fs), Some((_, Metric::RecoverySeconds { from_start }))) =
        (from_start, c.metric.as_mut())
    {
        *from_start = fs;
    }
    validate(c, from_start.is_some())
}

fn validate(mut c: CheckSpec, has_from: bool) -> std::result::Result<CheckSpec, String> {
    if c.name.is_empty() {
        return Err("every check needs name=".into());
    }
    let needs_op = matches!(c.kind, Kind::Metric | Kind::Value);
    if needs_op != c.op.is_some() {
        return Err(format!(
            "'{}': {} needs {} threshold (lt, le, gt, ge, eq)",
            c.name,
            kind_name(c.kind),
            if needs_op { "a" } else { "no" }
        ));
    }
    match c.kind {
        Kind::Metric => {
            let (_, metric) = c
                .metric
                .as_ref()
                .ok_or(format!("'{}': a metric check needs metric=", c.name))?;
            if has_from && !matches!(metric, Metric::RecoverySeconds { .. }) {
                return Err(format!(
                    "'{}': from= is for metric=recovery-seconds",
                    c.name
                ));
            }
            if matches!(metric, Metric::RecoverySeconds { .. }) && c.window == "run" {
                c.window = "fault".into();
            }
            c.unit = metric.unit().to_owned();
        }
        Kind::Value if c.observed.is_none() && c.source.is_none() => {
            return Err(format!(
                "'{}': a value check needs observed= or source= (with pointer=)",
                c.name
            ));
        }
        Kind::Value if c.source.is_some() != c.pointer.is_some() => {
            return Err(format!("'{}': source= and pointer= go together", c.name));
        }
        Kind::Outcome => match c.observed.as_deref() {
            None | Some("pass" | "fail" | "") => {}
            Some(other) => {
                return Err(format!(
                    "'{}': an outcome is pass or fail, not '{other}'",
                    c.name
                ));
            }
        },
        _ => {}
    }
    if let Some(extra) = c.window.strip_prefix("fault+") {
        if extra.parse::<u32>().is_err() {
            return Err(format!(
                "'{}': window={}: expected fault+SECONDS, e.g. fault+30",
                c.name, c.window
            ));
        }
    }
    if c.kind != Kind::Metric && (c.metric.is_some() || c.request.is_some()) {
        return Err(format!(
            "'{}': metric= and request= are for metric checks",
            c.name
        ));
    }
    Ok(c)
}

fn parse_kind(value: &str) -> std::result::Result<Kind, String> {
    Ok(match value {
        "metric" => Kind::Metric,
        "value" => Kind::Value,
        "outcome" => Kind::Outcome,
        "manual" => Kind::Manual,
        _ => {
            return Err(format!(
                "kind={value}: expected metric, value, outcome or manual"
            ));
        }
    })
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Metric => "metric",
        Kind::Value => "value",
        Kind::Outcome => "outcome",
        Kind::Manual => "manual",
    }
}

fn parse_op(key: &str) -> Op {
    match key {
        "lt" => Op::Lt,
        "le" => Op::Le,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        _ => Op::Eq,
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
