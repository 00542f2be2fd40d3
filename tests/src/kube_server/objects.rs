//! The objects a fixture describes, built with k8s-openapi types so their wire form is
//! the real one: namespaces, nodes, Deployments and StatefulSets whose pod templates
//! carry the simulated kubelet's annotations, and PodDisruptionBudgets.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, Namespace, Node, PodSpec, PodTemplateSpec, Probe,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::controllers::template::{
    NEVER_READY, READY_DELAY, SCHEDULE_DELAY, START_DELAY, STOP_DELAY,
};
use super::fixture::{PdbFixture, WorkloadFixture};

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    // k8s-openapi types always serialize (no maps with non-string keys).
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

pub fn namespace(name: &str) -> Value {
    to_value(&Namespace {
        metadata: named(name),
        ..Default::default()
    })
}

pub fn node(name: &str) -> Value {
    let mut node = to_value(&Node {
        metadata: named(name),
        ..Default::default()
    });
    node["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status (simulated by kube-test-server)"}],
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
            "kubeletVersion": "v1.34.0-kube-test-server"}});
    node
}

pub fn app_labels(w: &WorkloadFixture) -> BTreeMap<String, String> {
    let mut labels = w.labels.clone();
    labels.insert("app".into(), w.name.clone());
    labels
}

fn annotations(w: &WorkloadFixture) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        (SCHEDULE_DELAY.to_owned(), w.schedule_delay_ms.to_string()),
        (START_DELAY.to_owned(), w.start_delay_ms.to_string()),
        (READY_DELAY.to_owned(), w.ready_delay_ms.to_string()),
    ]);
    if w.never_ready {
        a.insert(NEVER_READY.into(), "true".into());
    }
    if let Some(stop) = w.stop_delay_ms {
        a.insert(STOP_DELAY.into(), stop.to_string());
    }
    a
}

fn template(w: &WorkloadFixture) -> PodTemplateSpec {
    let probe = Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/health".into()),
            port: IntOrString::Int(3000),
            ..Default::default()
        }),
        initial_delay_seconds: Some(10),
        period_seconds: Some(10),
        ..Default::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(app_labels(w)),
            annotations: Some(annotations(w)),
            finalizers: (!w.finalizers.is_empty()).then(|| w.finalizers.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: w.name.clone(),
                image: Some(format!("lomash-wood/{}:latest", w.name)),
                ports: Some(vec![ContainerPort {
                    container_port: 3000,
                    name: Some("http".into()),
                    ..Default::default()
                }]),
                readiness_probe: Some(probe.clone()),
                liveness_probe: Some(probe),
                ..Default::default()
            }],
            termination_grace_period_seconds: Some(w.termination_grace_period_seconds),
            ..Default::default()
        }),
    }
}

fn selector(w: &WorkloadFixture) -> LabelSelector {
    LabelSelector {
        match_labels: Some(app_labels(w)),
        ..Default::default()
    }
}

fn workload_meta(w: &WorkloadFixture) -> ObjectMeta {
    ObjectMeta {
        name: Some(w.name.clone()),
        labels: Some(app_labels(w)),
        ..Default::default()
    }
}

pub fn deployment(w: &WorkloadFixture) -> Value {
    to_value(&Deployment {
        metadata: workload_meta(w),
        spec: Some(DeploymentSpec {
            replicas: Some(w.replicas),
            selector: selector(w),
            template: template(w),
            ..Default::default()
        }),
        status: None,
    })
}

pub fn stateful_set(w: &WorkloadFixture) -> Value {
    to_value(&StatefulSet {
        metadata: workload_meta(w),
        spec: Some(StatefulSetSpec {
            replicas: Some(w.replicas),
            selector: selector(w),
            service_name: Some(w.name.clone()),
            template: template(w),
            ..Default::default()
        }),
        status: None,
    })
}

fn int_or_string(v: &Value) -> Option<IntOrString> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(IntOrString::Int),
        Value::String(s) => Some(IntOrString::String(s.clone())),
        _ => None,
    }
}

pub fn pdb(w: &WorkloadFixture, spec: &PdbFixture) -> Value {
    to_value(&PodDisruptionBudget {
        metadata: named(&format!("{}-pdb", w.name)),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: spec.min_available.as_ref().and_then(int_or_string),
            max_unavailable: spec.max_unavailable.as_ref().and_then(int_or_string),
            selector: Some(selector(w)),
            ..Default::default()
        }),
        status: None,
    })
}
