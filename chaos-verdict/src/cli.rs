//! The command line: one sub-command per job the runbooks give this program. Doc
//! comments are the `--help`. Values are checked here; files are checked where they are
//! read. Every mistake is one line on stderr and exit 2.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "chaos-verdict",
    version,
    about = "Windowed k6 statistics, named checks, time to recover, the abort guard, the verdict and the result log of the EXP runbooks (docs/runbooks.md)",
    after_help = "Exit codes: 0 PASS, 1 FAIL, 5 PARTIAL, 6 ABORTED (verdict) or tripped (guard), 2 bad input, 3 refused (safety)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge a run: evaluate the checks, write result.json, seconds.csv, summary.md and timeline.svg.
    Verdict(VerdictArgs),
    /// Evaluate only the checks of one phase (default: baseline) before going on; exit 0 or 1.
    Gate(GateArgs),
    /// The abort guard: read what k6 appended since the last call and judge the last window.
    Guard(GuardArgs),
    /// Write a run's row into the result log (atomically, under a lock) and print it.
    Log(LogArgs),
    /// Statistics of a window of a k6 points file, as JSON.
    Stats(StatsArgs),
    /// Print the value at a JSON pointer of a JSON file (strings raw, the rest as JSON).
    Get(GetArgs),
    /// Print the first element of a JSON array whose fields contain the given texts (AWS events, API lists).
    Find(FindArgs),
    /// Write a JSON object from KEY=VALUE fields (KEY[]=V appends to a list, KEY:json=V embeds JSON).
    Manifest(ManifestArgs),
    /// The runbook's safety rules: protected namespaces, peak hours, approval, observer.
    Safety(SafetyArgs),
    /// Check a checks file and/or a timeline file without judging anything.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct Inputs {
    /// k6's points (`k6 run --out json=FILE`); repeat it for several k6 runs at once.
    #[arg(long, value_name = "FILE", required = true)]
    pub points: Vec<PathBuf>,
    /// The timeline the runbook wrote (phases, faults, marks).
    #[arg(long, value_name = "FILE")]
    pub timeline: PathBuf,
    /// The checks file (named checks with windows and thresholds).
    #[arg(long, value_name = "FILE")]
    pub checks: PathBuf,
    /// Confirms a manual check by its exact name (repeatable).
    #[arg(long, value_name = "NAME")]
    pub confirm: Vec<String>,
    #[command(flatten)]
    pub band: BandArgs,
}

#[derive(Debug, Args)]
pub struct BandArgs {
    /// Band: a window's p95 may be this many times the baseline p95...
    #[arg(long, default_value_t = 1.25, value_parser = positive)]
    pub band_p95_factor: f64,
    /// ...or the baseline p95 plus this many ms, whichever is larger.
    #[arg(long, default_value_t = 25.0, value_parser = non_negative)]
    pub band_p95_slack_ms: f64,
    /// Band: a window's error rate may be the baseline's plus this many percentage points.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub band_error_points: f64,
    /// Length of one recovery window, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = positive)]
    pub band_window_seconds: f64,
    /// Consecutive windows inside the band that make a recovery.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub band_windows: u32,
}

#[derive(Debug, Args)]
pub struct VerdictArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// The run directory: result.json, seconds.csv, summary.md and timeline.svg go here.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Experiment id as the result log writes it (EXP-001, GAME-DAY).
    #[arg(long, value_parser = experiment_id)]
    pub experiment: String,
    #[arg(long, value_parser = run_id)]
    pub run_id: String,
    #[arg(long, value_enum)]
    pub environment: Environment,
    /// The result log, read for the previous run of the experiment (nothing is written).
    #[arg(long, value_name = "FILE")]
    pub result_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// The phase whose checks are evaluated.
    #[arg(long, default_value = "baseline")]
    pub phase: String,
}

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// k6's points file, as it grows; repeat it for several k6 runs at once.
    #[arg(long, value_name = "FILE", required = true)]
    pub points: Vec<PathBuf>,
    /// Where the guard keeps its offset and counts between calls (created on first use).
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Trip above this error rate, in percent.
    #[arg(long, default_value_t = 10.0, value_parser = percent)]
    pub error_rate: f64,
    /// The sliding window, in whole seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub window: i64,
    /// Fewer requests than this in the window are not judged.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_samples: u64,
    /// Consecutive breaching evaluations (one a second) that trip the guard.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub breaches: u32,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The result log (Markdown; created if missing).
    #[arg(long, value_name = "FILE")]
    pub result_log: PathBuf,
    /// Take the row from a verdict's result.json...
    #[arg(long, value_name = "FILE", conflicts_with_all = ["experiment", "result", "notes"])]
    pub from: Option<PathBuf>,
    /// ...or give it (when no verdict could be computed).
    #[arg(long, value_parser = experiment_id, requires_all = ["environment", "result", "notes"])]
    pub experiment: Option<String>,
    #[arg(long, value_enum)]
    pub environment: Option<Environment>,
    #[arg(long, value_enum)]
    pub result: Option<ResultWord>,
    #[arg(long)]
    pub notes: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[arg(long, value_name = "FILE", required = true)]
    pub points: Vec<PathBuf>,
    /// Window start (RFC 3339); default: the first request.
    #[arg(long)]
    pub from: Option<String>,
    /// Window end, exclusive (RFC 3339); default: after the last request.
    #[arg(long)]
    pub to: Option<String>,
    /// Only requests with this k6 `name` tag.
    #[arg(long)]
    pub request: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    pub file: PathBuf,
    /// RFC 6901 JSON pointer, e.g. /phases/0/startedAt.
    pub pointer: String,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    pub file: PathBuf,
    /// RFC 6901 JSON pointer to the array, e.g. /Events.
    pub array: String,
    /// POINTER=TEXT inside each element: a string containing TEXT (case-insensitive), or
    /// an array holding such a string; all must hold (repeatable).
    #[arg(long, value_name = "POINTER=TEXT")]
    pub contains: Vec<String>,
    /// Print only this pointer of the element found (strings raw, the rest as JSON).
    #[arg(long, value_name = "POINTER")]
    pub get: Option<String>,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// KEY=VALUE, KEY[]=VALUE (list), KEY:json=JSON.
    #[arg(value_name = "FIELD")]
    pub fields: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SafetyArgs {
    #[arg(long, value_parser = experiment_id)]
    pub experiment: String,
    #[arg(long, value_enum)]
    pub environment: Environment,
    /// Namespaces the experiment touches (repeatable).
    #[arg(long)]
    pub namespace: Vec<String>,
    /// Extra protected namespaces (repeatable; comma-separated lists allowed).
    #[arg(long, env = "CHAOS_PROTECTED_NAMESPACES", value_delimiter = ',')]
    pub protected_namespace: Vec<String>,
    /// Who approved a destructive experiment (EXP-008, EXP-009).
    #[arg(long)]
    pub approved_by: Option<String>,
    /// The second engineer watching the dashboards (required in production).
    #[arg(long)]
    pub observer: Option<String>,
    /// Run in production during peak hours anyway; the reason is recorded.
    #[arg(long, value_name = "REASON")]
    pub allow_peak_hours: Option<String>,
    /// The experiment is destructive: it needs --approved-by in every environment.
    #[arg(long)]
    pub destructive: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[arg(long, value_name = "FILE")]
    pub checks: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPERCASE")]
pub enum ResultWord {
    Pass,
    Fail,
    Partial,
    Aborted,
}

fn number(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{text}' is not a number"))
}

fn positive(text: &str) -> Result<f64, String> {
    number(text).and_then(|v| {
        if v > 0.0 {
            Ok(v)
        } else {
            Err(format!("{v} must be above 0"))
        }
    })
}

fn non_negative(text: &str) -> Result<f64, String> {
    number(text).and_then(|v| {
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("{v} must not be negative"))
        }
    })
}

fn percent(text: &str) -> Result<f64, String> {
    number(text).and_then(|v| {
        if (0.0..100.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} must be from 0 to below 100"))
        }
    })
}

/// `EXP-001`, `GAME-DAY`: capitals, digits and single dashes, at most 32.
pub fn experiment_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 32
        && text.starts_with(|c: char| c.is_ascii_uppercase())
        && !text.ends_with('-')
        && !text.contains("--")
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{text}' is not an experiment id like EXP-001 or GAME-DAY"
        ))
    }
}

/// The tools' run id rule: lowercase letters, digits and '-', at most 40.
pub fn run_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 40
        && !text.starts_with('-')
        && !text.ends_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{text}' is not a run id (lowercase letters, digits and '-', at most 40)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ids_are_checked() {
        assert!(experiment_id("EXP-001").is_ok() && experiment_id("GAME-DAY").is_ok());
        for bad in ["exp-001", "EXP--1", "EXP-", "", "-EXP", "EXP 1"] {
            assert!(experiment_id(bad).is_err(), "{bad}");
        }
        assert!(run_id("20261128-070000-3fa9c1").is_ok());
        for bad in ["Run", "-a", "a-", "a_b", &"a".repeat(41)] {
            assert!(run_id(bad).is_err(), "{bad}");
        }
    }
}
