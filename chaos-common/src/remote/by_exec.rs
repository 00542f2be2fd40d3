//! Exec delivery (cpu-hog, memory-leak): the tool's static binary copied into the
//! target container as a tar stream into `tar -x`, run there through one long exec whose
//! stderr carries the run's JSON logs and whose stdout's last line is its report, and the
//! copy removed at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing::{info, warn};

use super::exec::{self, Place};
use super::session::{Ctx, Outcome, Shared, Stage, on_line};
use crate::error::Result;

/// How long the copy may take (a 10 MB binary over a slow API server).
const COPY_LIMIT: Duration = Duration::from_secs(120);
/// How long removing the copy may take.
const REMOVE_LIMIT: Duration = Duration::from_secs(30);

fn place<'a>(ctx: &'a Ctx, pod: &'a str, container: &'a str) -> Place<'a> {
    Place {
        conn: &ctx.conn,
        namespace: &ctx.namespace,
        pod,
        container,
    }
}

fn fail(shared: &Shared, outcome: Outcome, error: String) {
    warn!("{error}");
    shared.send_modify(|r| {
        r.errors.push(error);
        r.outcome = Some(outcome);
        r.stage = Stage::Ended;
        r.ended_at = Some(Instant::now());
    });
}

/// The copy: `tar -x -f - -C DIR` with the archive on stdin.
async fn copy(ctx: &Ctx, pod: &str, container: &str) -> Result<(), String> {
    let Some(archive) = &ctx.archive else {
        return Err("no archive to copy (internal error)".into());
    };
    let argv: Vec<String> = ["tar", "-x", "-f", "-", "-C", &ctx.remote_dir]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let out = exec::run(place(ctx, pod, container), &argv, Some(archive), COPY_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    if out.code != 0 {
        return Err(format!(
            "copying {} into pod {pod} (container {container}) failed: tar exited {}: {}",
            ctx.dir(),
            out.code,
            out.stderr.trim()
        ));
    }
    Ok(())
}

async fn lines(shared: &Shared, pod: &str, stream: Option<impl AsyncRead + Unpin>) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(shared, pod, &line);
    }
}

/// How long a run whose allocator was OOM-killed waits to see its whole container killed.
const GROUP_KILL_WINDOW: Duration = Duration::from_secs(5);

/// How long a run that ended without a report waits for the kubelet to show that its
/// container was killed (it restarts the container, then reports it).
const KILL_EVIDENCE: Duration = Duration::from_secs(30);

/// Whether the container was killed with the run in it: its restart count goes up, or
/// it is seen not running, within `window` (checked at least once).
async fn restarted(ctx: &Ctx, pod: &str, container: &str, before: i32, window: Duration) -> bool {
    let api: kube::Api<Pod> = kube::Api::namespaced(ctx.conn.client.clone(), &ctx.namespace);
    let deadline = Instant::now() + window;
    loop {
        if let Ok(p) = api.get(pod).await {
            let status = p
                .status
                .and_then(|s| s.container_statuses)
                .into_iter()
                .flatten()
                .find(|c| c.name == container);
            let killed = status.as_ref().is_some_and(|c| {
                c.restart_count > before || c.state.as_ref().is_some_and(|s| s.running.is_none())
            });
            if killed {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long to look for a killed container: a SIGKILL's exit code (137) or a broken
/// stream may be the container's end; any other exit code is the run's own.
fn kill_window(code: &std::result::Result<i32, String>) -> Duration {
    match code {
        Ok(137) | Err(_) => KILL_EVIDENCE,
        Ok(_) => Duration::ZERO,
    }
}

/// Delivers, runs and follows the tool in one pod until its run ends.
pub async fn session(ctx: Arc<Ctx>, shared: Arc<Shared>) {
    let target = shared.borrow().target.clone();
    let (pod, container) = (target.name.as_str(), target.container.as_str());
    let permit = ctx.permits.clone().acquire_owned().await;
    shared.send_modify(|r| r.stage = Stage::Delivering);
    if let Err(e) = copy(&ctx, pod, container).await {
        return fail(&shared, Outcome::NotStarted, e);
    }
    if ctx.is_stopping() {
        return fail(
            &shared,
            Outcome::NotStarted,
            format!("pod {pod}: stopped before its run started"),
        );
    }
    let mut process = match exec::start(place(&ctx, pod, container), &ctx.command(), false).await {
        Ok(p) => p,
        Err(e) => return fail(&shared, Outcome::NotStarted, e.to_string()),
    };
    shared.send_modify(|r| r.stage = Stage::Started);
    drop(permit);
    info!(pod, "started in pod {pod}: {}", ctx.command().join(" "));
    let status = process.take_status();
    let (out, err) = (process.stdout(), process.stderr());
    tokio::join!(lines(&shared, pod, out), lines(&shared, pod, err));
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = process.join().await;
    let code = exec::exit_code(status.as_ref());
    let has_report = shared.borrow().report.is_some();
    let (outcome, error) = if has_report {
        (Outcome::Completed, None)
    } else if restarted(&ctx, pod, container, target.restarts, kill_window(&code)).await {
        (
            Outcome::ContainerKilled,
            Some(format!(
                "container {container} of pod {pod} was killed with the run in it ({code:?})"
            )),
        )
    } else {
        (
            Outcome::Lost,
            Some(format!(
                "lost the run in pod {pod} without a report ({}); if it still runs it ends at its \
                 duration; stop it with: {}",
                match &code {
                    Ok(c) => format!("exit code {c}"),
                    Err(e) => e.clone(),
                },
                ctx.kubectl_stop(&target)
            )),
        )
    };
    // The run reported its allocator OOM-killed: the container's other processes may
    // follow a moment later (memory.oom.group, or the kubelet), so the pod watch of
    // --watch-oom gets a short window to see the container killed before the run ends;
    // so does a container seen killed here before the watch had its event.
    let kill_expected = outcome == Outcome::ContainerKilled
        || shared
            .borrow()
            .report
            .as_ref()
            .is_some_and(|r| r["stopReason"] == "oom-killed");
    shared.send_modify(|r| {
        r.outcome = Some(outcome);
        r.errors.extend(error);
        r.stage = Stage::Ended;
        r.ended_at = Some(Instant::now());
        let kill_seen = r
            .oom
            .as_ref()
            .is_some_and(|o| o["containerRestarted"] == true);
        if ctx.watch_oom && kill_expected && !kill_seen && r.recovering_until.is_none() {
            r.recovering_until = Some(Instant::now() + GROUP_KILL_WINDOW);
        }
    });
}

/// Removes the copied directory (`rm -rf DIR/chaos-TOOL-RUNID`, a fixed path built from
/// the validated remote dir, the tool and the run id).
pub async fn remove(ctx: &Ctx, shared: &Shared) {
    let target = shared.borrow().target.clone();
    let argv = vec!["rm".to_owned(), "-rf".to_owned(), ctx.dir()];
    let done = exec::run(
        place(ctx, &target.name, &target.container),
        &argv,
        None,
        REMOVE_LIMIT,
    )
    .await;
    let (removed, error) = match done {
        Ok(out) if out.code == 0 => (true, None),
        Ok(out) => (
            false,
            Some(format!("rm exited {}: {}", out.code, out.stderr.trim())),
        ),
        Err(e) => (false, Some(e.to_string())),
    };
    if let Some(e) = &error {
        warn!(
            "could not remove {} from pod {}: {e}; remove it with: {}",
            ctx.dir(),
            target.name,
            exec::kubectl_exec(&ctx.namespace, &target.name, &target.container, &argv)
        );
    }
    shared.send_modify(|r| {
        r.removed = Some(removed);
        r.errors
            .extend(error.map(|e| format!("removing {}: {e}", ctx.dir())));
    });
}
