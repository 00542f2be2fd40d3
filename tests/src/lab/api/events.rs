//! The node's Events (Started, Killing, BackOff, OOMKilling, Unhealthy, ...) as core/v1
//! Events in the API, from the kubelet on the lab's node (`kubectl get events`,
//! `kubectl describe pod`). Repeats of the same reason and message for the same object
//! within ten minutes bump `count` and `lastTimestamp`, as the kubelet's recorder does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::NODE_NAME;
use crate::kube_server::api::Cluster;
use crate::kube_server::meta;
use crate::kube_server::registry::CORE_EVENTS;
use crate::lab::context::LabEvent;

/// (pod uid, field path, reason, message): what makes two Events the same.
type Key = (String, Option<String>, String, String);

/// Repeats within this window are aggregated into one Event.
const AGGREGATE: Duration = Duration::from_secs(600);

pub async fn record(cluster: Arc<Cluster>, mut events: UnboundedReceiver<LabEvent>) {
    let mut seen: HashMap<Key, (String, Instant)> = HashMap::new();
    let mut n: u64 = 0;
    while let Some(e) = events.recv().await {
        let key = (
            e.uid.clone(),
            e.field_path.clone(),
            e.reason.clone(),
            e.message.clone(),
        );
        let at =
            e.at.to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true);
        if let Some((name, first)) = seen.get(&key) {
            if first.elapsed() < AGGREGATE {
                let bumped = cluster.modify(CORE_EVENTS, &e.namespace, name, |ev| {
                    let count = meta::int_at(ev, "/count").unwrap_or(1);
                    ev["count"] = (count + 1).into();
                    ev["lastTimestamp"] = at.clone().into();
                });
                if bumped.is_ok() {
                    continue;
                }
            }
        }
        n += 1;
        let name = format!("{}.{:x}{n:04x}", e.pod, std::process::id());
        let mut involved = json!({"kind": "Pod", "apiVersion": "v1", "namespace": e.namespace,
            "name": e.pod, "uid": e.uid});
        if let Some(fp) = &e.field_path {
            involved["fieldPath"] = fp.clone().into();
        }
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": e.namespace},
            "involvedObject": involved,
            "reason": e.reason, "message": e.message,
            "type": if e.warning { "Warning" } else { "Normal" },
            "source": {"component": "kubelet", "host": NODE_NAME},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": NODE_NAME,
        });
        if let Ok(rt) = cluster.resource(CORE_EVENTS) {
            let rt = *rt;
            if cluster.create(&rt, &e.namespace, &event).is_ok() {
                seen.insert(key, (name, Instant::now()));
            }
        }
        seen.retain(|_, (_, t)| t.elapsed() < AGGREGATE);
    }
}
