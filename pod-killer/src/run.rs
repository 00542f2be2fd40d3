//! The two tasks of a live run: the pod watch that feeds the [`Timeline`] (timestamps are
//! taken when a watch event arrives, so they are as fresh as the API server's stream),
//! and the kill loop that strikes on schedule and waits for each recovery. The timeline
//! lives in a tokio `watch` channel: the kill loop awaits the changes it needs instead
//! of polling.

use std::sync::Arc;
use std::time::Duration;

use chaos_common::kube::Connection;
use chaos_common::kube::events::{ChaosEvent, record};
use chaos_common::kube::retry::ThrottleCount;
use chaos_common::kube::targets::{Workload, pick};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::settings::Settings;
use crate::strike::{Struck, Victim, strike};
use crate::timeline::{Outcome, PodId, Stamp, Timeline};

/// The timeline, shared: the watch task and the kill loop write, anyone can subscribe.
pub type SharedTimeline = Arc<watch::Sender<Timeline>>;

/// How long recording a kill's Event may retry while throttled.
const EVENT_BUDGET: Duration = Duration::from_secs(10);

/// Feeds every pod change matching the selector into the timeline until aborted. The
/// watcher relists after a 410 Gone and backs off on errors (429 included).
pub async fn watch_pods(
    conn: Connection,
    namespace: String,
    selector: String,
    timeline: SharedTimeline,
) {
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), &namespace);
    let config = watcher::Config::default().labels(&selector);
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let now = Stamp::now();
        match event {
            Ok(watcher::Event::Init) => timeline.send_modify(Timeline::on_init),
            Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => {
                timeline.send_modify(|t| t.on_pod(&pod, now));
            }
            Ok(watcher::Event::InitDone) => timeline.send_modify(|t| t.on_init_done(now)),
            Ok(watcher::Event::Delete(pod)) => timeline.send_modify(|t| t.on_deleted(&pod, now)),
            Err(e) => warn!("pod watch in namespace {namespace}: {e} (retrying)"),
        }
    }
}

/// Waits until the watch has delivered its first list.
pub async fn wait_synced(timeline: &SharedTimeline, limit: Duration) -> bool {
    let mut changes = timeline.subscribe();
    matches!(
        tokio::time::timeout(limit, changes.wait_for(|t| t.synced)).await,
        Ok(Ok(_))
    )
}

/// What the kill loop works with.
pub struct Loop {
    pub conn: Connection,
    pub settings: Settings,
    pub workload: Option<Workload>,
    pub timeline: SharedTimeline,
    pub throttled: Arc<ThrottleCount>,
}

/// Strikes `count` times on schedule; each kill waits for its recovery (or the timeout).
pub async fn kill_loop(run: Loop) -> chaos_common::Result<()> {
    let s = &run.settings;
    let start = tokio::time::Instant::now() + s.delay;
    for i in 0..s.count {
        tokio::time::sleep_until(start + s.interval * i).await;
        let Some(victim) = choose(&run.timeline, s, i) else {
            continue;
        };
        strike_one(&run, &victim).await?;
    }
    Ok(())
}

/// A random available pod, unless killing one would go under `--min-ready` (then the
/// kill is recorded as skipped).
fn choose(timeline: &SharedTimeline, s: &Settings, i: u32) -> Option<PodId> {
    let mut chosen = None;
    timeline.send_modify(|t| {
        let available = t.available();
        let min = usize::try_from(s.min_ready).unwrap_or(usize::MAX);
        let seed = u64::from(i) + u64::from(std::process::id());
        match pick(&available, seed).map(PodId::of) {
            Some(pod) if available.len() > min => chosen = Some(pod),
            other => {
                let message = format!(
                    "would leave {} Ready pod(s) ({} Ready now, {} desired), fewer than --min-ready {}",
                    available.len().saturating_sub(1),
                    available.len(),
                    t.desired,
                    s.min_ready
                );
                warn!("kill {} skipped: {message}", i + 1);
                let pod = other.unwrap_or_else(|| PodId { name: "-".into(), uid: String::new() });
                t.record_unattempted(pod, Outcome::Skipped(message), Stamp::now());
            }
        }
    });
    chosen
}

async fn strike_one(run: &Loop, victim: &PodId) -> chaos_common::Result<()> {
    let s = &run.settings;
    let mut index = 0;
    run.timeline
        .send_modify(|t| index = t.start_kill(victim.clone(), Stamp::now()));
    let set = |f: &dyn Fn(&mut crate::timeline::Kill)| {
        run.timeline.send_modify(|t| f(&mut t.kills[index]))
    };
    info!(
        "{} pod {} in namespace {} (grace period {} s)",
        s.method.verb(),
        victim.name,
        s.namespace,
        s.grace_period
    );
    let target = Victim {
        namespace: &s.namespace,
        name: &victim.name,
        uid: &victim.uid,
    };
    match strike(&run.conn, target, s.method, s.grace_period, &run.throttled).await {
        Ok(Struck::Accepted) => {
            let now = Stamp::now();
            set(&|k| k.accepted = Some(now));
        }
        Ok(Struck::BlockedByPdb(pdb)) => {
            info!("eviction of pod {} blocked by PDB {pdb}", victim.name);
            set(&|k| k.outcome = Outcome::BlockedByPdb(pdb.clone()));
            return Ok(());
        }
        Ok(Struck::Vanished(why)) => {
            warn!("{why}; nothing deleted");
            set(&|k| k.outcome = Outcome::Vanished(why.clone()));
            return Ok(());
        }
        Err(e) => {
            let message = e.to_string();
            set(&|k| k.outcome = Outcome::Failed(message.clone()));
            return Err(e);
        }
    }
    let event = kill_event(s, run.workload.as_ref(), &victim.name, index + 1);
    match record(
        &run.conn,
        &s.namespace,
        &event,
        EVENT_BUDGET,
        &run.throttled,
    )
    .await
    {
        Ok(name) => set(&|k| k.event = Some(name.clone())),
        Err(e) => warn!(
            "could not record the Kubernetes Event for the kill of {}: {e}",
            victim.name
        ),
    }
    // Settled once it recovered and its old pod is gone (after the grace period), so the
    // timeline is complete; only recovery counts against the timeout.
    let mut changes = run.timeline.subscribe();
    let settled = tokio::time::timeout(
        s.recovery_timeout,
        changes.wait_for(|t| t.kills[index].settled()),
    )
    .await;
    if settled.is_err() {
        run.timeline.send_modify(|t| {
            if t.kills[index].outcome == Outcome::Pending {
                warn!(
                    "pod {}: not recovered within {:?}",
                    victim.name, s.recovery_timeout
                );
                t.kills[index].outcome = Outcome::NotRecovered;
            }
        });
    }
    Ok(())
}

fn kill_event(s: &Settings, workload: Option<&Workload>, victim: &str, index: usize) -> ChaosEvent {
    let regarding = match workload {
        Some(w) => ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(w.kind.kind().into()),
            name: Some(w.name.clone()),
            namespace: Some(s.namespace.clone()),
            ..Default::default()
        },
        None => ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(victim.into()),
            namespace: Some(s.namespace.clone()),
            ..Default::default()
        },
    };
    ChaosEvent {
        tool: "pod-killer",
        run_id: s.run_id.clone(),
        index,
        regarding,
        reason: "ChaosPodKilled".into(),
        note: format!(
            "chaos-tools pod-killer run {} {} pod {victim} (kill {index} of {}, grace period {} s)",
            s.run_id,
            s.method.past(),
            s.count,
            s.grace_period
        ),
        action: s.method.action().into(),
    }
}
