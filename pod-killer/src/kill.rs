//! `PodKill`, the fault: configuration and the snapshot taken at prepare time. Apply
//! starts the pod watch and the kill loop; observe reports when the loop is done;
//! revert stops them and has nothing to undo (the ReplicaSet recreates deleted pods).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_common::kube::ClientOptions;
use chaos_common::kube::client::connect;
use chaos_common::kube::targets::TargetSpec;
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::observations;
use crate::resolve::Snapshot;
use crate::run::{self, SharedTimeline};
use crate::timeline::{Outcome, Timeline};

/// How long apply waits for the pod watch's first list.
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Delete,
    Evict,
}

impl Method {
    pub fn verb(self) -> &'static str {
        match self {
            Method::Delete => "delete",
            Method::Evict => "evict",
        }
    }
    pub fn past(self) -> &'static str {
        match self {
            Method::Delete => "deleted",
            Method::Evict => "evicted",
        }
    }
    pub fn action(self) -> &'static str {
        match self {
            Method::Delete => "Delete",
            Method::Evict => "Evict",
        }
    }
}

/// Validated flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    pub target: TargetSpec,
    pub count: u32,
    pub interval: Duration,
    pub grace_period: u32,
    pub delay: Duration,
    pub method: Method,
    pub min_ready: u32,
    pub recovery_timeout: Duration,
    pub expect_recovery_within: Option<Duration>,
    pub client: ClientOptions,
    pub run_id: String,
}

#[derive(Debug)]
pub struct PodKill {
    pub settings: Settings,
    /// Taken by `resolve`, after the safety rules passed (so a protected namespace is
    /// never even read).
    pub snapshot: Option<Snapshot>,
}

/// What apply started.
pub struct Handle {
    timeline: SharedTimeline,
    watch: JoinHandle<()>,
    kills: JoinHandle<chaos_common::Result<()>>,
    finished: Option<Result<(), String>>,
}

impl PodKill {
    pub fn new(settings: Settings, snapshot: Option<Snapshot>) -> PodKill {
        PodKill { settings, snapshot }
    }

    fn what(&self) -> String {
        match self.snapshot.as_ref() {
            Some(Snapshot {
                deployment: Some(d),
                ..
            }) => format!("deployment/{d}"),
            Some(s) => format!("pods matching '{}'", s.selector),
            None => format!("{:?}", self.settings.target),
        }
    }

    fn limit(&self) -> Duration {
        self.settings
            .expect_recovery_within
            .unwrap_or(self.settings.recovery_timeout)
    }
}

impl Fault for PodKill {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        crate::plan::plan(self)
    }

    async fn resolve(&mut self) -> chaos_common::Result<()> {
        self.snapshot = Some(crate::resolve::resolve(&self.settings).await?);
        Ok(())
    }

    fn preflight(&self) -> chaos_common::Result<()> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        let ready = snapshot.ready();
        if ready <= usize::try_from(self.settings.min_ready).unwrap_or(usize::MAX) {
            return Err(ChaosError::Refused {
                rule: "min-ready",
                message: format!(
                    "killing a pod of {} would leave {} Ready pod(s) ({ready} Ready now, {} desired), fewer than --min-ready {}",
                    self.what(),
                    ready.saturating_sub(1),
                    snapshot.desired,
                    self.settings.min_ready
                ),
            });
        }
        Ok(())
    }

    async fn baseline(&mut self) -> chaos_common::Result<Value> {
        Ok(self
            .snapshot
            .as_ref()
            .map_or(Value::Null, Snapshot::to_json))
    }

    #[tracing::instrument(skip(self), fields(run_id = %self.settings.run_id))]
    async fn apply(&mut self) -> chaos_common::Result<Handle> {
        let snapshot = self
            .snapshot
            .clone()
            .ok_or_else(|| ChaosError::fault("the target was not resolved"))?;
        let conn = connect(&self.settings.client).await?;
        let timeline: SharedTimeline = Arc::new(Mutex::new(Timeline::new(snapshot.desired)));
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
        let kills = tokio::spawn(run::kill_loop(
            conn,
            self.settings.clone(),
            snapshot.deployment.clone(),
            timeline.clone(),
        ));
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
        let mut timeline = run::lock(&handle.timeline);
        for kill in timeline
            .kills
            .iter_mut()
            .filter(|k| k.outcome == Outcome::Pending)
        {
            kill.outcome = Outcome::Interrupted;
        }
        observations::conclude(
            &self.settings,
            self.snapshot.as_ref(),
            &timeline,
            self.limit(),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn revert(&mut self, handle: Handle) -> chaos_common::Result<Value> {
        handle.kills.abort();
        handle.watch.abort();
        let events: Vec<String> = run::lock(&handle.timeline)
            .kills
            .iter()
            .filter_map(|k| k.event.clone())
            .collect();
        Ok(json!({
            "nothingToUndo": true,
            "note": "deleted pods are recreated by their ReplicaSet; pod-killer changes nothing else",
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
