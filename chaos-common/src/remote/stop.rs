//! `TOOL --stop RUNID` with remote flags: the same command run in each matched pod
//! (through exec), for an operator whose own tool is gone (SIGKILLed, a lost terminal).
//! Exec delivery runs `DIR/chaos-TOOL-RUNID/TOOL --stop RUNID` in the container and
//! removes the copy; ephemeral delivery runs `TOOL --stop RUNID` in the
//! `chaos-TOOL-RUNID` container if it still runs. What one pod's work did (`Done`),
//! the pods, the exec helpers and the report are shared with `--cleanup`
//! (`cleanup.rs`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;
use tracing::{info, warn};

use super::exec::{self, Place};
use super::pods::{self, PodTarget};
use super::run::{Invocation, layout};
use super::session::Layout;
use super::{Delivery, Request};
use crate::error::Result;
use crate::kube::Connection;
use crate::kube::client::{ClientOptions, connect};
use crate::kube::retry::ThrottleCount;
use crate::report::{Action, Report, ReportError, RunResult, Target};

pub(super) const LIMIT: Duration = Duration::from_secs(45);

/// What happened in one pod.
#[derive(Debug, Clone, Default)]
pub(super) struct Done {
    pub(super) lines: Vec<String>,
    pub(super) errors: Vec<String>,
    /// What the in-pod `--cleanup` runs reported (`observations.stopped`, `.removed`),
    /// and the copies removed (exec delivery).
    pub(super) stopped: Vec<String>,
    pub(super) removed: Vec<String>,
}

pub(super) async fn pods_of(
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

pub(super) fn place<'a>(
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
pub(super) async fn ephemeral_states(
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

/// Runs `argv` in the container, noting it (and its exit code) or the error in `done`;
/// its output, if it ran.
pub(super) async fn exec_in(
    conn: &Connection,
    layout: &Layout,
    pod: &str,
    container: &str,
    argv: &[String],
    done: &mut Done,
) -> Option<exec::Output> {
    match exec::run(place(conn, layout, pod, container), argv, None, LIMIT).await {
        Ok(out) => {
            done.lines
                .push(format!("{} (exit {})", argv.join(" "), out.code));
            Some(out)
        }
        Err(e) => {
            done.errors.push(format!("{}: {e}", argv.join(" ")));
            None
        }
    }
}

/// [`exec_in`]'s exit code.
pub(super) async fn run_in(
    conn: &Connection,
    layout: &Layout,
    pod: &str,
    container: &str,
    argv: &[String],
    done: &mut Done,
) -> Option<i32> {
    exec_in(conn, layout, pod, container, argv, done)
        .await
        .map(|out| out.code)
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

pub(super) fn report(
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
