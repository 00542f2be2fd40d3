//! `PodKill`, the fault: its settings and, after the resolve step, the snapshot of the
//! target. Apply starts the pod watch and the kill loop; observe reports when the loop is
//! done; revert stops them and has nothing to undo (the workload recreates deleted pods).

use std::sync::Arc;
use std::time::Duration;

use chaos_common::kube::client::connect;
use chaos_common::kube::retry::ThrottleCount;
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::resolve::Snapshot;
use crate::run::{self, Loop, SharedTimeline};
use crate::settings::Settings;
use crate::timeline::{Outcome, Timeline};

/// How long apply waits for the pod watch's first list.
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct PodKill {
    pub settings: Settings,
    /// Taken by `resolve`, after the safety rules passed (so a protected namespace is
    /// never even read).
    pub snapshot: Option<Snapshot>,
    /// Throttled (429) answers over the whole run, resolve included.
    throttled: Arc<ThrottleCount>,
}

/// What apply started.
pub struct Handle {
    timeline: SharedTimeline,
    watch: JoinHandle<()>,
    kills: JoinHandle<chaos_common::Result<()>>,
    finished: Option<Result<(), String>>,
}

impl PodKill {
    pub fn new(settings: Settings) -> PodKill {
        PodKill {
            settings,
            snapshot: None,
            throttled: Arc::default(),
        }
    }
}

impl Fault for PodKill {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        crate::plan::plan(&self.settings, self.snapshot.as_ref())
    }

    async fn resolve(&mut self) -> chaos_common::Result<()> {
        tracing::info!(
            "namespace {} (from {})",
            self.settings.namespace,
            self.settings.namespace_from
        );
        self.snapshot = Some(crate::resolve::resolve(&self.settings, &self.throttled).await?);
        Ok(())
    }

    fn preflight(&self) -> chaos_common::Result<()> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        let ready = snapshot.available();
        if ready <= usize::try_from(self.settings.min_ready).unwrap_or(usize::MAX) {
            return Err(ChaosError::Refused {
                rule: "min-ready",
                message: format!(
                    "killing a pod of {} would leave {} Ready pod(s) ({ready} Ready now, {} desired), fewer than --min-ready {}",
                    snapshot.what(),
                    ready.saturating_sub(1),
                    snapshot.desired,
                    self.settings.min_ready
                ),
            });
        }
        Ok(())
    }

    async fn baseline(&mut self) -> chaos_common::Result<Value> {
        Ok(self.snapshot.as_ref().map_or(Value::Null, |s| {
            json!({"server": s.server, "kubeconfig": s.kubeconfig, "selector": s.selector,
                "workload": s.workload.as_ref().map(|w| w.reference()),
                "desiredReplicas": s.desired, "readyPods": s.available(), "pods": s.pods})
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn apply(&mut self) -> chaos_common::Result<Handle> {
        let snapshot = self
            .snapshot
            .clone()
            .ok_or_else(|| ChaosError::fault("the target was not resolved"))?;
        let conn = connect(&self.settings.client).await?;
        let timeline: SharedTimeline = Arc::new(tokio::sync::watch::Sender::new(Timeline::new(
            snapshot.desired,
        )));
        let watch = tokio::spawn(run::watch_pods(
            conn.clone(),
            self.settings.namespace.clone(),
            snapshot.selector.clone(),
            timeline.clone(),
        ));
        if !run::wait_synced(&timeline, SYNC_TIMEOUT).await {
            watch.abort();
            return Err(ChaosError::fault(format!(
                "the pod watch on {} did not deliver its first list within {} s",
                conn.server,
                SYNC_TIMEOUT.as_secs()
            )));
        }
        let kills = tokio::spawn(run::kill_loop(Loop {
            conn,
            settings: self.settings.clone(),
            workload: snapshot.workload.clone(),
            timeline: timeline.clone(),
            throttled: self.throttled.clone(),
        }));
        Ok(Handle {
            timeline,
            watch,
            kills,
            finished: None,
        })
    }

    fn observe_interval(&self) -> Duration {
        Duration::from_millis(100)
    }

    #[tracing::instrument(skip_all)]
    async fn observe(&mut self, handle: &mut Handle) -> chaos_common::Result<Progress> {
        if handle.finished.is_none() && handle.kills.is_finished() {
            // Finished: this await returns at once, so dropping it cannot lose the result.
            let result = (&mut handle.kills).await;
            handle.finished = Some(match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("the kill loop stopped: {e}")),
            });
        }
        Ok(match &handle.finished {
            None => Progress::Running,
            Some(Ok(())) => Progress::Finished(format!("all {} kill(s) done", self.settings.count)),
            Some(Err(e)) => Progress::Failed(e.clone()),
        })
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        handle.timeline.send_modify(|t| {
            for kill in t.kills.iter_mut().filter(|k| k.outcome == Outcome::Pending) {
                kill.outcome = Outcome::Interrupted;
            }
        });
        crate::observations::conclude(
            &self.settings,
            self.snapshot.as_ref(),
            &handle.timeline.borrow(),
            self.throttled.get(),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn revert(&mut self, handle: Handle) -> chaos_common::Result<Value> {
        handle.kills.abort();
        handle.watch.abort();
        let events: Vec<String> = handle
            .timeline
            .borrow()
            .kills
            .iter()
            .filter_map(|k| k.event.clone())
            .collect();
        Ok(json!({
            "nothingToUndo": true,
            "note": "deleted pods are recreated by their workload; pod-killer changes nothing else",
            "eventsLeft": events,
        }))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        let selector = self
            .snapshot
            .as_ref()
            .map_or(String::new(), |s| s.selector.clone());
        vec![format!(
            "nothing to undo; check that the pods came back: kubectl get pods -n {} -l '{selector}'",
            self.settings.namespace
        )]
    }
}
