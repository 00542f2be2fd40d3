//! The lifecycle runner: safety rules, resolve, the fault's own rules, dry-run plan,
//! registration and access checks, countdown, baseline, apply, observe until the duration
//! ends or a stop condition fires, revert, report. Everything before apply touches
//! nothing; every invocation ends with one report.
//!
//! Revert is guaranteed once apply has succeeded: on normal end, duration expiry, any
//! signal the `shutdown` future reports, a failed observation, and a panic inside the
//! fault's apply/observe/conclude (caught with `catch_unwind`). Signals that arrive while
//! revert runs do not interrupt it (see [`crate::signals`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::error::ChaosError;
use crate::fault::{Conclusion, Fault};
use crate::instance::{Registration, Registry};
use crate::progress::{self, ProgressMode};
use crate::report::{Report, ReportError, Revert, RevertStatus, RunResult, Target};
use crate::safety::SafetyPolicy;

/// How late the end of the observe phase may come before the run counts as overrun
/// (the process was stopped with SIGSTOP, or starved): the report says so and the result
/// is `failed`, since the fault stayed in place longer than asked.
pub const OVERRUN_GRACE: Duration = Duration::from_secs(5);

/// What the runner logs (info) the moment apply has succeeded: remote mode waits for this
/// line from each pod's run to know its fault is in place.
pub const APPLIED: &str = "fault applied";

/// Everything the runner needs besides the fault itself.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub tool: &'static str,
    /// What the report records as `version` (`0.1.0+<commit>` for the binaries).
    pub version: String,
    pub run_id: String,
    pub duration: Duration,
    pub dry_run: bool,
    /// Wait this long before apply so the operator can abort (live runs on a terminal).
    pub countdown: Option<Duration>,
    pub progress: ProgressMode,
    /// The validated parameters, recorded as the report's `parameters`.
    pub parameters: Value,
    pub safety: SafetyPolicy,
    /// The clock the safety rules read (peak hours); None is the system clock. Tests
    /// inject it.
    pub now: Option<SystemTime>,
    /// Where the run registers itself so that `--stop RUN_ID` finds it; None: not at all
    /// (tests of the runner alone).
    pub registry: Option<Registry>,
    /// Log the plan's steps (not when the report printed at the end is the plan itself).
    pub log_plan: bool,
}

/// Runs `fault` through its whole lifecycle. `shutdown` resolves with a reason
/// (`signal:SIGTERM`) when the run must stop early; tests pass their own future.
pub async fn run<F: Fault>(
    mut fault: F,
    settings: RunSettings,
    shutdown: impl Future<Output = String>,
) -> Report {
    let mut run = RunRecord::new(&settings, &fault.plan());
    tokio::pin!(shutdown);
    info!(
        "{} {} run {}{}",
        settings.tool,
        settings.version,
        settings.run_id,
        if settings.dry_run { " (dry run)" } else { "" }
    );

    if let Err((e, phase)) = check_before_touching(&mut fault, &settings, &mut run).await {
        return run.refuse(e, phase);
    }
    if settings.dry_run {
        return run.finish(RunResult::DryRun, None, Conclusion::default());
    }
    let _registration = match register(&fault, &settings, &mut run) {
        Ok(registration) => registration,
        Err((e, phase)) => return run.refuse(e, phase),
    };

    if let Some(wait) = settings.countdown {
        let phase = run.phase_start();
        warn!(
            "starting {} in {} s against {}; press Ctrl-C to abort",
            settings.tool,
            wait.as_secs(),
            describe_targets(&run.targets)
        );
        tokio::select! {
            reason = &mut shutdown => {
                run.phase_end("countdown", phase, "aborted");
                info!("aborted before anything was applied ({reason})");
                return run.finish(RunResult::Aborted, Some(reason), Conclusion::default());
            }
            () = tokio::time::sleep(wait) => run.phase_end("countdown", phase, "completed"),
        }
    }

    let phase = run.phase_start();
    match fault.baseline().await {
        Ok(baseline) => {
            run.baseline = baseline;
            run.phase_end("baseline", phase, "completed");
        }
        Err(e) => {
            warn!("baseline measurement failed: {e}");
            run.errors.push(ReportError::from(&e));
            run.phase_end("baseline", phase, "failed");
        }
    }

    let phase = run.phase_start();
    let applied = AssertUnwindSafe(fault.apply()).catch_unwind().await;
    let mut handle = match applied {
        Ok(Ok(handle)) => {
            run.phase_end("apply", phase, "completed");
            info!("{APPLIED}");
            handle
        }
        Ok(Err(e)) => {
            run.phase_end("apply", phase, "failed");
            error!("apply failed: {e}");
            run.errors.push(ReportError::from(&e));
            return run.finish(
                RunResult::Failed,
                Some("apply-failed".into()),
                Conclusion::default(),
            );
        }
        Err(panic) => {
            run.phase_end("apply", phase, "panicked");
            run.errors.push(panic_error("apply", &panic));
            return run.finish(
                RunResult::Failed,
                Some("apply-panicked".into()),
                Conclusion::default(),
            );
        }
    };

    let phase = run.phase_start();
    let ticker = progress::start(settings.progress, settings.tool, settings.duration);
    let (stop_reason, mut result) = observe_until_stop(
        &mut fault,
        &mut handle,
        settings.duration,
        &mut shutdown,
        &mut run,
    )
    .await;
    drop(ticker);
    let observe_status = match result {
        RunResult::Aborted => "aborted",
        RunResult::Failed => "failed",
        _ => "completed",
    };
    run.phase_end("observe", phase, observe_status);
    info!("stopping: {stop_reason}");

    let conclusion =
        match std::panic::catch_unwind(AssertUnwindSafe(|| fault.conclude(&mut handle))) {
            Ok(conclusion) => conclusion,
            Err(panic) => {
                run.errors.push(panic_error("conclude", &panic));
                result = RunResult::Failed;
                Conclusion::default()
            }
        };

    revert(&mut fault, handle, settings.tool, &mut run).await;
    if conclusion.criteria.iter().any(|c| !c.passed) && result == RunResult::Ok {
        result = RunResult::Failed;
    }
    run.finish(result, Some(stop_reason), conclusion)
}

/// The checks before anything is touched, in dry runs too: the common safety rules on
/// the plan as configured, then resolve, then the fault's own rules on the resolved plan.
/// The error comes with the name of the phase it ended.
async fn check_before_touching<F: Fault>(
    fault: &mut F,
    settings: &RunSettings,
    run: &mut RunRecord,
) -> Result<(), (ChaosError, &'static str)> {
    let phase = run.phase_start();
    let now = settings.now.unwrap_or_else(SystemTime::now);
    if let Err(e) = settings.safety.check(&fault.plan().safety, now) {
        run.phase_end("safety", phase, "refused");
        return Err((e, "safety"));
    }
    run.phase_end("safety", phase, "passed");

    let phase = run.phase_start();
    if let Err(e) = fault.resolve().await {
        run.phase_end("resolve", phase, "failed");
        return Err((e, "resolve"));
    }
    let plan = fault.plan();
    run.set_plan(&plan);
    let checks = settings
        .safety
        .check(&plan.safety, now)
        .and_then(|()| fault.preflight())
        .and_then(|()| match &settings.registry {
            Some(registry) => registry.ensure_not_running(settings.tool, &settings.run_id),
            None => Ok(()),
        });
    if let Err(e) = checks {
        run.phase_end("resolve", phase, "refused");
        return Err((e, "resolve"));
    }
    run.phase_end("resolve", phase, "completed");

    if settings.log_plan {
        for step in &plan.steps {
            info!("{step}");
        }
    }
    for warning in &plan.warnings {
        warn!("{warning}");
    }
    Ok(())
}

/// Live runs only: refuses a run id already running, registers the run for `--stop`
/// (refused when it cannot be), then checks the privileges apply needs.
fn register<F: Fault>(
    fault: &F,
    settings: &RunSettings,
    run: &mut RunRecord,
) -> Result<Option<Registration>, (ChaosError, &'static str)> {
    let phase = run.phase_start();
    let registration = match &settings.registry {
        Some(registry) => match registry.register(settings.tool, &settings.run_id) {
            Ok(registration) => Some(registration),
            Err(e) => {
                run.phase_end("access", phase, "refused");
                return Err((e, "access"));
            }
        },
        None => None,
    };
    if let Err(e) = fault.check_access() {
        run.phase_end("access", phase, "failed");
        return Err((e, "access"));
    }
    run.phase_end("access", phase, "passed");
    Ok(registration)
}

/// Reverts, catching panics; records the outcome in the report.
async fn revert<F: Fault>(fault: &mut F, handle: F::Handle, tool: &str, run: &mut RunRecord) {
    let phase = run.phase_start();
    let started = Instant::now();
    let reverted = AssertUnwindSafe(fault.revert(handle)).catch_unwind().await;
    let took = Some(started.elapsed().as_secs_f64() * 1000.0);
    match reverted {
        Ok(Ok(details)) => {
            run.phase_end("revert", phase, "completed");
            run.revert = Revert {
                status: RevertStatus::Reverted,
                duration_ms: took,
                manual_steps: Vec::new(),
                details,
            };
            info!("reverted");
        }
        Ok(Err(e)) => {
            run.phase_end("revert", phase, "failed");
            error!("revert failed: {e}");
            run.errors.push(ReportError::from(&e));
            run.revert_failed(took, manual_steps(fault, tool));
        }
        Err(panic) => {
            run.phase_end("revert", phase, "panicked");
            run.errors.push(panic_error("revert", &panic));
            run.revert_failed(took, manual_steps(fault, tool));
        }
    }
}

/// The fault's own manual steps, or at least the tool's idempotent sweep.
fn manual_steps<F: Fault>(fault: &F, tool: &str) -> Vec<String> {
    let steps = fault.manual_revert_steps();
    if steps.is_empty() {
        vec![format!("{tool} --cleanup")]
    } else {
        steps
    }
}

fn describe_targets(targets: &[Target]) -> String {
    let names: Vec<String> = targets
        .iter()
        .map(|t| format!("{} {}", t.kind, t.name))
        .collect();
    names.join(", ")
}

fn panic_error(step: &str, panic: &Box<dyn std::any::Any + Send>) -> ReportError {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".into());
    error!("{step} panicked: {message}");
    ReportError {
        kind: "panic".into(),
        message: format!("{step} panicked: {message}"),
    }
}

mod observe;
mod record;
use observe::observe_until_stop;
use record::RunRecord;
