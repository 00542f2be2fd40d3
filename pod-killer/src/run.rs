//! The two tasks of a live run: the pod watch that feeds the [`Timeline`] (timestamps are
//! taken when a watch event arrives, so they are as fresh as the API server's stream),
//! and the kill loop that strikes on schedule and waits for each recovery.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chaos_common::kube::Connection;
use chaos_common::kube::events::{ChaosEvent, record};
use chaos_common::kube::targets::pick;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{info, warn};

use crate::kill::Settings;
use crate::strike::{Struck, strike};
use crate::timeline::{Outcome, Stamp, Timeline};

/// How often the kill loop looks at the timeline while it waits; the timestamps do not
/// depend on it (the watch task takes them).
const POLL: Duration = Duration::from_millis(20);

pub type SharedTimeline = Arc<Mutex<Timeline>>;

/// Locks the timeline; a poisoned lock still holds the last consistent record.
pub fn lock(timeline: &SharedTimeline) -> MutexGuard<'_, Timeline> {
    timeline
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Feeds every pod change matching the selector into the timeline until aborted.
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
            Ok(watcher::Event::Init) => lock(&timeline).on_init(),
            Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => {
                lock(&timeline).on_pod(&pod, now)
            }
            Ok(watcher::Event::InitDone) => lock(&timeline).on_init_done(now),
            Ok(watcher::Event::Delete(pod)) => {
                lock(&timeline).on_deleted(pod.metadata.name.as_deref().unwrap_or(""), now);
            }
            Err(e) => warn!("pod watch in namespace {namespace}: {e} (retrying)"),
        }
    }
}

/// Waits until the watch has delivered its first list.
pub async fn wait_synced(timeline: &SharedTimeline, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if lock(timeline).synced {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    false
}

/// Strikes `count` times on schedule; each kill waits for its recovery (or the timeout).
pub async fn kill_loop(
    conn: Connection,
    s: Settings,
    deployment: Option<String>,
    timeline: SharedTimeline,
) -> chaos_common::Result<()> {
    let start = tokio::time::Instant::now() + s.delay;
    tokio::time::sleep_until(start).await;
    for i in 0..s.count {
        tokio::time::sleep_until(start + s.interval * i).await;
        let victim = {
            let mut t = lock(&timeline);
            let (ready, candidates) = (t.ready_count(), t.candidates());
            let min = usize::try_from(s.min_ready).unwrap_or(usize::MAX);
            let seed = u64::from(i) + u64::from(std::process::id());
            match pick(&candidates, seed).cloned() {
                Some(pod) if ready > min => Some(pod),
                other => {
                    let message = format!(
                        "would leave {} Ready pod(s) ({ready} Ready now, {} desired), fewer than --min-ready {}",
                        ready.saturating_sub(1),
                        t.desired,
                        s.min_ready
                    );
                    warn!("kill {} skipped: {message}", i + 1);
                    t.record_unattempted(
                        other.as_deref().unwrap_or("-"),
                        Outcome::Skipped(message),
                        Stamp::now(),
                    );
                    None
                }
            }
        };
        let Some(victim) = victim else { continue };
        strike_one(&conn, &s, deployment.as_deref(), &timeline, &victim).await?;
    }
    Ok(())
}

async fn strike_one(
    conn: &Connection,
    s: &Settings,
    deployment: Option<&str>,
    timeline: &SharedTimeline,
    victim: &str,
) -> chaos_common::Result<()> {
    let index = lock(timeline).start_kill(victim, Stamp::now());
    let verb = s.method.verb();
    info!(run_id = %s.run_id, "{verb} pod {victim} in namespace {} (grace period {} s)", s.namespace, s.grace_period);
    match strike(conn, &s.namespace, victim, s.method, s.grace_period).await {
        Ok(Struck::Accepted) => lock(timeline).kills[index].accepted = Some(Stamp::now()),
        Ok(Struck::BlockedByPdb(pdb)) => {
            info!("eviction of pod {victim} blocked by PDB {pdb}");
            lock(timeline).kills[index].outcome = Outcome::BlockedByPdb(pdb);
            return Ok(());
        }
        Err(e) => {
            lock(timeline).kills[index].outcome = Outcome::Failed(e.to_string());
            return Err(e);
        }
    }
    let event = kill_event(s, deployment, victim, index + 1);
    match record(conn, &s.namespace, &event).await {
        Ok(name) => lock(timeline).kills[index].event = Some(name),
        Err(e) => warn!("could not record the Kubernetes Event for the kill of {victim}: {e}"),
    }
    // A kill is settled once it recovered and its old pod is gone (after the grace
    // period), so the timeline is complete; only recovery counts against the timeout.
    let deadline = tokio::time::Instant::now() + s.recovery_timeout;
    loop {
        {
            let mut t = lock(timeline);
            let kill = &mut t.kills[index];
            let settled = match kill.outcome {
                Outcome::Pending => false,
                Outcome::Recovered => kill.gone.is_some(),
                _ => true,
            };
            if settled {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                if kill.outcome == Outcome::Pending {
                    warn!(
                        "pod {victim}: not recovered within {:?}",
                        s.recovery_timeout
                    );
                    kill.outcome = Outcome::NotRecovered;
                }
                return Ok(());
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn kill_event(s: &Settings, deployment: Option<&str>, victim: &str, index: usize) -> ChaosEvent {
    let regarding = match deployment {
        Some(name) => ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some(name.into()),
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
