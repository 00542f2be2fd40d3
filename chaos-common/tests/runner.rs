//! The lifecycle runner with a scripted fault: revert happens exactly once on every exit
//! path, and the result and exit code match docs/report.md's table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chaos_common::error::{ChaosError, Exit};
use chaos_common::fault::{Conclusion, Fault, Plan, Progress};
use chaos_common::instance::Registry;
use chaos_common::progress::ProgressMode;
use chaos_common::report::{Action, Criterion, Report, RevertStatus, RunResult, Target};
use chaos_common::runner::{RunSettings, run};
use chaos_common::safety::{Environment, SafetyPolicy, SafetyRequest};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Script {
    Normal,
    ApplyFails,
    ObserveFails,
    ObservePanics,
    FinishesEarly,
    RevertFails,
    CriterionFails,
    Refuses,
    Destructive,
    ResolveFails,
    AccessFails,
    Hangs,
}

#[derive(Default)]
struct Counters {
    resolved: AtomicUsize,
    preflighted: AtomicUsize,
    accessed: AtomicUsize,
    applied: AtomicUsize,
    observed: AtomicUsize,
    reverted: AtomicUsize,
}

struct Scripted {
    script: Script,
    counters: Arc<Counters>,
}

impl Fault for Scripted {
    type Handle = u32;

    fn plan(&self) -> Plan {
        let resolved = self.counters.resolved.load(Ordering::SeqCst) > 0;
        Plan {
            hypothesis: "nothing breaks".into(),
            targets: if resolved {
                vec![Target::new("pod", "product-service-abc")]
            } else {
                Vec::new()
            },
            steps: vec!["do the scripted thing".into()],
            safety: SafetyRequest {
                destructive: self.script == Script::Destructive,
                ..SafetyRequest::default()
            },
            ..Plan::default()
        }
    }

    async fn resolve(&mut self) -> chaos_common::Result<()> {
        if self.script == Script::ResolveFails {
            return Err(ChaosError::bad_input("no such deployment"));
        }
        self.counters.resolved.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn check_access(&self) -> chaos_common::Result<()> {
        self.counters.accessed.fetch_add(1, Ordering::SeqCst);
        if self.script == Script::AccessFails {
            return Err(ChaosError::Precondition("needs root".into()));
        }
        Ok(())
    }

    fn preflight(&self) -> chaos_common::Result<()> {
        assert_eq!(
            self.counters.resolved.load(Ordering::SeqCst),
            1,
            "preflight runs after resolve"
        );
        self.counters.preflighted.fetch_add(1, Ordering::SeqCst);
        if self.script == Script::Refuses {
            return Err(ChaosError::Refused {
                rule: "scripted",
                message: "no".into(),
            });
        }
        Ok(())
    }

    async fn apply(&mut self) -> chaos_common::Result<u32> {
        if self.script == Script::ApplyFails {
            return Err(ChaosError::fault("cannot apply"));
        }
        self.counters.applied.fetch_add(1, Ordering::SeqCst);
        Ok(7)
    }

    fn observe_interval(&self) -> Duration {
        Duration::from_millis(10)
    }

    async fn observe(&mut self, handle: &mut u32) -> chaos_common::Result<Progress> {
        assert_eq!(*handle, 7);
        let n = self.counters.observed.fetch_add(1, Ordering::SeqCst);
        match self.script {
            Script::ObserveFails if n == 2 => Ok(Progress::Failed("broke".into())),
            Script::ObservePanics if n == 2 => panic!("observe blew up"),
            Script::FinishesEarly if n == 2 => Ok(Progress::Finished("done early".into())),
            Script::Hangs if n == 1 => {
                // As if the process had been stopped (SIGSTOP) for a minute: the clock
                // jumps past the deadline while observe is in progress.
                tokio::time::advance(Duration::from_secs(60)).await;
                Ok(Progress::Running)
            }
            _ => Ok(Progress::Running),
        }
    }

    fn conclude(&mut self, _handle: &mut u32) -> Conclusion {
        let passed = self.script != Script::CriterionFails;
        Conclusion {
            observations: cpu_hog_observations(self.counters.observed.load(Ordering::SeqCst)),
            criteria: vec![Criterion {
                name: "scripted".into(),
                expected: "pass".into(),
                actual: if passed { "pass" } else { "fail" }.into(),
                passed,
            }],
        }
    }

    async fn revert(&mut self, _handle: u32) -> chaos_common::Result<Value> {
        self.counters.reverted.fetch_add(1, Ordering::SeqCst);
        if self.script == Script::RevertFails {
            return Err(ChaosError::fault("cannot revert"));
        }
        Ok(json!({ "ok": true }))
    }
}

/// Observations of the shape the schema requires of the tool the fake fault reports as
/// (cpu-hog, whose observations the schema types), `observed` samples taken.
fn cpu_hog_observations(observed: usize) -> Value {
    json!({
        "targetCpuPercent": 50.0, "achievedCpuPercent": 50.0, "errorPercentPoints": 0.0,
        "workers": 1, "requestedCpuPercent": 50.0, "ofLimit": false,
        "perWorkerCpuPercent": [50.0], "observedMs": observed as f64 * 1000.0,
        "cgroupCpuQuotaCores": null, "cgroupPeriods": null, "cgroupThrottledPeriods": null,
        "cgroupThrottledMs": null, "samples": []
    })
}

fn settings(duration: Duration) -> RunSettings {
    RunSettings {
        tool: "cpu-hog",
        version: "0.1.0".into(),
        run_id: "test-run".into(),
        duration,
        dry_run: false,
        countdown: None,
        progress: ProgressMode::Off,
        parameters: json!({}),
        safety: SafetyPolicy::default(),
        now: None,
        registry: None,
        log_plan: true,
    }
}

async fn run_script(
    script: Script,
    settings: RunSettings,
    stop_after: Option<Duration>,
) -> (Report, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let fault = Scripted {
        script,
        counters: counters.clone(),
    };
    let shutdown = async move {
        match stop_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending::<()>().await,
        }
        "signal:SIGTERM".to_owned()
    };
    let report = run(fault, settings, shutdown).await;
    assert_matches_schema(&report);
    (report, counters)
}

/// Every report the runner produces must match docs/report.schema.json.
fn assert_matches_schema(report: &Report) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("schema: {e}"));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema: {e}"));
    let json: Value =
        serde_json::from_str(&report.to_json()).unwrap_or_else(|e| panic!("report: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}\n{json:#}", errors.join("\n"));
    assert_eq!(json["exitCode"], report.exit().code());
}

fn reverted_once(counters: &Counters) -> bool {
    counters.applied.load(Ordering::SeqCst) == 1 && counters.reverted.load(Ordering::SeqCst) == 1
}

#[tokio::test]
async fn normal_end_reverts_once_and_exits_zero() {
    let (report, counters) =
        run_script(Script::Normal, settings(Duration::from_millis(100)), None).await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Ok);
    assert_eq!(report.stop_reason.as_deref(), Some("duration"));
    assert_eq!(report.revert.status, RevertStatus::Reverted);
    assert_eq!(report.exit(), Exit::Ok);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "safety", "resolve", "access", "baseline", "apply", "observe", "revert"
        ]
    );
    assert_eq!(report.action, Action::Run);
    assert_eq!(counters.accessed.load(Ordering::SeqCst), 1);
    assert_eq!(report.targets, [Target::new("pod", "product-service-abc")]);
}

#[tokio::test]
async fn dry_run_resolves_and_checks_rules_but_not_access() {
    let mut s = settings(Duration::from_secs(60));
    s.dry_run = true;
    let (report, counters) = run_script(Script::Normal, s, None).await;
    assert_eq!(counters.resolved.load(Ordering::SeqCst), 1);
    assert_eq!(counters.preflighted.load(Ordering::SeqCst), 1);
    assert_eq!(counters.accessed.load(Ordering::SeqCst), 0);
    assert_eq!(report.targets, [Target::new("pod", "product-service-abc")]);
}

#[tokio::test]
async fn a_target_that_does_not_resolve_is_bad_input_with_a_report() {
    let (report, counters) =
        run_script(Script::ResolveFails, settings(Duration::from_secs(1)), None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(counters.preflighted.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::BadInput);
    assert_eq!(report.exit(), Exit::BadInput);
    assert_eq!(report.errors[0].message, "no such deployment");
    assert_eq!(report.revert.status, RevertStatus::NotApplied);
}

#[tokio::test]
async fn missing_access_fails_before_anything_is_applied() {
    let (report, counters) =
        run_script(Script::AccessFails, settings(Duration::from_secs(1)), None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.exit(), Exit::Failed);
    assert_eq!(report.errors[0].kind, "precondition");
}

#[tokio::test(start_paused = true)]
async fn a_run_suspended_past_its_end_is_reported_as_overrun() {
    let (report, counters) =
        run_script(Script::Hangs, settings(Duration::from_secs(10)), None).await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Failed);
    let reason = report.stop_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("overran: "), "{reason}");
    assert!(report.errors.iter().any(|e| e.kind == "overran"));
    assert_eq!(report.exit(), Exit::Failed);
}

#[tokio::test]
async fn a_run_id_already_running_is_bad_input_and_a_registry_nobody_can_trust_refuses() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("state");
    let mut s = settings(Duration::from_millis(50));
    s.registry = Some(Registry {
        dirs: vec![dir.clone()],
    });
    let first = Registry {
        dirs: vec![dir.clone()],
    }
    .register(s.tool, "test-run")
    .unwrap_or_else(|e| panic!("{e}"));
    let (report, counters) = run_script(Script::Normal, s.clone(), None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::BadInput);
    assert!(report.errors[0].message.contains("already running"));
    // A dry run with that id says so too: it would name the same tables.
    let mut dry = s.clone();
    dry.dry_run = true;
    let (report, _) = run_script(Script::Normal, dry, None).await;
    assert_eq!(report.result, RunResult::BadInput);
    drop(first);

    let (report, counters) = run_script(Script::Normal, s.clone(), None).await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Ok);

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|e| panic!("{e}"));
    let (report, counters) = run_script(Script::Normal, s, None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::Refused);
    assert_eq!(report.exit(), Exit::Refused);
    assert!(report.errors[0].message.contains("CHAOS_STATE_DIR"));
}

#[tokio::test]
async fn shutdown_signal_reverts_and_reports_aborted() {
    let (report, counters) = run_script(
        Script::Normal,
        settings(Duration::from_secs(60)),
        Some(Duration::from_millis(50)),
    )
    .await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Aborted);
    assert_eq!(report.stop_reason.as_deref(), Some("signal:SIGTERM"));
    assert_eq!(report.exit(), Exit::Ok);
}

#[tokio::test]
async fn signal_during_countdown_applies_nothing() {
    let mut s = settings(Duration::from_secs(60));
    s.countdown = Some(Duration::from_secs(5));
    let (report, counters) = run_script(Script::Normal, s, Some(Duration::from_millis(20))).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(counters.reverted.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::Aborted);
    assert_eq!(report.revert.status, RevertStatus::NotApplied);
}

#[tokio::test]
async fn failed_observation_still_reverts_and_exits_one() {
    let (report, counters) = run_script(
        Script::ObserveFails,
        settings(Duration::from_secs(60)),
        None,
    )
    .await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.exit(), Exit::Failed);
    assert!(report.errors.iter().any(|e| e.message == "broke"));
}

#[tokio::test]
async fn panic_in_observe_still_reverts() {
    let (report, counters) = run_script(
        Script::ObservePanics,
        settings(Duration::from_secs(60)),
        None,
    )
    .await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Failed);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.kind == "panic" && e.message.contains("observe blew up"))
    );
}

#[tokio::test]
async fn early_finish_is_a_normal_end() {
    let (report, counters) = run_script(
        Script::FinishesEarly,
        settings(Duration::from_secs(60)),
        None,
    )
    .await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Ok);
    assert_eq!(report.stop_reason.as_deref(), Some("done early"));
}

#[tokio::test]
async fn failed_apply_reverts_nothing_and_exits_one() {
    let (report, counters) =
        run_script(Script::ApplyFails, settings(Duration::from_secs(1)), None).await;
    assert_eq!(counters.reverted.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.revert.status, RevertStatus::NotApplied);
    assert_eq!(report.exit(), Exit::Failed);
}

#[tokio::test]
async fn failed_revert_exits_four_with_manual_steps() {
    let (report, counters) = run_script(
        Script::RevertFails,
        settings(Duration::from_millis(50)),
        None,
    )
    .await;
    assert!(reverted_once(&counters));
    assert_eq!(report.revert.status, RevertStatus::Failed);
    assert_eq!(report.exit(), Exit::RevertFailed);
    assert_eq!(report.revert.manual_steps, ["cpu-hog --cleanup"]);
}

#[tokio::test]
async fn failed_criterion_exits_one_after_revert() {
    let (report, counters) = run_script(
        Script::CriterionFails,
        settings(Duration::from_millis(50)),
        None,
    )
    .await;
    assert!(reverted_once(&counters));
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.exit(), Exit::Failed);
}

#[tokio::test]
async fn dry_run_touches_nothing() {
    let mut s = settings(Duration::from_secs(60));
    s.dry_run = true;
    let (report, counters) = run_script(Script::Normal, s, None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::DryRun);
    assert_eq!(report.plan, ["do the scripted thing"]);
    assert_eq!(report.exit(), Exit::Ok);
}

#[tokio::test]
async fn fault_preflight_refusal_exits_three() {
    let (report, counters) =
        run_script(Script::Refuses, settings(Duration::from_secs(1)), None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::Refused);
    assert_eq!(report.exit(), Exit::Refused);
}

#[tokio::test]
async fn destructive_production_run_without_approval_is_refused() {
    let mut s = settings(Duration::from_secs(1));
    s.safety = SafetyPolicy {
        environment: Environment::Production,
        peak_hours_override: Some("test".into()),
        ..SafetyPolicy::default()
    };
    let (report, counters) = run_script(Script::Destructive, s, None).await;
    assert_eq!(counters.applied.load(Ordering::SeqCst), 0);
    assert_eq!(report.result, RunResult::Refused);
    assert!(report.errors[0].message.contains("--approved-by"));
}

#[tokio::test]
async fn schema_rejects_a_report_that_breaks_the_contract() {
    let (report, _) = run_script(Script::Normal, settings(Duration::from_millis(20)), None).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
        .unwrap_or_else(|e| panic!("schema: {e}"));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema: {e}"));
    let good: Value = serde_json::from_str(&report.to_json()).unwrap_or_else(|e| panic!("{e}"));
    assert!(validator.is_valid(&good));
    for (pointer, bad) in [
        ("/result", json!("bogus")),
        ("/exitCode", json!(1)),
        ("/runId", json!("Has Spaces")),
        ("/startedAt", json!("yesterday")),
    ] {
        let mut broken = good.clone();
        if let Some(slot) = broken.pointer_mut(pointer) {
            *slot = bad;
        }
        assert!(
            !validator.is_valid(&broken),
            "{pointer} should break the schema"
        );
    }
}
