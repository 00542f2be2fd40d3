//! Controllers, as kube-controller-manager, the scheduler and the kubelet run them
//! beside a real API server: each watches the store's changes, waits a configurable
//! delay, then reconciles the objects concerned through the same API layer the HTTP
//! handlers use. Nothing happens inside a client's request: a DELETE returns first and
//! the ReplicaSet notices the missing pod afterwards, as on a cluster.
//!
//! A [`Controller`] is anything the server starts with its cluster; the built-in ones
//! are [`Reconciler`]s driven by [`ReconcileLoop`] (informer + work queue). The lab adds
//! its own (a kubelet that runs real processes for its nodes, Service routing, an HPA)
//! the same way, without touching the handlers.
//!
//! # Layout
//! - `scheduler.rs`; `pods.rs`: the simulated kubelet (pod start-up and termination).
//! - `replicaset.rs`, `deployment.rs`, `statefulset.rs`: the workload controllers.
//! - `disruption.rs`: PodDisruptionBudget status. `gc.rs`: dependents of deleted owners.
//! - `serviceaccount.rs`: the `default` ServiceAccount of every namespace.

pub mod deployment;
pub mod disruption;
pub mod gc;
pub mod pods;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::api::Cluster;
use super::registry::GroupResource;
use super::store::Change;

/// An object to reconcile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub gr: GroupResource,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(gr: GroupResource, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            gr,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(gr: GroupResource, object: &serde_json::Value) -> ObjectKey {
        ObjectKey::new(
            gr,
            super::meta::namespace(object),
            super::meta::name(object),
        )
    }
}

/// Something that runs beside the API server for as long as it serves.
pub trait Controller: Send + 'static {
    fn name(&self) -> &'static str;
    fn start(self: Box<Self>, cluster: Arc<Cluster>) -> JoinHandle<()>;
}

/// A level-triggered controller: given a key, make the world match the desired state.
pub trait Reconciler: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The keys to reconcile after `change` (a pod change -> its owner, ...).
    fn keys(&self, change: &Change, cluster: &Cluster) -> Vec<ObjectKey>;
    /// Every key there is, reconciled at start and after a missed change.
    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey>;
    /// Moves `key` towards its desired state; `Some(after)` asks to be called again.
    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration>;
}

/// Runs a [`Reconciler`]: a subscription to the store's changes, a queue of keys each
/// due `delay` after the change that concerned it, and requeues the reconciler asks for.
pub struct ReconcileLoop<R> {
    pub reconciler: Arc<R>,
    pub delay: Duration,
}

impl<R: Reconciler> Controller for ReconcileLoop<R> {
    fn name(&self) -> &'static str {
        self.reconciler.name()
    }

    fn start(self: Box<Self>, cluster: Arc<Cluster>) -> JoinHandle<()> {
        tokio::spawn(run(self.reconciler, self.delay, cluster))
    }
}

/// Schedules `key` at `at` unless it is already due earlier.
fn schedule(queue: &mut BTreeMap<ObjectKey, Instant>, key: ObjectKey, at: Instant) {
    let due = queue.entry(key).or_insert(at);
    if at < *due {
        *due = at;
    }
}

async fn run<R: Reconciler>(reconciler: Arc<R>, delay: Duration, cluster: Arc<Cluster>) {
    let mut changes = cluster.store().subscribe();
    let mut queue: BTreeMap<ObjectKey, Instant> = BTreeMap::new();
    for key in reconciler.resync(&cluster) {
        schedule(&mut queue, key, Instant::now() + delay);
    }
    loop {
        let next = queue.values().min().copied();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => {
                    for key in reconciler.keys(&change, &cluster) {
                        schedule(&mut queue, key, Instant::now() + delay);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    for key in reconciler.resync(&cluster) {
                        schedule(&mut queue, key, Instant::now() + delay);
                    }
                }
                Err(RecvError::Closed) => return,
            },
            () = sleep => {
                let now = Instant::now();
                let due: Vec<ObjectKey> = queue
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in due {
                    queue.remove(&key);
                    if let Some(after) = reconciler.reconcile(&cluster, &key) {
                        schedule(&mut queue, key, Instant::now() + after);
                    }
                }
            }
        }
    }
}

/// What the built-in controllers need to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a controller waits after a change before it reacts.
    pub delay: Duration,
    /// Nodes whose pods the simulated kubelet runs (the lab's kubelet runs its own).
    pub nodes: Vec<String>,
}

/// The built-in controllers.
pub fn builtin(settings: &Settings) -> Vec<Box<dyn Controller>> {
    fn boxed<R: Reconciler>(r: R, delay: Duration) -> Box<dyn Controller> {
        Box::new(ReconcileLoop {
            reconciler: Arc::new(r),
            delay,
        })
    }
    let delay = settings.delay;
    vec![
        boxed(scheduler::Scheduler::default(), delay),
        boxed(pods::Kubelet::new(settings.nodes.clone()), delay),
        boxed(replicaset::ReplicaSets, delay),
        boxed(deployment::Deployments, delay),
        boxed(statefulset::StatefulSets, delay),
        boxed(disruption::Disruption, delay),
        boxed(gc::GarbageCollector, delay),
        boxed(serviceaccount::DefaultServiceAccounts, delay),
    ]
}
