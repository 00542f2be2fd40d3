//! The HorizontalPodAutoscaler controller (autoscaling/v2, CPU utilisation): every
//! sync period (the lab's setting, 5 s by default; Kubernetes' is 15 s) each HPA's
//! target pods are measured from their cgroups (`usage.rs`) against their CPU requests,
//! the algorithm of `hpa.rs` recommends a size, the scale-down stabilisation window of
//! `behavior.scaleDown.stabilizationWindowSeconds` (default 300 s) is applied, and the
//! target's replicas, the HPA's status and a `SuccessfulRescale` Event follow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::metrics::SharedSampler;
use super::resources::HPAS;
use crate::kube_server::api::Cluster;
use crate::kube_server::meta;
use crate::kube_server::registry::{CORE_EVENTS, DEPLOYMENTS, GroupResource, PODS, STATEFUL_SETS};
use crate::lab::hpa::{self, PodSample, Stabilizer};
use crate::lab::quantity;

/// Kubernetes' default target when an HPA names no metric.
const DEFAULT_TARGET: u32 = 80;
const DEFAULT_DOWN_WINDOW: u64 = 300;

pub async fn run(cluster: Arc<Cluster>, sampler: SharedSampler, period: Duration) {
    let mut stabilizers: HashMap<String, Stabilizer> = HashMap::new();
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let hpas: Vec<Value> = cluster
            .store()
            .list(HPAS, None)
            .into_iter()
            .cloned()
            .collect();
        stabilizers.retain(|uid, _| hpas.iter().any(|h| meta::uid(h) == uid));
        for h in hpas {
            let stab = stabilizers.entry(meta::uid(&h).to_owned()).or_default();
            sync(&cluster, &sampler, &h, stab);
        }
    }
}

fn target_gr(kind: &str) -> Option<GroupResource> {
    match kind {
        "Deployment" => Some(DEPLOYMENTS),
        "StatefulSet" => Some(STATEFUL_SETS),
        _ => None,
    }
}

fn matches(selector: &Value, pod: &Value) -> bool {
    selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| meta::label(pod, k) == v.as_str()))
}

/// CPU requests of a pod (millicores).
fn requests(pod: &Value) -> f64 {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/resources/requests/cpu").and_then(Value::as_str))
        .filter_map(|q| quantity::cpu_millis(q).ok())
        .sum::<u64>() as f64
}

fn target_percent(h: &Value) -> u32 {
    h.pointer("/spec/metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m["type"] == "Resource" && m.pointer("/resource/name") == Some(&json!("cpu")))
        .and_then(|m| m.pointer("/resource/target/averageUtilization"))
        .and_then(Value::as_u64)
        .map_or(DEFAULT_TARGET, |v| {
            u32::try_from(v).unwrap_or(DEFAULT_TARGET)
        })
}

fn sync(cluster: &Cluster, sampler: &SharedSampler, h: &Value, stab: &mut Stabilizer) {
    let (ns, name) = (meta::namespace(h).to_owned(), meta::name(h).to_owned());
    let kind = h
        .pointer("/spec/scaleTargetRef/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let target_name = h
        .pointer("/spec/scaleTargetRef/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let target = target_gr(kind)
        .and_then(|gr| Some((gr, cluster.store().get(gr, &ns, target_name).cloned()?)));
    let Some((gr, target)) = target else {
        set_status(
            cluster,
            h,
            None,
            None,
            &[(
                "AbleToScale",
                "False",
                "FailedGetScale",
                format!(
                    "the HPA controller was unable to get the target's current scale: {kind} {target_name} not found"
                ),
            )],
        );
        return;
    };
    let current = meta::int_at(&target, "/spec/replicas").unwrap_or(1).max(0) as u32;
    let selector = target
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_default();
    let pods: Vec<Value> = cluster
        .store()
        .list(PODS, Some(&ns))
        .into_iter()
        .filter(|p| matches(&selector, p) && !meta::is_terminating(p))
        .cloned()
        .collect();
    let samples: Vec<PodSample> = {
        let s = sampler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pods.iter()
            .map(|p| {
                let readings = s.pod(meta::uid(p));
                PodSample {
                    ready: meta::is_ready(p),
                    usage_millis: (!readings.is_empty())
                        .then(|| readings.iter().map(|(_, u)| u.cpu_millis).sum()),
                    request_millis: requests(p),
                }
            })
            .collect()
    };
    let min = meta::int_at(h, "/spec/minReplicas").unwrap_or(1).max(1) as u32;
    let max = meta::int_at(h, "/spec/maxReplicas").unwrap_or(1).max(1) as u32;
    let Some(rec) = hpa::recommend(current, target_percent(h), &samples) else {
        set_status(cluster, h, Some(current), None, &[("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale".into()),
            ("ScalingActive", "False", "FailedGetResourceMetric", "the HPA was unable to compute the replica count: no CPU readings of ready pods yet".into())]);
        return;
    };
    let window = Duration::from_secs(
        h.pointer("/spec/behavior/scaleDown/stabilizationWindowSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_DOWN_WINDOW),
    );
    let desired = stab.decide(Instant::now(), current, rec.desired, (min, max), window);
    if desired != current {
        let _ = cluster.modify(gr, &ns, target_name, |t| {
            t["spec"]["replicas"] = desired.into()
        });
        let reason = if desired > current {
            "cpu resource utilization (percentage of request) above target"
        } else {
            "All metrics below target"
        };
        event(
            cluster,
            h,
            &format!("New size: {desired}; reason: {reason}"),
        );
        let _ = cluster.modify(HPAS, &ns, &name, |o| {
            o["status"]["lastScaleTime"] = meta::now().into()
        });
    }
    let limited = rec.desired > max || rec.desired < min;
    let conditions = [
        ("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size".to_owned()),
        ("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)".to_owned()),
        if limited {
            if rec.desired > max {
                ("ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more than the maximum replica count".to_owned())
            } else {
                ("ScalingLimited", "True", "TooFewReplicas", "the desired replica count is less than the minimum replica count".to_owned())
            }
        } else {
            ("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range".to_owned())
        },
    ];
    let metric = json!([{"type": "Resource", "resource": {"name": "cpu",
        "current": {"averageUtilization": rec.utilization, "averageValue": format!("{}m", rec.average_millis.round() as u64)}}}]);
    set_status(
        cluster,
        h,
        Some(desired),
        Some((current, metric)),
        &conditions,
    );
}

fn set_status(
    cluster: &Cluster,
    h: &Value,
    desired: Option<u32>,
    measured: Option<(u32, Value)>,
    conditions: &[(&str, &str, &str, String)],
) {
    let _ = cluster.modify(HPAS, meta::namespace(h), meta::name(h), |o| {
        if let Some(g) = o.pointer("/metadata/generation").cloned() {
            o["status"]["observedGeneration"] = g;
        }
        let status = &mut o["status"];
        if let Some(d) = desired {
            status["desiredReplicas"] = d.into();
        }
        if let Some((current, metric)) = &measured {
            status["currentReplicas"] = (*current).into();
            status["currentMetrics"] = metric.clone();
        }
        let old = status["conditions"].as_array().cloned().unwrap_or_default();
        let now = meta::now();
        status["conditions"] = Value::Array(
            conditions
                .iter()
                .map(|(t, s, r, m)| {
                    let since = old
                        .iter()
                        .find(|c| c["type"] == *t && c["status"] == *s)
                        .and_then(|c| c.get("lastTransitionTime").cloned())
                        .unwrap_or_else(|| now.clone().into());
                    json!({"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": since})
                })
                .collect(),
        );
    });
}

fn event(cluster: &Cluster, h: &Value, message: &str) {
    let now = meta::now();
    let ns = meta::namespace(h);
    let event = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.hpa{:x}", meta::name(h), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or_default()), "namespace": ns},
        "involvedObject": {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
            "namespace": ns, "name": meta::name(h), "uid": meta::uid(h)},
        "reason": "SuccessfulRescale", "message": message, "type": "Normal",
        "source": {"component": "horizontal-pod-autoscaler"},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": "horizontal-pod-autoscaler"});
    if let Ok(rt) = cluster.resource(CORE_EVENTS) {
        let rt = *rt;
        let _ = cluster.create(&rt, ns, &event);
    }
}
