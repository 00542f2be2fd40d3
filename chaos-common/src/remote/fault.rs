//! `RemoteRun`: the [`Fault`] the runner drives in remote mode. `resolve` gathers the
//! facts (pods, peers, RBAC answers, the freeze switch, Pod Security labels, container
//! probes), `preflight` judges them, `apply` starts one session per pod (at most
//! `--max-parallel` delivering at once) and waits until each pod's fault is applied,
//! `observe` follows them, `revert` stops the ones still running and removes what was
//! delivered. The per-pod records go to the aggregation (`aggregate.rs`) through `records`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::resolve::Resolved;
use super::session::{Ctx, Layout, PodRun, Shared, Stage};
use super::{Delivery, Request, aggregate, args::Settings, by_exec, ephemeral, keeper, oom, plan};
use crate::error::{ChaosError, Result};
use crate::fault::{Conclusion, Fault, Plan, Progress};

/// How long apply waits for every pod's fault to be applied.
const APPLY_LIMIT: Duration = Duration::from_secs(180);
/// How long revert waits for the pods' runs to end after `--stop`.
const STOP_WAIT: Duration = Duration::from_secs(45);
/// How long one `--stop` exec may take (the in-pod stop waits up to 30 s for its revert).
const STOP_LIMIT: Duration = Duration::from_secs(40);
/// How long a stop waits for the run to end before sending `--stop` again.
const STOP_RETRY: Duration = Duration::from_secs(2);

/// The remote run of one tool invocation.
#[derive(Debug)]
pub struct RemoteRun {
    pub request: Request,
    pub settings: Settings,
    pub layout: Layout,
    /// Live runs probe the containers; dry runs touch nothing.
    pub live: bool,
    pub resolved: Option<Resolved>,
    /// The pods' records when the run is over, for the aggregated report.
    pub records: Arc<Mutex<Records>>,
}

/// The pods' records, and when apply started.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub runs: Vec<PodRun>,
    pub started: Option<Instant>,
    /// Matched pods left out, and why.
    pub skipped: Vec<String>,
    /// The layout once resolved (the in-pod command with what resolution added).
    pub layout: Option<Layout>,
}

/// What apply started.
pub struct Handle {
    ctx: Arc<Ctx>,
    runs: Vec<Arc<Shared>>,
    sessions: Vec<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
}

impl RemoteRun {
    fn facts(&self) -> Option<plan::Facts<'_>> {
        let r = self.resolved.as_ref()?;
        Some(plan::Facts {
            layout: &r.layout,
            pods: &r.pods,
            skipped: &r.skipped,
            selection: self.settings.selection.describe(),
            binary: r.binary.as_ref().map(|b| {
                format!(
                    "{} (static {}, {:.1} MB)",
                    b.path.display(),
                    b.elf.arch(),
                    b.bytes.len() as f64 / 1_000_000.0
                )
            }),
            peer: r.peer.as_ref().map(|p| r.describe_peer(p)),
            update: self.request.peer.as_ref().and_then(|p| p.update),
            max_parallel: self.settings.max_parallel,
            probes: self.live && self.request.delivery == Delivery::Exec,
            watch_oom: self.request.watch_oom,
            access: r
                .checked
                .iter()
                .filter(|n| !r.denied.contains(n))
                .map(|n| {
                    let place = if n.namespace.is_empty() {
                        String::new()
                    } else {
                        format!(" in {}", n.namespace)
                    };
                    format!("{}{place}", n.describe())
                })
                .collect(),
        })
    }

    fn publish(&self, handle: &Handle) {
        if let Ok(mut records) = self.records.lock() {
            records.runs = handle.runs.iter().map(|r| r.borrow().clone()).collect();
            records.started = Some(handle.ctx.started);
        }
    }

    fn snapshot(&self) -> Vec<PodRun> {
        self.records
            .lock()
            .map(|r| r.runs.clone())
            .unwrap_or_default()
    }
}

async fn wait_all(
    runs: &[Arc<Shared>],
    until: impl Fn(&PodRun) -> bool + Copy,
    limit: Duration,
) -> bool {
    let waits = runs.iter().map(|r| {
        let mut rx = r.subscribe();
        async move { rx.wait_for(until).await.is_ok() }
    });
    tokio::time::timeout(limit, futures_util::future::join_all(waits))
        .await
        .is_ok_and(|all| all.into_iter().all(|ok| ok))
}

/// Stops one pod's run: `--stop RUNID` through exec while it is started, again every
/// [`STOP_RETRY`] (a run that had not registered yet when the first stop came is caught by
/// the next), until its session ends or [`STOP_WAIT`] passes.
async fn stop_one(ctx: &Ctx, run: &Shared) {
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    let mut changes = run.subscribe();
    loop {
        let (target, stage) = {
            let r = run.borrow();
            (r.target.clone(), r.stage)
        };
        if stage == Stage::Ended || tokio::time::Instant::now() > deadline {
            return;
        }
        if matches!(stage, Stage::Started | Stage::Applied) {
            run.send_modify(|r| r.stop_sent = true);
            send_stop(ctx, run, &target).await;
        }
        changes.mark_unchanged();
        let _ = tokio::time::timeout(STOP_RETRY, changes.wait_for(PodRun::ended)).await;
    }
}

async fn send_stop(ctx: &Ctx, run: &Shared, target: &super::pods::PodTarget) {
    let container = ctx.exec_container(target);
    let place = super::exec::Place {
        conn: &ctx.conn,
        namespace: &ctx.namespace,
        pod: &target.name,
        container: &container,
    };
    match super::exec::run(place, &ctx.stop_command(), None, STOP_LIMIT).await {
        Ok(out) if out.code == 0 => info!(pod = %target.name, "stop sent to pod {}", target.name),
        Ok(out) => warn!(
            "stop in pod {} exited {}: {}",
            target.name,
            out.code,
            out.stderr.trim()
        ),
        Err(e) if !run.borrow().ended() => warn!(
            "--stop in pod {} failed: {e}; stop it by hand: {}",
            target.name,
            ctx.kubectl_stop(target)
        ),
        Err(_) => {}
    }
}

impl Fault for RemoteRun {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        plan::plan(
            self.layout.tool,
            &self.settings.namespace,
            self.request.destructive,
            self.facts().as_ref(),
        )
    }

    async fn resolve(&mut self) -> Result<()> {
        let resolved =
            super::resolve::resolve(&self.settings, &self.request, &self.layout, self.live).await?;
        if let Ok(mut records) = self.records.lock() {
            records.skipped = resolved.skipped.clone();
            records.layout = Some(resolved.layout.clone());
        }
        self.resolved = Some(resolved);
        Ok(())
    }

    fn preflight(&self) -> Result<()> {
        match &self.resolved {
            Some(r) => r.judge(&self.settings),
            None => Ok(()),
        }
    }

    async fn apply(&mut self) -> Result<Handle> {
        let r = self
            .resolved
            .as_ref()
            .ok_or_else(|| ChaosError::fault("the target pods were not resolved"))?;
        let ctx = Arc::new(Ctx {
            layout: r.layout.clone(),
            conn: r.conn.clone(),
            archive: r.archive(self.layout.tool),
            watch_oom: self.request.watch_oom,
            permits: Arc::new(Semaphore::new(self.settings.max_parallel)),
            started: Instant::now(),
            stopping: Default::default(),
        });
        let runs: Vec<Arc<Shared>> = r
            .pods
            .iter()
            .map(|p| Arc::new(Shared::new(PodRun::new(p.clone()))))
            .collect();
        let sessions = runs
            .iter()
            .map(|run| match ctx.delivery {
                Delivery::Exec => tokio::spawn(by_exec::session(ctx.clone(), run.clone())),
                Delivery::Ephemeral => tokio::spawn(ephemeral::session(ctx.clone(), run.clone())),
            })
            .collect();
        let mut helpers = Vec::new();
        if let (Some(peer), Some(update)) = (
            r.peer.clone(),
            self.request.peer.as_ref().and_then(|p| p.update),
        ) {
            helpers.push(tokio::spawn(keeper::keep_current(
                ctx.clone(),
                runs.clone(),
                peer,
                update,
            )));
        }
        if self.request.watch_oom {
            for run in &runs {
                helpers.push(tokio::spawn(oom::watch(ctx.clone(), run.clone())));
            }
        }
        let handle = Handle {
            ctx,
            runs,
            sessions,
            helpers,
        };
        let settled = |r: &PodRun| r.applied_at.is_some() || r.ended();
        if !wait_all(&handle.runs, settled, APPLY_LIMIT).await {
            warn!(
                "not every pod's fault was applied within {} s",
                APPLY_LIMIT.as_secs()
            );
        }
        let applied = handle
            .runs
            .iter()
            .filter(|r| r.borrow().applied_at.is_some())
            .count();
        if applied == 0 {
            let errors: Vec<String> = handle
                .runs
                .iter()
                .flat_map(|r| aggregate::why_not(&r.borrow()))
                .collect();
            // Whatever was started is stopped; the pods' reports carry the detail.
            if let Err(e) = self.revert(handle).await {
                warn!("after no pod applied the fault: {e}");
            }
            return Err(ChaosError::fault(format!(
                "the fault was applied in no pod: {}",
                if errors.is_empty() {
                    "no pod reported it applied".into()
                } else {
                    errors.join("; ")
                }
            )));
        }
        info!("fault applied in {applied} of {} pod(s)", handle.runs.len());
        Ok(handle)
    }

    fn observe_interval(&self) -> Duration {
        Duration::from_millis(250)
    }

    async fn observe(&mut self, handle: &mut Handle) -> Result<Progress> {
        self.publish(handle);
        let open = handle.runs.iter().filter(|r| !r.borrow().ended()).count();
        let recovering =
            self.request.watch_oom && handle.runs.iter().any(|r| oom::recovering(&r.borrow()));
        if open == 0 && !recovering {
            return Ok(Progress::Finished("every pod's run ended".into()));
        }
        Ok(Progress::Running)
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        self.publish(handle);
        Conclusion::default()
    }

    async fn revert(&mut self, handle: Handle) -> Result<Value> {
        let ctx = handle.ctx.clone();
        ctx.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let stops = handle.runs.iter().map(|run| stop_one(&ctx, run));
        futures_util::future::join_all(stops).await;
        if !wait_all(&handle.runs, PodRun::ended, STOP_WAIT).await {
            warn!(
                "not every pod's run ended within {} s of --stop",
                STOP_WAIT.as_secs()
            );
        }
        for helper in &handle.helpers {
            helper.abort();
        }
        for session in &handle.sessions {
            if !session.is_finished() {
                session.abort();
            }
        }
        if ctx.delivery == Delivery::Exec {
            let removals = handle.runs.iter().map(|run| by_exec::remove(&ctx, run));
            futures_util::future::join_all(removals).await;
        }
        self.publish(&handle);
        let records = self.snapshot();
        let unknown: Vec<String> = records
            .iter()
            .filter(|r| !super::aggregate::reverted(r))
            .map(|r| format!("pod {}: {}", r.target.name, r.errors.join("; ")))
            .collect();
        if !unknown.is_empty() {
            return Err(ChaosError::fault(format!(
                "the revert is not known to have succeeded in {}",
                unknown.join(" | ")
            )));
        }
        Ok(json!({"pods": records.len()}))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        let records = self.snapshot();
        let mut steps = Vec::new();
        for r in records.iter().filter(|r| !super::aggregate::reverted(r)) {
            steps.push(self.layout.kubectl_stop(&r.target));
            if self.layout.delivery == Delivery::Exec {
                let rm = vec!["rm".to_owned(), "-rf".to_owned(), self.layout.dir()];
                steps.push(super::exec::kubectl_exec(
                    &self.layout.namespace,
                    &r.target.name,
                    &r.target.container,
                    &rm,
                ));
            }
        }
        steps
    }
}
