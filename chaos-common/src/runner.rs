//! The lifecycle runner: safety, dry-run plan, countdown, baseline, apply, observe until
//! the duration ends or a stop condition fires, revert, report.
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
use crate::fault::{Conclusion, Fault, Plan, Progress};
use crate::instance;
use crate::progress::{self, ProgressMode};
use crate::report::{Phase, Report, ReportError, Revert, RevertStatus, RunResult, SCHEMA_VERSION};
use crate::safety::SafetyPolicy;

/// Everything the runner needs besides the fault itself.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub tool: &'static str,
    pub version: &'static str,
    pub run_id: String,
    pub duration: Duration,
    pub dry_run: bool,
    /// Wait this long before apply so the operator can abort (live runs on a terminal).
    pub countdown: Option<Duration>,
    pub progress: ProgressMode,
    /// The validated parameters, recorded as the report's `parameters`.
    pub parameters: Value,
    pub safety: SafetyPolicy,
    /// Register the run in the instance directory so `--stop RUN_ID` finds it.
    pub register_instance: bool,
}

/// Runs `fault` through its whole lifecycle. `shutdown` resolves with a reason
/// (`signal:SIGTERM`) when the run must stop early; tests pass their own future.
pub async fn run<F: Fault>(
    mut fault: F,
    settings: RunSettings,
    shutdown: impl Future<Output = String>,
) -> Report {
    let plan = fault.plan();
    let mut run = RunRecord::new(&settings, &plan);
    tokio::pin!(shutdown);

    let phase = run.phase_start();
    let checks = settings
        .safety
        .check(&plan.safety, SystemTime::now())
        .and_then(|()| fault.preflight());
    if let Err(e) = checks {
        run.phase_end("safety", phase, "refused");
        error!(tool = settings.tool, run_id = %settings.run_id, "{e}");
        let result = match e {
            ChaosError::Refused { .. } => RunResult::Refused,
            _ => RunResult::Failed,
        };
        run.errors.push(ReportError::from(&e));
        return run.finish(result, None, Conclusion::default());
    }
    run.phase_end("safety", phase, "passed");

    for step in &plan.steps {
        info!(run_id = %settings.run_id, dry_run = settings.dry_run, "{step}");
    }
    for warning in &plan.warnings {
        warn!(run_id = %settings.run_id, "{warning}");
    }
    if settings.dry_run {
        return run.finish(RunResult::DryRun, None, Conclusion::default());
    }

    if let Some(wait) = settings.countdown {
        let phase = run.phase_start();
        warn!(
            "starting {} in {} s against {}; press Ctrl-C to abort",
            settings.tool,
            wait.as_secs(),
            describe_targets(&plan)
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

    let _registration = settings
        .register_instance
        .then(|| instance::register(settings.tool, &settings.run_id))
        .and_then(|r| {
            r.map_err(|e| warn!("--stop will not find this run: {e}"))
                .ok()
        });

    let phase = run.phase_start();
    let applied = AssertUnwindSafe(fault.apply()).catch_unwind().await;
    let mut handle = match applied {
        Ok(Ok(handle)) => {
            run.phase_end("apply", phase, "completed");
            handle
        }
        Ok(Err(e)) => {
            run.phase_end("apply", phase, "failed");
            error!(run_id = %settings.run_id, "apply failed: {e}");
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
    info!(run_id = %settings.run_id, "stopping: {stop_reason}");

    let conclusion =
        match std::panic::catch_unwind(AssertUnwindSafe(|| fault.conclude(&mut handle))) {
            Ok(conclusion) => conclusion,
            Err(panic) => {
                run.errors.push(panic_error("conclude", &panic));
                result = RunResult::Failed;
                Conclusion::default()
            }
        };

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
            info!(run_id = %settings.run_id, "reverted");
        }
        Ok(Err(e)) => {
            run.phase_end("revert", phase, "failed");
            error!(run_id = %settings.run_id, "revert failed: {e}");
            run.errors.push(ReportError::from(&e));
            run.revert_failed(took, manual_steps(&fault, settings.tool));
        }
        Err(panic) => {
            run.phase_end("revert", phase, "panicked");
            run.errors.push(panic_error("revert", &panic));
            run.revert_failed(took, manual_steps(&fault, settings.tool));
        }
    }
    if conclusion.criteria.iter().any(|c| !c.passed) && result == RunResult::Ok {
        result = RunResult::Failed;
    }
    run.finish(result, Some(stop_reason), conclusion)
}

async fn observe_until_stop<F: Fault>(
    fault: &mut F,
    handle: &mut F::Handle,
    duration: Duration,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = String>>,
    run: &mut RunRecord,
) -> (String, RunResult) {
    let deadline = tokio::time::Instant::now() + duration;
    let mut ticker = tokio::time::interval(fault.observe_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let observed = async {
            ticker.tick().await;
            AssertUnwindSafe(fault.observe(handle)).catch_unwind().await
        };
        tokio::select! {
            biased;
            reason = shutdown.as_mut() => return (reason, RunResult::Aborted),
            () = tokio::time::sleep_until(deadline) => return ("duration".into(), RunResult::Ok),
            progress = observed => match progress {
                Ok(Ok(Progress::Running)) => {}
                Ok(Ok(Progress::Finished(reason))) => return (reason, RunResult::Ok),
                Ok(Ok(Progress::Failed(reason))) => {
                    run.errors.push(ReportError { kind: "fault".into(), message: reason.clone() });
                    return (format!("failed: {reason}"), RunResult::Failed);
                }
                Ok(Err(e)) => {
                    run.errors.push(ReportError::from(&e));
                    return (format!("failed: {e}"), RunResult::Failed);
                }
                Err(panic) => {
                    run.errors.push(panic_error("observe", &panic));
                    return ("failed: observe panicked".into(), RunResult::Failed);
                }
            },
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

fn describe_targets(plan: &Plan) -> String {
    let names: Vec<String> = plan
        .targets
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

/// The report under construction.
struct RunRecord {
    report: Report,
}

impl RunRecord {
    fn new(settings: &RunSettings, plan: &Plan) -> Self {
        let now = SystemTime::now();
        RunRecord {
            report: Report {
                schema_version: SCHEMA_VERSION,
                tool: settings.tool.into(),
                version: settings.version.into(),
                run_id: settings.run_id.clone(),
                started_at: now,
                ended_at: now,
                hypothesis: plan.hypothesis.clone(),
                parameters: settings.parameters.clone(),
                targets: plan.targets.clone(),
                plan: plan.steps.clone(),
                warnings: plan.warnings.clone(),
                safety: serde_json::to_value(&settings.safety).unwrap_or(Value::Null),
                phases: Vec::new(),
                baseline: Value::Null,
                observations: Value::Null,
                criteria: Vec::new(),
                stop_reason: None,
                result: RunResult::Ok,
                revert: Revert {
                    status: RevertStatus::NotApplied,
                    duration_ms: None,
                    manual_steps: Vec::new(),
                    details: Value::Null,
                },
                errors: Vec::new(),
                exit_code: 0,
            },
        }
    }

    fn phase_start(&self) -> (SystemTime, Instant) {
        (SystemTime::now(), Instant::now())
    }

    fn phase_end(
        &mut self,
        name: &'static str,
        (wall, mono): (SystemTime, Instant),
        status: &'static str,
    ) {
        self.report.phases.push(Phase {
            name,
            started_at: wall,
            ended_at: SystemTime::now(),
            duration_ms: mono.elapsed().as_secs_f64() * 1000.0,
            status,
        });
    }

    fn revert_failed(&mut self, took: Option<f64>, manual_steps: Vec<String>) {
        self.report.revert = Revert {
            status: RevertStatus::Failed,
            duration_ms: took,
            manual_steps,
            details: Value::Null,
        };
    }

    fn finish(
        mut self,
        result: RunResult,
        stop_reason: Option<String>,
        conclusion: Conclusion,
    ) -> Report {
        let report = &mut self.report;
        report.result = result;
        report.stop_reason = stop_reason;
        report.observations = conclusion.observations;
        report.criteria = conclusion.criteria;
        report.ended_at = SystemTime::now();
        report.exit_code = report.exit().code();
        self.report
    }
}

impl std::ops::DerefMut for RunRecord {
    fn deref_mut(&mut self) -> &mut Report {
        &mut self.report
    }
}

impl std::ops::Deref for RunRecord {
    type Target = Report;
    fn deref(&self) -> &Report {
        &self.report
    }
}
