//! `TOOL --cleanup` with remote flags: exec delivery runs every copy's `TOOL --cleanup`
//! (`DIR/chaos-TOOL-*`) and removes the copies; ephemeral delivery runs `TOOL --cleanup`
//! in every running `chaos-TOOL-*` container of the pod, or in a new one when none runs
//! (the tables a killed container left in the pod's network namespace are swept that
//! way). Each pod's target lists what the in-pod cleanups reported stopped and removed.

use std::sync::Arc;

use serde_json::Value;

use super::exec;
use super::pods::PodTarget;
use super::run::Invocation;
use super::session::{Ctx, Layout, Outcome, PodRun, Shared};
use super::stop::{Done, LIMIT, ephemeral_states, exec_in, place, pods_of, report, run_in};
use super::{Delivery, Request, ephemeral};
use crate::error::{ChaosError, Result};
use crate::kube::Connection;
use crate::report::{Action, Report};

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
    let out = exec_in(conn, layout, pod, container, argv, done).await?;
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
