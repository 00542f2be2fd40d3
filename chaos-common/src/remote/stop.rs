//! `TOOL --stop RUNID` and `TOOL --cleanup` with remote flags: the same commands run in
//! each matched pod (through exec), for an operator whose own tool is gone (SIGKILLed, a
//! lost terminal) or who wants a pod swept.
//!
//! - stop: exec delivery runs `DIR/chaos-TOOL-RUNID/TOOL --stop RUNID` in the container
//!   and removes the copy; ephemeral delivery runs `TOOL --stop RUNID` in the
//!   `chaos-TOOL-RUNID` container if it still runs.
//! - cleanup: exec delivery runs every copy's `TOOL --cleanup` (`DIR/chaos-TOOL-*`) and
//!   removes the copies; ephemeral delivery runs `TOOL --cleanup` in every running
//!   `chaos-TOOL-*` container of the pod, or in a new one when none runs (the tables a
//!   killed container left in the pod's network namespace are swept that way).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::exec::{self, Place};
use super::pods::{self, PodTarget};
use super::run::{Invocation, layout};
use super::session::{Ctx, Layout, Outcome, PodRun, Shared};
use super::{Delivery, Request, ephemeral};
use crate::error::{ChaosError, Result};
use crate::kube::Connection;
use crate::kube::client::{ClientOptions, connect};
use crate::kube::retry::ThrottleCount;
use crate::report::{Action, Report, ReportError, RunResult, Target};

const LIMIT: Duration = Duration::from_secs(45);

/// What happened in one pod.
#[derive(Debug, Clone, Default)]
struct Done {
    lines: Vec<String>,
    errors: Vec<String>,
    /// What the in-pod `--cleanup` runs reported (`observations.stopped`, `.removed`),
    /// and the copies removed (exec delivery).
    stopped: Vec<String>,
    removed: Vec<String>,
}

/// `TOOL --cleanup` with the report as JSON (read into `Done`).
const CLEANUP_ARGS: [&str; 5] = ["--cleanup", "--output", "json", "--log-format", "json"];

/// The run ids stopped and the leftovers removed, from an in-pod cleanup report.
fn swept(report: &Value) -> (Vec<String>, Vec<String>) {
    let list = |key: &str| -> Vec<String> {
        report
            .pointer(&format!("/observations/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    (list("stopped"), list("removed"))
}

/// Runs an in-pod `--cleanup` (argv ending with [`CLEANUP_ARGS`]) and records what its
/// report says it stopped and removed; its exit code, if it ran.
async fn cleanup_in(
    conn: &Connection,
    layout: &Layout,
    pod: &str,
    container: &str,
    argv: &[String],
    done: &mut Done,
) -> Option<i32> {
    match exec::run(place(conn, layout, pod, container), argv, None, LIMIT).await {
        Ok(out) => {
            done.lines
                .push(format!("{} (exit {})", argv.join(" "), out.code));
            match serde_json::from_str::<Value>(out.stdout.trim()) {
                Ok(report) => {
                    let (stopped, removed) = swept(&report);
                    done.stopped.extend(stopped);
                    done.removed.extend(removed);
                }
                Err(e) => done.errors.push(format!(
                    "{}: no JSON report on stdout ({e}): {}",
                    argv.join(" "),
                    out.stderr.trim()
                )),
            }
            Some(out.code)
        }
        Err(e) => {
            done.errors.push(format!("{}: {e}", argv.join(" ")));
            None
        }
    }
}

async fn pods_of(
    request: &Request,
    inv: Invocation<'_>,
    run_id: &str,
) -> Result<(Connection, Layout, Vec<PodTarget>)> {
    let (settings, layout) = layout(request, inv, run_id)?;
    let conn = connect(&ClientOptions {
        kubeconfig: settings.kubeconfig.clone(),
        context: settings.context.clone(),
    })
    .await?;
    let (pods, _) = pods::resolve(&conn, &settings, &ThrottleCount::default()).await?;
    Ok((conn, layout, pods))
}

fn place<'a>(
    conn: &'a Connection,
    layout: &'a Layout,
    pod: &'a str,
    container: &'a str,
) -> Place<'a> {
    Place {
        conn,
        namespace: &layout.namespace,
        pod,
        container,
    }
}

/// The ephemeral containers of `pod` whose names start with `prefix`, running or not.
async fn ephemeral_states(
    conn: &Connection,
    layout: &Layout,
    pod: &str,
    prefix: &str,
) -> Vec<(String, bool)> {
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), &layout.namespace);
    let Ok(p) = api.get(pod).await else {
        return Vec::new();
    };
    p.status
        .and_then(|s| s.ephemeral_container_statuses)
        .into_iter()
        .flatten()
        .filter(|c| c.name.starts_with(prefix))
        .map(|c| {
            let running = c.state.as_ref().is_some_and(|s| s.running.is_some());
            (c.name, running)
        })
        .collect()
}

async fn run_in(
    conn: &Connection,
    layout: &Layout,
    pod: &str,
    container: &str,
    argv: &[String],
    done: &mut Done,
) -> Option<i32> {
    match exec::run(place(conn, layout, pod, container), argv, None, LIMIT).await {
        Ok(out) => {
            done.lines
                .push(format!("{} (exit {})", argv.join(" "), out.code));
            Some(out.code)
        }
        Err(e) => {
            done.errors.push(format!("{}: {e}", argv.join(" ")));
            None
        }
    }
}

async fn stop_pod(conn: &Connection, layout: &Layout, pod: &PodTarget) -> Done {
    let mut done = Done::default();
    let stop = layout.stop_command();
    match layout.delivery {
        Delivery::Exec => {
            match run_in(conn, layout, &pod.name, &pod.container, &stop, &mut done).await {
                Some(126 | 127) => done.lines.push(format!(
                    "no copy of run {} here: nothing to stop",
                    layout.run_id
                )),
                Some(0) | None => {}
                Some(code) => done.errors.push(format!("--stop exited {code}")),
            }
            let rm = vec!["rm".to_owned(), "-rf".to_owned(), layout.dir()];
            if run_in(conn, layout, &pod.name, &pod.container, &rm, &mut done).await != Some(0) {
                done.errors
                    .push(format!("could not remove {}", layout.dir()));
            }
        }
        Delivery::Ephemeral => {
            let states = ephemeral_states(conn, layout, &pod.name, &layout.name()).await;
            match states.iter().find(|(n, _)| *n == layout.name()) {
                Some((name, true)) => {
                    if run_in(conn, layout, &pod.name, name, &stop, &mut done).await != Some(0) {
                        done.errors.push(format!("--stop in {name} failed"));
                    }
                }
                Some((name, false)) => done
                    .lines
                    .push(format!("{name} is not running: nothing to stop")),
                None => done.lines.push(format!(
                    "no ephemeral container {}: nothing to stop",
                    layout.name()
                )),
            }
        }
    }
    done
}

fn report(
    tool: &str,
    version: &str,
    run_id: &str,
    action: Action,
    layout: &Layout,
    results: Vec<(PodTarget, Done)>,
    dry_run: bool,
) -> Report {
    let mut report = Report::new(tool, version, run_id, action);
    report.hypothesis = match action {
        Action::Stop => format!("the {tool} run {run_id} stops and reverts in every matched pod"),
        _ => format!("no {tool} run and nothing a run created is left in the matched pods"),
    };
    let mut failed = false;
    for (pod, done) in results {
        for line in &done.lines {
            if dry_run {
                report.plan.push(format!("pod {}: {line}", pod.name));
            } else {
                info!(pod = %pod.name, "{line}");
            }
        }
        for e in &done.errors {
            warn!(pod = %pod.name, "{e}");
            failed = true;
            report.errors.push(ReportError {
                kind: "pod".into(),
                message: format!("pod {}: {e}", pod.name),
            });
        }
        report.targets.push(
            Target::new("pod", format!("{}/{}", layout.namespace, pod.name)).with_details(json!({
                "container": pod.container, "done": done.lines, "errors": done.errors,
                "stopped": done.stopped, "removed": done.removed,
            })),
        );
    }
    let removed: usize = report
        .targets
        .iter()
        .filter_map(|t| t.details["removed"].as_array())
        .map(Vec::len)
        .sum();
    report.observations =
        json!({"pods": report.targets.len(), "failed": failed, "removed": removed});
    let result = if dry_run {
        RunResult::DryRun
    } else if failed {
        RunResult::Failed
    } else {
        RunResult::Ok
    };
    report.finish(result)
}

/// `--stop RUNID` in every matched pod.
pub async fn stop(request: &Request, inv: Invocation<'_>, run_id: &str) -> Result<Report> {
    let (conn, layout, pods) = pods_of(request, inv, run_id).await?;
    let work = pods
        .iter()
        .map(|p| async { (p.clone(), stop_pod(&conn, &layout, p).await) });
    let results = futures_util::future::join_all(work).await;
    Ok(report(
        inv.tool,
        inv.version,
        run_id,
        Action::Stop,
        &layout,
        results,
        false,
    ))
}

/// The `chaos-TOOL-RUNID` directories of an `ls -1` listing.
pub fn copies(listing: &str, tool: &str) -> Vec<String> {
    let prefix = format!("chaos-{tool}-");
    listing
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.strip_prefix(&prefix)
                .is_some_and(|id| crate::runid::validate(id).is_ok())
        })
        .map(str::to_owned)
        .collect()
}

async fn clean_exec(conn: &Connection, layout: &Layout, pod: &PodTarget, dry_run: bool) -> Done {
    let mut done = Done::default();
    let ls = vec!["ls".to_owned(), "-1".to_owned(), layout.remote_dir.clone()];
    let listing = exec::run(
        place(conn, layout, &pod.name, &pod.container),
        &ls,
        None,
        LIMIT,
    )
    .await;
    let found = match listing {
        Ok(out) if out.code == 0 => copies(&out.stdout, layout.tool),
        Ok(out) => {
            done.errors.push(format!(
                "ls {} exited {}: {}",
                layout.remote_dir,
                out.code,
                out.stderr.trim()
            ));
            return done;
        }
        Err(e) => {
            done.errors.push(e.to_string());
            return done;
        }
    };
    if found.is_empty() {
        done.lines.push(format!(
            "no {}/chaos-{}-* copies: nothing to clean",
            layout.remote_dir, layout.tool
        ));
    }
    for dir in found {
        let path = format!("{}/{dir}", layout.remote_dir.trim_end_matches('/'));
        let mut cleanup = vec![format!("{path}/{}", layout.tool)];
        cleanup.extend(CLEANUP_ARGS.iter().map(|a| (*a).to_owned()));
        let rm = vec!["rm".to_owned(), "-rf".to_owned(), path.clone()];
        if dry_run {
            done.lines
                .push(format!("run {} then {}", cleanup.join(" "), rm.join(" ")));
            continue;
        }
        if cleanup_in(conn, layout, &pod.name, &pod.container, &cleanup, &mut done).await != Some(0)
        {
            done.errors.push(format!("{} --cleanup failed", cleanup[0]));
        }
        if run_in(conn, layout, &pod.name, &pod.container, &rm, &mut done).await == Some(0) {
            done.removed.push(path);
        } else {
            done.errors.push(format!("could not remove {path}"));
        }
    }
    done
}

async fn clean_ephemeral(
    conn: &Connection,
    layout: &Layout,
    pod: &PodTarget,
    dry_run: bool,
) -> Done {
    let mut done = Done::default();
    let prefix = format!("chaos-{}-", layout.tool);
    let running: Vec<String> = ephemeral_states(conn, layout, &pod.name, &prefix)
        .await
        .into_iter()
        .filter_map(|(n, running)| running.then_some(n))
        .collect();
    let mut cleanup = vec![layout.tool.to_owned()];
    cleanup.extend(CLEANUP_ARGS.iter().map(|a| (*a).to_owned()));
    if running.is_empty() {
        done.lines.push(format!(
            "add ephemeral container {} (image {}, NET_ADMIN) running {} --cleanup",
            layout.name(),
            layout.image,
            layout.tool
        ));
        if !dry_run {
            clean_in_new_container(conn, layout, pod, &mut done).await;
        }
        return done;
    }
    for name in running {
        if dry_run {
            done.lines
                .push(format!("run {} in {name}", cleanup.join(" ")));
        } else if cleanup_in(conn, layout, &pod.name, &name, &cleanup, &mut done).await != Some(0) {
            done.errors.push(format!("--cleanup in {name} failed"));
        }
    }
    done
}

/// Runs `TOOL --cleanup` in a new ephemeral container; what it swept, or the errors.
async fn clean_in_new_container(
    conn: &Connection,
    layout: &Layout,
    pod: &PodTarget,
    done: &mut Done,
) {
    let mut own = layout.clone();
    own.argv = CLEANUP_ARGS.iter().map(|s| (*s).to_owned()).collect();
    let ctx = Arc::new(Ctx {
        layout: own,
        conn: conn.clone(),
        archive: None,
        watch_oom: false,
        permits: Arc::new(tokio::sync::Semaphore::new(1)),
        started: std::time::Instant::now(),
        stopping: Default::default(),
    });
    let shared = Arc::new(Shared::new(PodRun::new(pod.clone())));
    ephemeral::session(ctx, shared.clone()).await;
    let run = shared.borrow().clone();
    let result = run
        .report
        .as_ref()
        .and_then(|r| r.get("result"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(report) = &run.report {
        let (stopped, removed) = swept(report);
        done.stopped.extend(stopped);
        done.removed.extend(removed);
    }
    if !matches!(
        (run.outcome, result.as_deref()),
        (Some(Outcome::Completed), Some("ok"))
    ) {
        done.errors.extend(run.errors);
        done.errors
            .push(format!("the cleanup container ended with {result:?}"));
    }
}

/// `--cleanup` in every matched pod (with `--dry-run`, only what it would do).
pub async fn cleanup(request: &Request, inv: Invocation<'_>, dry_run: bool) -> Result<Report> {
    let run_id = crate::runid::generate();
    let (conn, layout, pods) = pods_of(request, inv, &run_id).await?;
    let work = pods.iter().map(|p| async {
        let done = match layout.delivery {
            Delivery::Exec => clean_exec(&conn, &layout, p, dry_run).await,
            Delivery::Ephemeral => clean_ephemeral(&conn, &layout, p, dry_run).await,
        };
        (p.clone(), done)
    });
    let results = futures_util::future::join_all(work).await;
    if results.is_empty() {
        return Err(ChaosError::bad_input("no pods to clean"));
    }
    Ok(report(
        inv.tool,
        inv.version,
        &run_id,
        Action::Cleanup,
        &layout,
        results,
        dry_run,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_in_pod_cleanup_report_says_what_it_stopped_and_removed() {
        let report = serde_json::json!({
            "action": "cleanup",
            "observations": {"stopped": ["r1"], "removed": ["nft table inet chaos_latency_r1", 7]},
        });
        assert_eq!(
            super::swept(&report),
            (
                vec!["r1".to_owned()],
                vec!["nft table inet chaos_latency_r1".to_owned()]
            )
        );
        let (stopped, removed) = super::swept(&serde_json::json!({"observations": null}));
        assert!(stopped.is_empty() && removed.is_empty());
    }

    #[test]
    fn only_this_tools_copies_with_valid_run_ids_are_swept() {
        let listing = "chaos-cpu-hog-20260101-000000-abc123\nchaos-cpu-hog-\nchaos-memory-leak-r1\nchaos-cpu-hog-Bad_Id\nnotes.txt\n";
        assert_eq!(
            super::copies(listing, "cpu-hog"),
            ["chaos-cpu-hog-20260101-000000-abc123"]
        );
    }
}
