//! The `main` every tool binary calls: dispatch hidden sub-commands, parse, init logs,
//! handle `--stop` / `--cleanup`, build the fault, run it, print the report, return the
//! exit code.
//!
//! Every invocation that gets past argument parsing prints exactly one report (with
//! `--output json`, one JSON document), whatever its exit code: a run, `--stop RUN_ID`
//! and `--cleanup` alike (`action` tells them apart). Bad command lines are one line on
//! stderr and exit 2.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use clap::error::ErrorKind;
use serde_json::Value;
use tracing::error;

use crate::cli::{CommonArgs, OutputFormat};
use crate::error::{ChaosError, Exit, Result};
use crate::fault::Fault;
use crate::instance::Registry;
use crate::progress::ProgressMode;
use crate::report::{Action, Report, ReportError, RunResult};
use crate::runner::{self, RunSettings};
use crate::signals;
use crate::summary::{ReportView, Said, Style};

const COUNTDOWN: Duration = Duration::from_secs(5);

/// A validated run: the fault, how long, and the parameters the report records.
#[derive(Debug)]
pub struct Prepared<F> {
    pub fault: F,
    pub duration: Duration,
    pub parameters: Value,
}

/// A hidden sub-command: the same binary started by itself with `name` as its first
/// argument (the network tools' `__watchdog`, memory-leak's `__allocate`). `run` gets the
/// arguments after the name, unparsed and possibly not UTF-8.
#[derive(Debug, Clone, Copy)]
pub struct Hidden {
    pub name: &'static str,
    pub run: fn(&[OsString]) -> ExitCode,
}

pub trait Tool: Parser {
    const NAME: &'static str;
    type Fault: Fault;
    /// Sub-commands dispatched before clap sees the command line.
    const HIDDEN: &'static [Hidden] = &[];

    fn common(&self) -> &CommonArgs;

    /// Validates every flag (bad input is `ChaosError::BadInput`) and builds the fault.
    /// No network and no API calls: those belong in [`Fault::resolve`].
    fn prepare(self, run_id: &str) -> Result<Prepared<Self::Fault>>;

    /// Removes leftovers of this tool's kind that outlive processes (tables, files);
    /// returns one line per thing removed. With `dry_run`, removes nothing and returns
    /// what it would remove. Must be idempotent.
    fn cleanup_leftovers(_dry_run: bool) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Remote mode (docs/remote.md): the request when the flags select pods, `None` for
    /// local mode. Validation only, like `prepare`; bad input is `ChaosError::BadInput`.
    #[cfg(feature = "remote")]
    fn remote(&self) -> Result<Option<crate::remote::Request>> {
        Ok(None)
    }

    /// The freeze switch a local run that reaches the cluster obeys (pod-killer): the run
    /// stops within seconds of a `chaos-freeze` ConfigMap appearing. Remote runs have
    /// theirs from the remote flags.
    #[cfg(feature = "kube")]
    fn freeze_switch(&self) -> Option<crate::kube::freeze::FreezeSwitch> {
        None
    }

    /// The tool's sentences for a run report whose fault was applied (its
    /// `summary.rs`: what was asked, what was achieved, for how long, on what, how it
    /// ended); None leaves the generic sentence. See [`crate::summary`].
    fn summarize(_report: &ReportView, _style: &Style) -> Option<Said> {
        None
    }

    /// The long flag the TypeScript original's `-h` stood for, when it was not help
    /// (memory-leak's `--hold-seconds`): `-h 60` then says to use it (exit 2).
    const ORIGINAL_SHORT_H: Option<&'static str> = None;
}

/// The git commit this binary was built from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("CHAOS_GIT_COMMIT");
/// The day it was built (UTC, or `SOURCE_DATE_EPOCH`).
pub const BUILD_DATE: &str = env!("CHAOS_BUILD_DATE");

/// `0.1.0+<commit>`: the version the report records (semver build metadata).
pub fn report_version(version: &str) -> String {
    format!("{version}+{GIT_COMMIT}")
}

/// What `--version` prints after the tool's name.
pub fn long_version(version: &str) -> String {
    format!("{version} (commit {GIT_COMMIT}, built {BUILD_DATE})")
}

/// The tool's clap command with the build's version.
pub(crate) fn command<T: Tool>(version: &'static str) -> clap::Command {
    T::command()
        .version(long_version(version))
        .long_version(long_version(version))
}

/// Parses the command line; bad input is one line on stderr and exit code 2.
pub fn parse_or_exit<T: Tool>(
    version: &'static str,
    args: &[OsString],
) -> std::result::Result<T, ExitCode> {
    parse_with_matches::<T>(version, args).map(|(cli, _)| cli)
}

/// [`parse_or_exit`], keeping clap's matches (remote mode rebuilds the in-pod command
/// line from them).
pub fn parse_with_matches<T: Tool>(
    version: &'static str,
    args: &[OsString],
) -> std::result::Result<(T, clap::ArgMatches), ExitCode> {
    let name = T::NAME;
    if let Some(message) = help_with_a_value(args, T::ORIGINAL_SHORT_H) {
        eprintln!("{name}: error: {message}");
        return Err(Exit::BadInput.into());
    }
    let argv = std::iter::once(OsString::from(name)).chain(args.iter().cloned());
    let parsed = command::<T>(version)
        .try_get_matches_from(argv)
        .and_then(|matches| T::from_arg_matches(&matches).map(|cli| (cli, matches)));
    match parsed {
        Ok(parsed) => Ok(parsed),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{name}: error: {first} (see {name} --help)");
            Err(Exit::BadInput.into())
        }
    }
}

/// `-h 60`: help followed by a value is a mistake (the original memory-leak's `-h` was
/// its hold time); printing help and exiting 0 would let a script believe it ran.
fn help_with_a_value(args: &[OsString], original: Option<&str>) -> Option<String> {
    let at = args.iter().position(|a| a == "-h")?;
    let value = args.get(at + 1)?.to_str()?;
    crate::duration::parse_duration(value).ok()?;
    Some(match original {
        Some(flag) => format!(
            "-h is help here; the original's -h {value} is {flag} {value} (nothing was run)"
        ),
        None => format!("-h is help and takes no value ('{value}' follows it); nothing was run"),
    })
}

pub fn main<T: Tool>(version: &'static str) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let hidden = args
        .first()
        .and_then(|first| T::HIDDEN.iter().find(|h| *first == h.name));
    if let Some(hidden) = hidden {
        return (hidden.run)(&args[1..]);
    }
    match args.first().and_then(|a| a.to_str()) {
        Some(shell::COMPLETIONS) => return shell::completions::<T>(version, &args[1..]),
        Some(shell::MAN_PAGE) => return shell::man_page::<T>(version),
        Some(summary_file::SUMMARY) => return summary_file::summary::<T>(&args[1..]),
        _ => {}
    }
    let (cli, matches) = match parse_with_matches::<T>(version, &args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    crate::logging::init(cli.common().log_format, cli.common().log_level());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: error: cannot start the async runtime: {e}", T::NAME);
            return Exit::Failed.into();
        }
    };
    let output = cli.common().output;
    let command = command::<T>(version);
    let report = runtime.block_on(run_tool(cli, &report_version(version), &command, &matches));
    // Workers spawned for progress or signals must not delay exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match report {
        Some(report) => {
            print_report::<T>(&report, output);
            report.exit().into()
        }
        None => Exit::BadInput.into(),
    }
}

fn print_report<T: Tool>(report: &Report, output: OutputFormat) {
    let text = match output {
        OutputFormat::Json => format!("{}\n", report.to_json()),
        OutputFormat::Text => report.to_text(T::summarize, &Style::detect()),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// The report of the invocation, or None for bad input (already said on stderr).
async fn run_tool<T: Tool>(
    cli: T,
    version: &str,
    command: &clap::Command,
    matches: &clap::ArgMatches,
) -> Option<Report> {
    let common = cli.common().clone();
    #[cfg(feature = "remote")]
    match cli.remote() {
        Ok(Some(request)) => {
            let invocation = crate::remote::run::Invocation {
                tool: T::NAME,
                version,
                command,
                matches,
            };
            return remote_tool(request, invocation, &common).await;
        }
        Ok(None) => {}
        Err(e) => return bad_input(T::NAME, &e),
    }
    #[cfg(not(feature = "remote"))]
    let _ = (command, matches);
    if let Some(run_id) = &common.stop {
        if let Err(e) = crate::runid::validate(run_id) {
            return bad_input(T::NAME, &e);
        }
        return Some(sweep::stop_one(T::NAME, version, run_id));
    }
    if common.cleanup {
        return Some(sweep::cleanup::<T>(version, common.dry_run));
    }
    let settings = match settings_for(&common, T::NAME, version) {
        Ok(s) => s,
        Err(e) => return bad_input(T::NAME, &e),
    };
    #[cfg(feature = "kube")]
    let cli_freeze = cli.freeze_switch();
    let prepared = match cli.prepare(&settings.run_id) {
        Ok(p) => p,
        Err(e @ ChaosError::BadInput(_)) => return bad_input(T::NAME, &e),
        Err(e) => {
            error!("{e}");
            let mut report = Report::new(T::NAME, version, &settings.run_id, Action::Run);
            report.errors.push(ReportError::from(&e));
            report.stop_reason = Some("prepare-failed".into());
            let result = match e {
                ChaosError::Refused { .. } => RunResult::Refused,
                _ => RunResult::Failed,
            };
            return Some(report.finish(result));
        }
    };
    let settings = RunSettings {
        duration: prepared.duration,
        parameters: prepared.parameters,
        ..settings
    };
    let shutdown = match signals::shutdown_signal() {
        Ok(s) => s,
        Err(e) => return Some(no_signals(T::NAME, version, &settings.run_id, e)),
    };
    #[cfg(feature = "kube")]
    if let Some(switch) = cli_freeze {
        let stop = async move {
            tokio::select! {
                reason = shutdown => reason,
                reason = crate::kube::freeze::wait_frozen(switch) => reason,
            }
        };
        return Some(runner::run(prepared.fault, settings, stop).await);
    }
    Some(runner::run(prepared.fault, settings, shutdown).await)
}

fn no_signals(tool: &str, version: &str, run_id: &str, e: std::io::Error) -> Report {
    let e = ChaosError::Precondition(format!("cannot install signal handlers: {e}"));
    error!("{e}");
    let mut report = Report::new(tool, version, run_id, Action::Run);
    report.errors.push(ReportError::from(&e));
    report.finish(RunResult::Failed)
}

/// Remote mode: `--stop RUNID` in the matched pods, or the remote run.
#[cfg(feature = "remote")]
async fn remote_tool(
    request: crate::remote::Request,
    invocation: crate::remote::run::Invocation<'_>,
    common: &CommonArgs,
) -> Option<Report> {
    let tool = invocation.tool;
    if let Some(run_id) = &common.stop {
        if let Err(e) = crate::runid::validate(run_id) {
            return bad_input(tool, &e);
        }
        let stopped = crate::remote::stop::stop(&request, invocation, run_id).await;
        return match stopped {
            Err(e @ ChaosError::BadInput(_)) => bad_input(tool, &e),
            Err(e) => Some(failed_report(
                tool,
                invocation.version,
                run_id,
                Action::Stop,
                &e,
            )),
            Ok(report) => Some(report),
        };
    }
    if common.cleanup {
        let cleaned = crate::remote::cleanup::cleanup(&request, invocation, common.dry_run).await;
        return match cleaned {
            Err(e @ ChaosError::BadInput(_)) => bad_input(tool, &e),
            Err(e) => {
                let run_id = crate::runid::generate();
                Some(failed_report(
                    tool,
                    invocation.version,
                    &run_id,
                    Action::Cleanup,
                    &e,
                ))
            }
            Ok(report) => Some(report),
        };
    }
    let settings = match settings_for(common, tool, invocation.version) {
        Ok(s) => RunSettings {
            duration: common.max_duration.as_duration(),
            ..s
        },
        Err(e) => return bad_input(tool, &e),
    };
    let shutdown = match signals::shutdown_signal() {
        Ok(s) => s,
        Err(e) => return Some(no_signals(tool, invocation.version, &settings.run_id, e)),
    };
    match crate::remote::run::run(request, invocation, settings, shutdown).await {
        Ok(report) => Some(report),
        Err(e) => bad_input(tool, &e),
    }
}

/// The report of an invocation that failed before it could do anything.
#[cfg(feature = "remote")]
fn failed_report(
    tool: &str,
    version: &str,
    run_id: &str,
    action: Action,
    e: &ChaosError,
) -> Report {
    error!("{e}");
    let mut report = Report::new(tool, version, run_id, action);
    report.errors.push(ReportError::from(e));
    let result = match e {
        ChaosError::Refused { .. } => RunResult::Refused,
        _ => RunResult::Failed,
    };
    report.finish(result)
}

fn settings_for(common: &CommonArgs, tool: &'static str, version: &str) -> Result<RunSettings> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    Ok(RunSettings {
        tool,
        version: version.to_owned(),
        run_id: common.run_id()?,
        duration: Duration::ZERO,
        dry_run: common.dry_run,
        countdown: (interactive && !common.yes && !common.dry_run).then_some(COUNTDOWN),
        progress: ProgressMode::detect(common.log_format == crate::cli::LogFormat::Json),
        parameters: Value::Null,
        safety: common.safety_policy()?,
        now: test_clock()?,
        registry: Some(Registry::from_env()),
        // A dry run's text summary is the plan: logging it too would print it twice.
        log_plan: !(common.dry_run && common.output == OutputFormat::Text),
    })
}

/// Debug builds only (the test suite's binaries): `CHAOS_TEST_NOW` (seconds since the
/// Unix epoch) replaces the clock the safety rules read, so that the peak-hours rule is
/// tested on both sides of the clock. Release builds (every binary an operator runs)
/// ignore it.
fn test_clock() -> Result<Option<SystemTime>> {
    if !cfg!(debug_assertions) {
        return Ok(None);
    }
    let Some(value) = std::env::var_os("CHAOS_TEST_NOW") else {
        return Ok(None);
    };
    let secs: u64 = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ChaosError::bad_input("CHAOS_TEST_NOW must be seconds since the epoch"))?;
    Ok(Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)))
}

fn bad_input(tool: &str, e: &ChaosError) -> Option<Report> {
    eprintln!("{tool}: error: {e}");
    None
}

mod shell;
mod summary_file;
mod sweep;
