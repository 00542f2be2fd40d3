//! The recovery timeline: pod changes seen by the watch, turned into per-kill
//! timestamps (deletion accepted, old pod gone, replacement created, scheduled, Ready,
//! workload back to its desired ready count). Pure: the watch task feeds it.
//!
//! Pods are tracked by UID, not by name: a StatefulSet's replacement has the old pod's
//! name, and only its UID tells it apart.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime};

use chaos_common::kube::targets::{filter_by_available, is_available, is_terminating};
use k8s_openapi::api::core::v1::Pod;

/// A moment, on the wall clock (for the report) and the monotonic one (for durations).
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub wall: SystemTime,
    pub mono: Instant,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Deleted; waiting for recovery.
    Pending,
    Recovered,
    NotRecovered,
    /// The eviction was refused by this PodDisruptionBudget; nothing was deleted.
    BlockedByPdb(String),
    /// Not attempted: it would have broken `--min-ready`.
    Skipped(String),
    /// The pod was gone or replaced before the request reached it; nothing deleted.
    Vanished(String),
    /// The delete call failed.
    Failed(String),
    /// The run stopped (signal, duration cap) before the kill recovered.
    Interrupted,
}

/// A pod as a kill names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodId {
    pub name: String,
    pub uid: String,
}

impl PodId {
    pub fn of(pod: &Pod) -> PodId {
        PodId {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Kill {
    pub index: usize,
    pub pod: PodId,
    pub requested: Stamp,
    pub accepted: Option<Stamp>,
    pub gone: Option<Stamp>,
    pub replacement: Option<PodId>,
    pub created: Option<Stamp>,
    pub scheduled: Option<Stamp>,
    pub ready: Option<Stamp>,
    pub recovered: Option<Stamp>,
    pub outcome: Outcome,
    pub event: Option<String>,
    /// UIDs of the pods that existed when the kill was requested: any other pod is a
    /// replacement (a StatefulSet's has the same name and a new UID).
    known: BTreeSet<String>,
}

impl Kill {
    /// Whether a delete was (or is being) sent for this kill, so its pods are tracked.
    /// Watch events can arrive before the DELETE response does.
    pub fn deleted(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Pending | Outcome::Recovered | Outcome::NotRecovered | Outcome::Interrupted
        )
    }

    /// Settled: recovered with the old pod gone (its timeline is complete), or over.
    pub fn settled(&self) -> bool {
        match self.outcome {
            Outcome::Pending => false,
            Outcome::Recovered => self.gone.is_some(),
            _ => true,
        }
    }
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub kills: Vec<Kill>,
    /// The pods matching the selector, by UID, as last seen.
    pods: BTreeMap<String, Pod>,
    /// The available count that means "recovered" (the workload's replicas).
    pub desired: usize,
    /// Whether the watch has delivered its initial list.
    pub synced: bool,
    /// How many times the watch listed again after the first list (410 Gone, errors).
    pub relists: u32,
    relist: Option<BTreeSet<String>>,
}

fn is_scheduled(pod: &Pod) -> bool {
    let by_condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "True")
        });
    by_condition
        || pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some()
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl Timeline {
    pub fn new(desired: usize) -> Timeline {
        Timeline {
            desired,
            ..Timeline::default()
        }
    }

    /// The pods a kill may pick, through the `filter_by_*` pipeline.
    pub fn available(&self) -> Vec<Pod> {
        filter_by_available(self.pods.values().cloned().collect())
    }

    pub fn available_count(&self) -> usize {
        self.pods.values().filter(|p| is_available(p)).count()
    }

    /// Starts the record of a kill of `pod`; returns its index in `kills`.
    pub fn start_kill(&mut self, pod: PodId, now: Stamp) -> usize {
        let index = self.kills.len();
        self.kills.push(Kill {
            index: index + 1,
            pod,
            requested: now,
            accepted: None,
            gone: None,
            replacement: None,
            created: None,
            scheduled: None,
            ready: None,
            recovered: None,
            outcome: Outcome::Pending,
            event: None,
            known: self.pods.keys().cloned().collect(),
        });
        index
    }

    /// A kill that was not attempted (min-ready) or did not delete anything.
    pub fn record_unattempted(&mut self, pod: PodId, outcome: Outcome, now: Stamp) {
        let index = self.start_kill(pod, now);
        self.kills[index].outcome = outcome;
    }

    pub fn on_init(&mut self) {
        if self.synced {
            self.relists += 1;
        }
        self.relist = Some(BTreeSet::new());
    }

    /// The end of a (re-)list: pods not in it are gone.
    pub fn on_init_done(&mut self, now: Stamp) {
        if let Some(seen) = self.relist.take() {
            let vanished: Vec<String> = self
                .pods
                .keys()
                .filter(|u| !seen.contains(*u))
                .cloned()
                .collect();
            for gone in vanished {
                self.remove(&gone, now);
            }
        }
        self.synced = true;
        self.check_recovery(now);
    }

    /// An added or modified pod.
    pub fn on_pod(&mut self, pod: &Pod, now: Stamp) {
        let id = uid(pod);
        if id.is_empty() {
            return;
        }
        if let Some(seen) = self.relist.as_mut() {
            seen.insert(id.clone());
        }
        self.pods.insert(id.clone(), pod.clone());
        let (scheduled, ready, terminating) =
            (is_scheduled(pod), is_available(pod), is_terminating(pod));
        for kill in self.kills.iter_mut().filter(|k| k.deleted()) {
            if kill.replacement.is_none() && !kill.known.contains(&id) && !terminating {
                kill.replacement = Some(PodId::of(pod));
                kill.created = Some(now);
            }
            if kill.replacement.as_ref().is_some_and(|r| r.uid == id) {
                if scheduled && kill.scheduled.is_none() {
                    kill.scheduled = Some(now);
                }
                if ready && kill.ready.is_none() {
                    kill.ready = Some(now);
                }
            }
        }
        self.check_recovery(now);
    }

    /// A deleted pod.
    pub fn on_deleted(&mut self, pod: &Pod, now: Stamp) {
        self.remove(&uid(pod), now);
    }

    fn remove(&mut self, id: &str, now: Stamp) {
        self.pods.remove(id);
        for kill in self
            .kills
            .iter_mut()
            .filter(|k| k.pod.uid == id && k.gone.is_none() && k.deleted())
        {
            kill.gone = Some(now);
        }
        self.check_recovery(now);
    }

    /// A pending kill has recovered once its replacement is available and the available
    /// count is back to `desired`.
    fn check_recovery(&mut self, now: Stamp) {
        let back = self.available_count() >= self.desired;
        for kill in self
            .kills
            .iter_mut()
            .filter(|k| k.outcome == Outcome::Pending)
        {
            if kill.ready.is_some() && back {
                kill.recovered = Some(now);
                kill.outcome = Outcome::Recovered;
            }
        }
    }
}

#[cfg(test)]
mod tests;
