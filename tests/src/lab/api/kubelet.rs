//! The lab's kubelet on the API server: pods bound to the lab's node are started on it
//! for real, their status is written back as it changes, ephemeral containers added to
//! their spec are started, and a deleted pod is stopped with its grace period and then
//! removed from the API (grace 0, as the kubelet does once its containers are gone).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::NODE_NAME;
use super::refs::ClusterRefs;
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::controllers::{Controller, ObjectKey, ReconcileLoop, Reconciler};
use crate::kube_server::meta;
use crate::kube_server::registry::PODS;
use crate::kube_server::store::Change;
use crate::lab::node::Node;
use crate::lab::pod::PodShared;

/// A pod this kubelet runs.
struct Running {
    uid: String,
    /// The grace period its deletion was started with.
    stopping: Option<i64>,
    ephemeral: Vec<String>,
    sync: JoinHandle<()>,
}

pub struct Kubelet {
    node: Arc<Node>,
    cluster: OnceLock<Arc<Cluster>>,
    running: Mutex<HashMap<(String, String), Running>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn mine(pod: &Value) -> bool {
    pod.pointer("/spec/nodeName").and_then(Value::as_str) == Some(NODE_NAME)
}

impl Kubelet {
    pub fn controller(node: Arc<Node>) -> Box<dyn Controller> {
        Box::new(Starter(Arc::new(Kubelet {
            node,
            cluster: OnceLock::new(),
            running: Mutex::new(HashMap::new()),
        })))
    }

    fn start(&self, cluster: &Arc<Cluster>, pod: &Value) {
        let key = (meta::namespace(pod).to_owned(), meta::name(pod).to_owned());
        let typed: Pod = match serde_json::from_value(pod.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("pod {}/{} is not a valid Pod: {e}", key.0, key.1);
                return;
            }
        };
        let refs = Arc::new(ClusterRefs {
            cluster: cluster.clone(),
            namespace: key.0.clone(),
        });
        let shared = match self.node.run_pod(typed, refs) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot start pod {}/{}: {e:#}", key.0, key.1);
                return;
            }
        };
        let sync = tokio::spawn(sync_status(cluster.clone(), shared.clone()));
        lock(&self.running).insert(
            key,
            Running {
                uid: shared.uid.clone(),
                stopping: None,
                ephemeral: Vec::new(),
                sync,
            },
        );
    }

    /// Stops the pod `uid` within `grace`, then removes the API object (if it is still
    /// that pod).
    fn stop(&self, cluster: &Arc<Cluster>, ns: &str, name: &str, uid: &str, grace: Option<i64>) {
        let node = self.node.clone();
        let cluster = cluster.clone();
        let (ns, name, uid) = (ns.to_owned(), name.to_owned(), uid.to_owned());
        let grace = grace.map(|g| Duration::from_secs(g.unsigned_abs()));
        tokio::spawn(async move {
            node.delete_pod(&uid, grace).await;
            let options = DeleteOptions {
                grace_period_seconds: Some(0),
                uid: Some(uid),
                ..Default::default()
            };
            if let Ok(rt) = cluster.resource(PODS) {
                let rt = *rt;
                let _ = cluster.delete(&rt, &ns, &name, &options);
            }
        });
    }

    fn add_ephemeral(&self, pod: &Value, running: &mut Running) {
        let wanted = pod
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for ec in wanted {
            let name = ec["name"].as_str().unwrap_or_default().to_owned();
            if name.is_empty() || running.ephemeral.contains(&name) {
                continue;
            }
            running.ephemeral.push(name.clone());
            match serde_json::from_value(ec) {
                Ok(ec) => {
                    if let Err(e) = self.node.add_ephemeral(&running.uid, &ec) {
                        tracing::warn!("ephemeral container {name}: {e:#}");
                    }
                }
                Err(e) => tracing::warn!("ephemeral container {name} is invalid: {e}"),
            }
        }
    }
}

impl Reconciler for Kubelet {
    fn name(&self) -> &'static str {
        "lab-kubelet"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        if change.gr == PODS && mine(&change.object) {
            vec![ObjectKey::of(PODS, &change.object)]
        } else {
            Vec::new()
        }
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        let mut keys: Vec<ObjectKey> = cluster
            .store()
            .list(PODS, None)
            .into_iter()
            .filter(|p| mine(p))
            .map(|p| ObjectKey::of(PODS, p))
            .collect();
        keys.extend(
            lock(&self.running)
                .keys()
                .map(|(ns, name)| ObjectKey::new(PODS, ns, name)),
        );
        keys
    }

    fn reconcile(&self, _: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let cluster = self.cluster.get()?.clone();
        let pod = cluster
            .store()
            .get(PODS, &key.namespace, &key.name)
            .cloned();
        let k = (key.namespace.clone(), key.name.clone());
        let current = lock(&self.running)
            .get(&k)
            .map(|r| (r.uid.clone(), r.stopping));
        match (pod, current) {
            (None, Some((uid, _))) => {
                // Force-deleted: stop at once.
                self.stop(&cluster, &key.namespace, &key.name, &uid, Some(0));
                if let Some(r) = lock(&self.running).remove(&k) {
                    r.sync.abort();
                }
            }
            (Some(pod), Some((uid, _))) if meta::uid(&pod) != uid => {
                // The same name, a new pod (a StatefulSet's replacement): the old one goes.
                self.stop(&cluster, &key.namespace, &key.name, &uid, Some(0));
                lock(&self.running).remove(&k);
                return Some(Duration::from_millis(50));
            }
            (Some(pod), Some((uid, stopping))) if meta::is_terminating(&pod) => {
                let grace = meta::int_at(&pod, "/metadata/deletionGracePeriodSeconds");
                if stopping.is_none() || grace < stopping {
                    if let Some(r) = lock(&self.running).get_mut(&k) {
                        r.stopping = grace.or(Some(0));
                    }
                    self.stop(&cluster, &key.namespace, &key.name, &uid, grace);
                }
            }
            (Some(pod), Some(_)) => {
                if let Some(r) = lock(&self.running).get_mut(&k) {
                    self.add_ephemeral(&pod, r);
                }
            }
            (Some(pod), None) if mine(&pod) && !meta::is_terminating(&pod) => {
                self.start(&cluster, &pod)
            }
            (Some(pod), None) if mine(&pod) => {
                // Terminating and never started here (a lab restart): remove it.
                let grace = Some(0);
                self.stop(&cluster, &key.namespace, &key.name, meta::uid(&pod), grace);
            }
            _ => {}
        }
        None
    }
}

/// Copies the pod's status into the API object whenever it changes, until the pod is
/// gone from the node.
async fn sync_status(cluster: Arc<Cluster>, pod: Arc<PodShared>) {
    let mut rx = pod.subscribe();
    let (ns, name, uid) = (pod.namespace.clone(), pod.name.clone(), pod.uid.clone());
    drop(pod);
    loop {
        let status = serde_json::to_value(&*rx.borrow_and_update()).unwrap_or(Value::Null);
        if let Value::Object(fields) = status {
            let _ = cluster.modify(PODS, &ns, &name, |p| {
                if meta::uid(p) != uid {
                    return;
                }
                let current: BTreeMap<String, Value> = p["status"]
                    .as_object()
                    .map(|o| o.clone().into_iter().collect())
                    .unwrap_or_default();
                let mut merged = current;
                merged.extend(fields.clone());
                p["status"] = serde_json::to_value(merged).unwrap_or(Value::Null);
            });
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the reconcile loop once the cluster is known.
struct Starter(Arc<Kubelet>);

impl Controller for Starter {
    fn name(&self) -> &'static str {
        "lab-kubelet"
    }

    fn start(self: Box<Self>, cluster: Arc<Cluster>) -> JoinHandle<()> {
        let _ = self.0.cluster.set(cluster.clone());
        Box::new(ReconcileLoop {
            reconciler: self.0,
            delay: Duration::from_millis(10),
        })
        .start(cluster)
    }
}
