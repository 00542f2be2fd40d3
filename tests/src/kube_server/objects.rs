//! Builders for the objects the test server serves, written with k8s-openapi types so
//! their wire form is the real one.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, Namespace, Pod, PodSpec, PodTemplateSpec, Probe,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Status, StatusCause, StatusDetails,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::fixture::DeploymentFixture;

/// The pod-template-hash of every ReplicaSet the fixture creates.
pub const TEMPLATE_HASH: &str = "7d4b9c8f6";

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    // k8s-openapi types always serialize (no maps with non-string keys).
    serde_json::to_value(object).unwrap_or(Value::Null)
}

pub fn namespace(name: &str) -> Value {
    let mut ns = to_value(&Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    });
    ns["status"] = serde_json::json!({"phase": "Active"});
    ns
}

pub fn app_labels(d: &DeploymentFixture) -> BTreeMap<String, String> {
    let mut labels = d.labels.clone();
    labels.insert("app".into(), d.name.clone());
    labels
}

fn template(d: &DeploymentFixture) -> PodTemplateSpec {
    let mut labels = app_labels(d);
    labels.insert("pod-template-hash".into(), TEMPLATE_HASH.into());
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
            labels: Some(labels),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: d.name.clone(),
                image: Some(format!("lomash-wood/{}:latest", d.name)),
                ports: Some(vec![ContainerPort {
                    container_port: 3000,
                    name: Some("http".into()),
                    ..Default::default()
                }]),
                readiness_probe: Some(probe.clone()),
                liveness_probe: Some(probe),
                ..Default::default()
            }],
            termination_grace_period_seconds: Some(d.termination_grace_period_seconds),
            ..Default::default()
        }),
    }
}

pub fn deployment(d: &DeploymentFixture) -> Value {
    to_value(&Deployment {
        metadata: ObjectMeta {
            name: Some(d.name.clone()),
            labels: Some(app_labels(d)),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(d.replicas),
            selector: LabelSelector {
                match_labels: Some(app_labels(d)),
                ..Default::default()
            },
            template: template(d),
            ..Default::default()
        }),
        status: Some(DeploymentStatus::default()),
    })
}

pub fn replica_set(d: &DeploymentFixture, deployment_uid: &str) -> Value {
    let mut selector = app_labels(d);
    selector.insert("pod-template-hash".into(), TEMPLATE_HASH.into());
    to_value(&ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{TEMPLATE_HASH}", d.name)),
            labels: template(d).metadata.and_then(|m| m.labels),
            owner_references: Some(vec![owner(
                "apps/v1",
                "Deployment",
                &d.name,
                deployment_uid,
            )]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(d.replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: Some(template(d)),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus::default()),
    })
}

fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A new, Pending pod of the ReplicaSet `rs_name` (its name comes from generateName).
pub fn pending_pod(d: &DeploymentFixture, rs_name: &str, rs_uid: &str) -> Value {
    let template = template(d);
    let mut pod = to_value(&Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{rs_name}-")),
            labels: template.metadata.and_then(|m| m.labels),
            owner_references: Some(vec![owner("apps/v1", "ReplicaSet", rs_name, rs_uid)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    });
    pod["status"] = serde_json::json!({"phase": "Pending", "qosClass": "Burstable"});
    pod
}

pub fn pdb(d: &DeploymentFixture) -> Option<Value> {
    let spec = d.pdb.as_ref()?;
    Some(to_value(&PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(format!("{}-pdb", d.name)),
            ..Default::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: spec.min_available.map(IntOrString::Int),
            max_unavailable: spec.max_unavailable.map(IntOrString::Int),
            selector: Some(LabelSelector {
                match_labels: Some(app_labels(d)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }))
}

/// A `Status` failure object, as the API server sends with every error code.
pub fn status(code: u16, reason: &str, message: String, details: Option<StatusDetails>) -> Value {
    let mut value = to_value(&Status {
        code: Some(i32::from(code)),
        details,
        message: Some(message),
        metadata: Default::default(),
        reason: Some(reason.into()),
        status: Some(if code < 400 {
            "Success".into()
        } else {
            "Failure".into()
        }),
    });
    value["kind"] = "Status".into();
    value["apiVersion"] = "v1".into();
    value
}

pub fn details(kind: &str, name: &str, group: &str, causes: Vec<StatusCause>) -> StatusDetails {
    StatusDetails {
        kind: Some(kind.into()),
        name: Some(name.into()),
        group: (!group.is_empty()).then(|| group.into()),
        causes: (!causes.is_empty()).then_some(causes),
        ..Default::default()
    }
}
