//! A simulated kubelet.
//!
//! Kubelet (for the simulated nodes only; the lab's kubelet runs real processes for its
//! own nodes): scheduled -> Running after `start-delay-ms` -> Ready after
//! `ready-delay-ms` (never, with `never-ready`). When the pod is deleted, its Ready
//! condition drops to False at once (SIGTERM), its containers stop after `stop-delay-ms`
//! or when the grace period ends, whichever is first, and the kubelet then removes the
//! pod (a DELETE with grace 0, so finalizers still hold it). A shorter grace from a second
//! DELETE is honoured.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::template::{self, NEVER_READY, READY_AT, READY_DELAY, START_DELAY, STOP_DELAY};
use super::{ObjectKey, Reconciler};
use crate::kube_server::api::{Cluster, DeleteOptions};
use crate::kube_server::meta;
use crate::kube_server::registry::PODS;
use crate::kube_server::store::Change;

pub fn node_of(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn due(since: Instant, after: Duration) -> Option<Duration> {
    let at = since + after;
    let now = Instant::now();
    (at > now).then(|| at - now)
}

#[derive(Debug, Clone, Copy)]
struct Run {
    seen: Instant,
    started: Option<Instant>,
    terminating: Option<Instant>,
}

pub struct Kubelet {
    nodes: Vec<String>,
    runs: Mutex<HashMap<String, Run>>,
    ips: AtomicU32,
}

impl Kubelet {
    pub fn new(nodes: Vec<String>) -> Kubelet {
        Kubelet {
            nodes,
            runs: Mutex::default(),
            ips: AtomicU32::new(0),
        }
    }

    fn mine(&self, pod: &Value) -> bool {
        self.nodes.iter().any(|n| n == node_of(pod))
    }

    fn run_of(&self, pod: &Value) -> Run {
        let running = pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
        *lock(&self.runs)
            .entry(meta::uid(pod).to_owned())
            .or_insert_with(|| Run {
                seen: Instant::now(),
                started: running.then(Instant::now),
                terminating: None,
            })
    }

    fn save(&self, pod: &Value, run: Run) {
        lock(&self.runs).insert(meta::uid(pod).to_owned(), run);
    }

    fn pod_ip(&self) -> String {
        let n = self.ips.fetch_add(1, Ordering::Relaxed);
        format!("10.244.{}.{}", n / 250, n % 250 + 2)
    }
}

impl Reconciler for Kubelet {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        if change.gr == PODS && self.mine(&change.object) {
            vec![ObjectKey::of(PODS, &change.object)]
        } else {
            Vec::new()
        }
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(PODS, None)
            .into_iter()
            .filter(|p| self.mine(p))
            .map(|p| ObjectKey::of(PODS, p))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let Some(pod) = cluster
            .store()
            .get(PODS, &key.namespace, &key.name)
            .cloned()
        else {
            lock(&self.runs).retain(|_, r| r.seen.elapsed() < Duration::from_secs(600));
            return None;
        };
        if !self.mine(&pod) {
            return None;
        }
        let mut run = self.run_of(&pod);
        if meta::is_terminating(&pod) {
            return self.terminate(cluster, &pod, &mut run);
        }
        let Some(started) = run.started else {
            let delay = Duration::from_millis(template::millis(&pod, START_DELAY, 100));
            if let Some(wait) = due(run.seen, delay) {
                return Some(wait);
            }
            run.started = Some(Instant::now());
            self.save(&pod, run);
            let ip = self.pod_ip();
            write(cluster, &pod, |p| mark_running(p, &ip));
            return (!never_ready(&pod))
                .then(|| Duration::from_millis(template::millis(&pod, READY_DELAY, 200)));
        };
        if meta::is_ready(&pod) || never_ready(&pod) {
            return None;
        }
        let delay = Duration::from_millis(template::millis(&pod, READY_DELAY, 200));
        if let Some(wait) = due(started, delay) {
            return Some(wait);
        }
        write(cluster, &pod, mark_ready);
        None
    }
}

impl Kubelet {
    fn terminate(&self, cluster: &Cluster, pod: &Value, run: &mut Run) -> Option<Duration> {
        let grace = meta::int_at(pod, "/metadata/deletionGracePeriodSeconds").unwrap_or(0);
        if grace <= 0 {
            // Already removed by us (held by finalizers) or deleted at once.
            return None;
        }
        let since = *run.terminating.get_or_insert_with(Instant::now);
        self.save(pod, *run);
        if meta::is_ready(pod) {
            write(cluster, pod, |p| {
                meta::set_condition(p, "Ready", "False", None);
                meta::set_condition(p, "ContainersReady", "False", None);
                if let Some(statuses) = p
                    .pointer_mut("/status/containerStatuses")
                    .and_then(Value::as_array_mut)
                {
                    for s in statuses {
                        s["ready"] = false.into();
                    }
                }
            });
        }
        let grace = Duration::from_secs(grace.unsigned_abs());
        let stop = template::millis(pod, STOP_DELAY, u64::MAX);
        let stop = Duration::from_millis(stop).min(grace);
        if let Some(wait) = due(since, stop) {
            return Some(wait);
        }
        let options = DeleteOptions {
            grace_period_seconds: Some(0),
            uid: Some(meta::uid(pod).to_owned()),
            ..Default::default()
        };
        if let Ok(rt) = cluster.resource(PODS) {
            let rt = *rt;
            let _ = cluster.delete(&rt, meta::namespace(pod), meta::name(pod), &options);
        }
        lock(&self.runs).remove(meta::uid(pod));
        None
    }
}

fn never_ready(pod: &Value) -> bool {
    meta::annotation(pod, NEVER_READY) == Some("true")
}

/// Applies `f` to the pod if it is still the same one (same UID).
fn write(cluster: &Cluster, pod: &Value, f: impl FnOnce(&mut Value)) {
    let uid = meta::uid(pod).to_owned();
    let _ = cluster.modify(PODS, meta::namespace(pod), meta::name(pod), |p| {
        if meta::uid(p) == uid {
            f(p);
        }
    });
}

pub fn mark_running(pod: &mut Value, ip: &str) {
    let now = meta::now();
    let statuses: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "imageID": "",
                    "containerID": format!("containerd://{}", meta::uid(pod)), "ready": false,
                    "restartCount": 0, "started": true, "state": {"running": {"startedAt": now}}})
                })
                .collect()
        })
        .unwrap_or_default();
    pod["status"]["phase"] = "Running".into();
    pod["status"]["hostIP"] = "172.18.0.2".into();
    pod["status"]["podIP"] = ip.into();
    pod["status"]["podIPs"] = json!([{"ip": ip}]);
    pod["status"]["startTime"] = now.into();
    pod["status"]["containerStatuses"] = Value::Array(statuses);
    for (kind, status) in [
        ("PodReadyToStartContainers", "True"),
        ("Initialized", "True"),
        ("ContainersReady", "False"),
        ("Ready", "False"),
    ] {
        meta::set_condition(pod, kind, status, None);
    }
}

pub fn mark_ready(pod: &mut Value) {
    meta::set_condition(pod, "ContainersReady", "True", None);
    meta::set_condition(pod, "Ready", "True", None);
    if let Some(statuses) = pod
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for s in statuses {
            s["ready"] = true.into();
        }
    }
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    pod["metadata"]["annotations"][READY_AT] = micros.to_string().into();
}
