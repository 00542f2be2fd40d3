//! The report under construction while a run goes through its phases.

use std::time::{Instant, SystemTime};

use serde_json::Value;
use tracing::error;

use crate::error::ChaosError;
use crate::fault::{Conclusion, Plan};
use crate::report::{Action, Phase, Report, ReportError, Revert, RevertStatus, RunResult};

use super::RunSettings;

/// The report under construction.
pub(super) struct RunRecord {
    report: Report,
}

impl RunRecord {
    pub(super) fn new(settings: &RunSettings, plan: &Plan) -> Self {
        let mut report = Report::new(
            settings.tool,
            &settings.version,
            &settings.run_id,
            Action::Run,
        );
        report.parameters = settings.parameters.clone();
        report.safety = serde_json::to_value(&settings.safety).unwrap_or(Value::Null);
        let mut run = RunRecord { report };
        run.set_plan(plan);
        run
    }

    /// Records the plan (again after resolve, when targets are concrete).
    pub(super) fn set_plan(&mut self, plan: &Plan) {
        self.report.hypothesis = plan.hypothesis.clone();
        self.report.targets = plan.targets.clone();
        self.report.plan = plan.steps.clone();
        self.report.warnings = plan.warnings.clone();
    }

    /// Ends a run that was stopped before anything was touched.
    pub(super) fn refuse(mut self, e: ChaosError, phase: &str) -> Report {
        error!("{e}");
        let result = match e {
            ChaosError::Refused { .. } => RunResult::Refused,
            ChaosError::BadInput(_) => RunResult::BadInput,
            _ => RunResult::Failed,
        };
        self.errors.push(ReportError::from(&e));
        self.finish(
            result,
            Some(format!("{phase}-failed")),
            Conclusion::default(),
        )
    }

    pub(super) fn phase_start(&self) -> (SystemTime, Instant) {
        (SystemTime::now(), Instant::now())
    }

    pub(super) fn phase_end(
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

    pub(super) fn revert_failed(&mut self, took: Option<f64>, manual_steps: Vec<String>) {
        self.report.revert = Revert {
            status: RevertStatus::Failed,
            duration_ms: took,
            manual_steps,
            details: Value::Null,
        };
    }

    pub(super) fn finish(
        mut self,
        result: RunResult,
        stop_reason: Option<String>,
        conclusion: Conclusion,
    ) -> Report {
        let report = &mut self.report;
        report.stop_reason = stop_reason;
        report.observations = conclusion.observations;
        report.criteria = conclusion.criteria;
        self.report.finish(result)
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
