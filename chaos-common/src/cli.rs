//! Flag groups shared by every tool, flattened into each tool's clap struct.
//!
//! Validation that does not depend on the tool (duration against the cap in
//! [`CommonArgs::duration_or`], run id shape in [`CommonArgs::run_id`], safety flags in
//! [`CommonArgs::safety_policy`]) happens before anything is touched.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::duration::HumanDuration;
use crate::error::{ChaosError, Result};
use crate::runid;
use crate::safety::{Environment, SafetyPolicy, validate_namespace};

/// What stdout carries at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The report in sentences (TOOL summary FILE prints them for a saved JSON report).
    Text,
    /// Exactly one JSON document: the report (docs/report.md).
    Json,
}

/// How logs on stderr are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags every tool has.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// How long the fault stays in place: a bare number is seconds; also 90s, 2m, 1h.
    #[arg(short = 'd', long, value_name = "DURATION")]
    pub duration: Option<HumanDuration>,

    /// Print the exact plan as the report and touch nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub output: OutputFormat,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// Only warnings and errors on stderr.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail on stderr: -v debug, -vv trace (RUST_LOG overrides both).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Skip the 5-second countdown that live runs show on a terminal.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Name for everything this run creates (lowercase letters, digits, '-'; at most 40).
    /// Generated when absent.
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,

    /// Stop the running instance of this tool with this run id (SIGTERM, then wait for its
    /// revert), and exit.
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["cleanup", "dry_run"])]
    pub stop: Option<String>,

    /// Stop every running instance of this tool and remove what they left; safe to repeat.
    #[arg(long)]
    pub cleanup: bool,

    /// Longest duration accepted; a longer --duration is rejected.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_duration: HumanDuration,

    #[command(flatten)]
    pub safety: SafetyArgs,
}

/// The safety flags (docs/operator-guide.md, "Safety rules").
#[derive(Debug, Clone, Args)]
pub struct SafetyArgs {
    /// Environment this run targets; production enables the peak-hours and approval rules.
    #[arg(long, env = "CHAOS_ENVIRONMENT", value_enum, value_name = "ENV")]
    pub environment: Option<Environment>,

    /// Who approved this run (required for destructive faults in production).
    #[arg(long, value_name = "NAME")]
    pub approved_by: Option<String>,

    /// Allow a production run during peak hours (08:00-20:00 GMT); the reason is recorded
    /// in the report.
    #[arg(long, value_name = "REASON")]
    pub allow_peak_hours: Option<String>,

    /// Extra namespaces to protect, besides kube-system, kube-public and kube-node-lease
    /// (comma-separated; also CHAOS_PROTECTED_NAMESPACES).
    #[arg(
        long,
        env = "CHAOS_PROTECTED_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub protected_namespace: Vec<String>,
}

impl CommonArgs {
    /// The log level the flags ask for: warn with -q, info by default, debug with -v,
    /// trace with -vv.
    pub fn log_level(&self) -> tracing::Level {
        match (self.quiet, self.verbose) {
            (true, _) => tracing::Level::WARN,
            (false, 0) => tracing::Level::INFO,
            (false, 1) => tracing::Level::DEBUG,
            (false, _) => tracing::Level::TRACE,
        }
    }

    /// The duration to run, after the tool's default and the cap are applied.
    pub fn duration_or(&self, default: Duration) -> Result<Duration> {
        let duration = self
            .duration
            .map(HumanDuration::as_duration)
            .unwrap_or(default);
        check_duration(duration, self.max_duration.as_duration())?;
        Ok(duration)
    }

    /// The run id given, validated, or a fresh one.
    pub fn run_id(&self) -> Result<String> {
        match &self.run_id {
            Some(id) => runid::validate(id).map(|()| id.clone()),
            None => Ok(runid::generate()),
        }
    }

    pub fn safety_policy(&self) -> Result<SafetyPolicy> {
        let s = &self.safety;
        for (flag, value) in [
            ("--approved-by", &s.approved_by),
            ("--allow-peak-hours", &s.allow_peak_hours),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ChaosError::bad_input(format!(
                    "{flag} needs a non-empty value"
                )));
            }
        }
        let mut protected = Vec::new();
        for name in &s.protected_namespace {
            // "a,b," and "a, b" are common ways to write a list: skip empty items, trim.
            if name.trim().is_empty() {
                continue;
            }
            let name = validate_namespace(name).map_err(|e| {
                ChaosError::bad_input(format!(
                    "--protected-namespace / CHAOS_PROTECTED_NAMESPACES: {e}"
                ))
            })?;
            protected.push(name);
        }
        Ok(SafetyPolicy {
            environment: s.environment.unwrap_or(Environment::Unspecified),
            approved_by: s.approved_by.clone(),
            peak_hours_override: s.allow_peak_hours.clone(),
            extra_protected_namespaces: protected,
        })
    }
}

/// Rejects zero and over-cap durations, naming the flags to change.
pub fn check_duration(duration: Duration, cap: Duration) -> Result<()> {
    if duration.is_zero() {
        return Err(ChaosError::bad_input(
            "--duration must be greater than zero",
        ));
    }
    if duration > cap {
        return Err(ChaosError::bad_input(format!(
            "--duration {} is over the cap of {} (raise --max-duration if this is intended)",
            HumanDuration(duration),
            HumanDuration(cap)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tool").chain(args.iter().copied()))
    }

    #[test]
    fn duration_defaults_and_cap() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let cli = parse(&[])?;
        assert_eq!(
            cli.common.duration_or(Duration::from_secs(60))?,
            Duration::from_secs(60)
        );
        let cli = parse(&["-d", "2m"])?;
        assert_eq!(
            cli.common.duration_or(Duration::from_secs(60))?,
            Duration::from_secs(120)
        );
        let cli = parse(&["-d", "2h"])?;
        assert!(cli.common.duration_or(Duration::from_secs(60)).is_err());
        let cli = parse(&["-d", "2h", "--max-duration", "3h"])?;
        assert!(cli.common.duration_or(Duration::from_secs(60)).is_ok());
        let cli = parse(&["-d", "0"])?;
        assert!(cli.common.duration_or(Duration::from_secs(60)).is_err());
        Ok(())
    }

    #[test]
    fn unknown_units_are_a_parse_error() {
        assert!(parse(&["--duration", "10days"]).is_err());
        assert!(parse(&["--output", "yaml"]).is_err());
    }

    #[test]
    fn protected_namespaces_are_trimmed_and_bad_ones_rejected()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let cli = parse(&["--protected-namespace", "payments, lomash-wood ,,"])?;
        assert_eq!(
            cli.common.safety_policy()?.extra_protected_namespaces,
            ["payments", "lomash-wood"]
        );
        let cli = parse(&["--protected-namespace", "LOMASH-WOOD"])?;
        assert!(matches!(
            cli.common.safety_policy(),
            Err(ChaosError::BadInput(_))
        ));
        Ok(())
    }

    #[test]
    fn empty_approval_is_rejected() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let cli = parse(&["--approved-by", " "])?;
        assert!(cli.common.safety_policy().is_err());
        Ok(())
    }
}
