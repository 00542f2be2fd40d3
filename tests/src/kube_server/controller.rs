//! The simulated controllers: a Deployment's ReplicaSet keeps `replicas` pods; a new
//! pod goes Pending -> scheduled -> Running -> Ready after the fixture's delays; a
//! deleted pod gets a deletionTimestamp and disappears after its grace period; the
//! Deployment, ReplicaSet and PodDisruptionBudget statuses follow.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::fixture::{DeploymentFixture, Fixture};
use super::objects::{self, TEMPLATE_HASH};
use super::select::Selector;
use super::store::{self, Kind, Shared, Store, now_rfc3339};

/// Annotation with the server's clock (µs since the epoch) when it marked the pod Ready,
/// so benchmarks can measure how late a client saw it.
pub const READY_AT_ANNOTATION: &str = "kube-test-server.chaos-tools/ready-at-us";

/// One step of a pod's start-up.
type Step = fn(&mut Value);

pub struct Cluster {
    pub store: Shared,
    pub fixture: Fixture,
    deployments: BTreeMap<(String, String), DeploymentFixture>,
}

impl Cluster {
    /// Builds the store from the fixture: namespaces, Deployments, ReplicaSets, PDBs and
    /// Ready pods.
    pub fn seed(fixture: Fixture) -> Arc<Cluster> {
        let store = Store::new();
        let mut deployments = BTreeMap::new();
        {
            let mut s = store::lock(&store);
            for ns in &fixture.namespaces {
                let _ = s.insert(Kind::Namespace, "", objects::namespace(&ns.name));
                for d in &ns.deployments {
                    deployments.insert((ns.name.clone(), d.name.clone()), d.clone());
                    seed_deployment(&mut s, &ns.name, d);
                }
            }
        }
        let cluster = Arc::new(Cluster {
            store,
            fixture,
            deployments,
        });
        for ns in &cluster.fixture.namespaces {
            cluster.refresh_status(&ns.name);
        }
        cluster
    }

    fn rs_name(d: &DeploymentFixture) -> String {
        format!("{}-{TEMPLATE_HASH}", d.name)
    }

    fn in_namespace(&self, namespace: &str) -> impl Iterator<Item = &DeploymentFixture> {
        self.deployments
            .iter()
            .filter(move |((ns, _), _)| ns == namespace)
            .map(|(_, d)| d)
    }

    /// Deletes a pod: at once with grace 0, else terminating for `grace` seconds.
    pub fn delete_pod(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        grace: Option<i64>,
    ) -> Option<Value> {
        let mut s = store::lock(&self.store);
        let pod = s.get(Kind::Pod, namespace, name)?;
        let grace = grace
            .or_else(|| {
                pod.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        let result = if grace <= 0 {
            s.remove(Kind::Pod, namespace, name)
        } else if pod.pointer("/metadata/deletionTimestamp").is_some() {
            Some(pod)
        } else {
            let at = SystemTime::now() + Duration::from_secs(grace.unsigned_abs());
            let at = store::rfc3339(at, k8s_openapi::chrono::SecondsFormat::Secs);
            let updated = s.update(Kind::Pod, namespace, name, |p| {
                p["metadata"]["deletionTimestamp"] = at.into();
                p["metadata"]["deletionGracePeriodSeconds"] = grace.into();
            });
            let (cluster, ns, pod) = (self.clone(), namespace.to_owned(), name.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(grace.unsigned_abs())).await;
                store::lock(&cluster.store).remove(Kind::Pod, &ns, &pod);
                cluster.refresh_status(&ns);
            });
            updated
        };
        drop(s);
        self.reconcile(namespace);
        result
    }

    /// The ReplicaSet controller: creates the pods missing from each ReplicaSet.
    pub fn reconcile(self: &Arc<Self>, namespace: &str) {
        for d in self.in_namespace(namespace) {
            let rs = Cluster::rs_name(d);
            let mut s = store::lock(&self.store);
            let Some(rs_uid) = s
                .get(Kind::ReplicaSet, namespace, &rs)
                .and_then(|r| uid(&r))
            else {
                continue;
            };
            let active = active_pods(&s, namespace, &rs).len();
            let missing = usize::try_from(d.replicas)
                .unwrap_or(0)
                .saturating_sub(active);
            for _ in 0..missing {
                let Ok(pod) = s.insert(Kind::Pod, namespace, objects::pending_pod(d, &rs, &rs_uid))
                else {
                    continue;
                };
                let name = pod
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                tokio::spawn(
                    self.clone()
                        .lifecycle(namespace.to_owned(), name, d.clone()),
                );
            }
        }
        self.refresh_status(namespace);
    }

    /// Pending -> scheduled -> Running -> Ready, each after the fixture's delay.
    async fn lifecycle(self: Arc<Self>, namespace: String, pod: String, d: DeploymentFixture) {
        let steps: [(u64, Step); 3] = [
            (d.schedule_delay_ms, mark_scheduled),
            (d.start_delay_ms, mark_running),
            (d.ready_delay_ms, mark_ready),
        ];
        let count = if d.never_ready { 2 } else { 3 };
        for (delay, step) in steps.into_iter().take(count) {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let updated = store::lock(&self.store).update(Kind::Pod, &namespace, &pod, |p| {
                if p.pointer("/metadata/deletionTimestamp").is_none() {
                    step(p);
                }
            });
            if updated.is_none() {
                return;
            }
            self.refresh_status(&namespace);
        }
    }

    /// Recomputes ReplicaSet, Deployment and PDB statuses from the pods.
    pub fn refresh_status(&self, namespace: &str) {
        let mut s = store::lock(&self.store);
        for d in self.in_namespace(namespace) {
            let rs = Cluster::rs_name(d);
            let pods = active_pods(&s, namespace, &rs);
            let total = pods.len();
            let ready = pods.iter().filter(|p| is_ready(p)).count();
            s.update(Kind::ReplicaSet, namespace, &rs, |r| {
                r["status"] = json!({"replicas": total, "fullyLabeledReplicas": total, "readyReplicas": ready,
                                     "availableReplicas": ready, "observedGeneration": 1});
            });
            let unavailable = usize::try_from(d.replicas)
                .unwrap_or(0)
                .saturating_sub(ready);
            let available = if ready >= 1 { "True" } else { "False" };
            s.update(Kind::Deployment, namespace, &d.name, |dep| {
                let since = dep.pointer("/status/conditions/0/lastTransitionTime").cloned();
                let same = dep.pointer("/status/conditions/0/status").and_then(Value::as_str) == Some(available);
                let since = since.filter(|_| same).unwrap_or_else(|| now_rfc3339().into());
                dep["status"] = json!({"observedGeneration": 1, "replicas": total, "updatedReplicas": total,
                    "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": unavailable,
                    "conditions": [{"type": "Available", "status": available, "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.", "lastTransitionTime": since,
                        "lastUpdateTime": since}]});
            });
            if let Some(pdb) = d.pdb.as_ref() {
                let desired = pdb
                    .min_available
                    .unwrap_or_else(|| (d.replicas - pdb.max_unavailable.unwrap_or(0)).max(0));
                let healthy = i32::try_from(ready).unwrap_or(i32::MAX);
                s.update(Kind::Pdb, namespace, &format!("{}-pdb", d.name), |p| {
                    p["status"] = json!({"currentHealthy": healthy, "desiredHealthy": desired,
                        "disruptionsAllowed": (healthy - desired).max(0), "expectedPods": d.replicas,
                        "observedGeneration": 1});
                });
            }
        }
    }
}

fn seed_deployment(s: &mut Store, namespace: &str, d: &DeploymentFixture) {
    let Ok(dep) = s.insert(Kind::Deployment, namespace, objects::deployment(d)) else {
        return;
    };
    let dep_uid = uid(&dep).unwrap_or_default();
    let Ok(rs) = s.insert(
        Kind::ReplicaSet,
        namespace,
        objects::replica_set(d, &dep_uid),
    ) else {
        return;
    };
    let rs_uid = uid(&rs).unwrap_or_default();
    if let Some(pdb) = objects::pdb(d) {
        let _ = s.insert(Kind::Pdb, namespace, pdb);
    }
    for _ in 0..d.replicas {
        let mut pod = objects::pending_pod(d, &Cluster::rs_name(d), &rs_uid);
        mark_scheduled(&mut pod);
        mark_running(&mut pod);
        // The fixture's pods start Ready; `neverReady` is about replacements.
        mark_ready(&mut pod);
        let _ = s.insert(Kind::Pod, namespace, pod);
    }
}

fn uid(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Pods of the ReplicaSet `rs` that are not terminating.
fn active_pods(s: &Store, namespace: &str, rs: &str) -> Vec<Value> {
    s.list(Kind::Pod, Some(namespace), &Selector::default())
        .into_iter()
        .filter(|p| {
            p.pointer("/metadata/ownerReferences/0/name")
                .and_then(Value::as_str)
                == Some(rs)
        })
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .collect()
}

pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn condition(kind: &str, status: &str) -> Value {
    json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now_rfc3339()})
}

fn mark_scheduled(pod: &mut Value) {
    pod["spec"]["nodeName"] = "kind-worker".into();
    pod["status"]["conditions"] = json!([condition("PodScheduled", "True")]);
}

fn mark_running(pod: &mut Value) {
    let name = pod
        .pointer("/spec/containers/0/name")
        .cloned()
        .unwrap_or(Value::Null);
    let image = pod
        .pointer("/spec/containers/0/image")
        .cloned()
        .unwrap_or(Value::Null);
    let now = now_rfc3339();
    pod["status"]["phase"] = "Running".into();
    pod["status"]["hostIP"] = "172.18.0.2".into();
    pod["status"]["podIP"] = "10.244.0.10".into();
    pod["status"]["startTime"] = now.clone().into();
    pod["status"]["conditions"] = json!([
        condition("PodScheduled", "True"),
        condition("Initialized", "True"),
        condition("ContainersReady", "False"),
        condition("Ready", "False")
    ]);
    pod["status"]["containerStatuses"] = json!([{"name": name, "image": image, "imageID": "", "ready": false,
        "restartCount": 0, "started": true, "state": {"running": {"startedAt": now}}}]);
}

fn mark_ready(pod: &mut Value) {
    pod["status"]["conditions"] = json!([
        condition("PodScheduled", "True"),
        condition("Initialized", "True"),
        condition("ContainersReady", "True"),
        condition("Ready", "True")
    ]);
    pod["status"]["containerStatuses"][0]["ready"] = true.into();
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    pod["metadata"]["annotations"][READY_AT_ANNOTATION] = micros.to_string().into();
}
