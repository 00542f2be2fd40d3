//! The `main` every tool binary calls: parse, init logs, handle `--stop` / `--cleanup`,
//! build the fault, run it, print the report, return the exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;
use serde_json::Value;
use tracing::{error, info};

use crate::cli::{CommonArgs, OutputFormat};
use crate::error::{ChaosError, Exit, Result};
use crate::fault::Fault;
use crate::instance;
use crate::progress::ProgressMode;
use crate::runner::{self, RunSettings};
use crate::signals;

/// How long `--stop` and `--cleanup` wait for a run to finish its revert.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const COUNTDOWN: Duration = Duration::from_secs(5);

/// A validated run: the fault, how long, and the parameters the report records.
#[derive(Debug)]
pub struct Prepared<F> {
    pub fault: F,
    pub duration: Duration,
    pub parameters: Value,
}

pub trait Tool: Parser {
    const NAME: &'static str;
    type Fault: Fault;

    fn common(&self) -> &CommonArgs;

    /// Validates every flag (bad input is `ChaosError::BadInput`) and builds the fault.
    fn prepare(self, run_id: &str) -> Result<Prepared<Self::Fault>>;

    /// Removes leftovers of this tool's kind that outlive processes (tables, files);
    /// returns one line per thing removed. Must be idempotent.
    fn cleanup_leftovers() -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Parses the command line; bad input is one line on stderr and exit code 2.
pub fn parse_or_exit<T: Parser>(name: &str) -> std::result::Result<T, ExitCode> {
    match T::try_parse() {
        Ok(cli) => Ok(cli),
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

pub fn main<T: Tool>(version: &'static str) -> ExitCode {
    let cli = match parse_or_exit::<T>(T::NAME) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    crate::logging::init(cli.common().log_format);
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
    let exit = runtime.block_on(run_tool(cli, version));
    // Workers spawned for progress or signals must not delay exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    exit.into()
}

async fn run_tool<T: Tool>(cli: T, version: &'static str) -> Exit {
    let common = cli.common().clone();
    if let Some(run_id) = &common.stop {
        return stop_one(T::NAME, run_id);
    }
    if common.cleanup {
        return cleanup::<T>();
    }
    let settings = match settings_for(&common, T::NAME, version) {
        Ok(s) => s,
        Err(e) => return bad_input(T::NAME, &e),
    };
    let prepared = match cli.prepare(&settings.run_id) {
        Ok(p) => p,
        Err(e) => return bad_input(T::NAME, &e),
    };
    let settings = RunSettings {
        duration: prepared.duration,
        parameters: prepared.parameters,
        ..settings
    };
    let shutdown = match signals::shutdown_signal() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: error: cannot install signal handlers: {e}", T::NAME);
            return Exit::Failed;
        }
    };
    let report = runner::run(prepared.fault, settings, shutdown).await;
    let text = match common.output {
        OutputFormat::Json => format!("{}\n", report.to_json()),
        OutputFormat::Text => report.to_text(),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    report.exit()
}

fn settings_for(
    common: &CommonArgs,
    tool: &'static str,
    version: &'static str,
) -> Result<RunSettings> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    Ok(RunSettings {
        tool,
        version,
        run_id: common.run_id()?,
        duration: Duration::ZERO,
        dry_run: common.dry_run,
        countdown: (interactive && !common.yes && !common.dry_run).then_some(COUNTDOWN),
        progress: ProgressMode::detect(common.log_format == crate::cli::LogFormat::Json),
        parameters: Value::Null,
        safety: common.safety_policy()?,
        register_instance: true,
    })
}

fn bad_input(tool: &str, e: &ChaosError) -> Exit {
    eprintln!("{tool}: error: {e}");
    e.exit()
}

fn stop_one(tool: &str, run_id: &str) -> Exit {
    if let Err(e) = crate::runid::validate(run_id) {
        return bad_input(tool, &e);
    }
    let found = instance::list(tool, Some(run_id));
    if found.is_empty() {
        info!("no running {tool} with run id {run_id}: nothing to stop");
        return Exit::Ok;
    }
    let mut exit = Exit::Ok;
    for running in &found {
        if let Err(e) = instance::stop(running, STOP_TIMEOUT) {
            error!("{e}");
            exit = Exit::Failed;
        }
    }
    exit
}

fn cleanup<T: Tool>() -> Exit {
    let mut exit = Exit::Ok;
    // Only runs in this network namespace: sweeping one pod (or test namespace) must not
    // stop experiments running elsewhere on the same host.
    let here = instance::list(T::NAME, None)
        .into_iter()
        .filter(|i| instance::in_own_network_namespace(i.pid));
    for running in here {
        if let Err(e) = instance::stop(&running, STOP_TIMEOUT) {
            error!("{e}");
            exit = Exit::RevertFailed;
        }
    }
    match T::cleanup_leftovers() {
        Ok(removed) => {
            for line in &removed {
                info!("removed {line}");
            }
            info!("cleanup done: {} leftover(s) removed", removed.len());
        }
        Err(e) => {
            error!("cleanup failed: {e}");
            exit = Exit::RevertFailed;
        }
    }
    exit
}
