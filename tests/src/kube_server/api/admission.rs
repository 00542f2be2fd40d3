//! Admission: what runs on every create and update before the object is stored, in
//! order: defaulting (as the API server's defaulters and `PrepareForCreate` do), then
//! validation. The chain is a list of [`Admission`] plugins; the lab appends its own
//! (Pod Security, for instance) without touching the handlers.

use serde_json::{Value, json};

use super::events;
use super::validation;
use crate::kube_server::errors::{ApiError, ApiResult, FieldError};
use crate::kube_server::registry::{self, ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// What is being admitted.
#[derive(Debug)]
pub struct Attributes<'a> {
    pub operation: Operation,
    /// The type the client asked for (events.k8s.io Events are stored as core Events).
    pub resource: &'a ResourceType,
    pub subresource: Option<&'a str>,
    pub namespace: &'a str,
    pub old: Option<&'a Value>,
}

pub trait Admission: Send + Sync {
    fn name(&self) -> &'static str;
    /// Mutates and/or validates `object`, in its stored form.
    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()>;
}

/// The built-in chain: defaults, object metadata, Events.
pub fn builtin() -> Vec<Box<dyn Admission>> {
    vec![
        Box::new(Defaults),
        Box::new(MetaValidation),
        Box::new(EventValidation),
    ]
}

pub fn invalid(attrs: &Attributes<'_>, object: &Value, errors: &[FieldError]) -> ApiError {
    ApiError::invalid(
        attrs.resource.kind,
        attrs.resource.gr.group,
        crate::kube_server::meta::name(object),
        errors,
    )
}

struct MetaValidation;

impl Admission for MetaValidation {
    fn name(&self) -> &'static str {
        "ObjectMeta"
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        if attrs.operation != Operation::Create {
            return Ok(());
        }
        let errors = validation::object_meta(attrs.resource, object);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid(attrs, object, &errors))
        }
    }
}

struct EventValidation;

impl Admission for EventValidation {
    fn name(&self) -> &'static str {
        "EventValidation"
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        // Strict validation applies to events created through events.k8s.io/v1 only.
        if attrs.operation != Operation::Create || attrs.resource.gr != registry::EVENTS {
            return Ok(());
        }
        let errors = events::validate_v1_create(object, attrs.namespace);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid(attrs, object, &errors))
        }
    }
}

struct Defaults;

impl Admission for Defaults {
    fn name(&self) -> &'static str {
        "Defaults"
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        match attrs.resource.gr {
            registry::PODS => {
                if let Some(spec) = object.get_mut("spec") {
                    pod_spec_defaults(spec);
                }
                if attrs.operation == Operation::Create {
                    let qos = qos_class(object);
                    object["status"] = json!({"phase": "Pending", "qosClass": qos});
                }
            }
            registry::DEPLOYMENTS | registry::STATEFUL_SETS | registry::REPLICA_SETS => {
                workload_defaults(attrs.resource, object);
                if attrs.operation == Operation::Create {
                    object["status"] = json!({});
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn default(object: &mut Value, key: &str, value: Value) {
    if object.get(key).is_none_or(Value::is_null) {
        object[key] = value;
    }
}

/// The pod spec defaults that show in `kubectl get -o yaml` and that clients read.
pub fn pod_spec_defaults(spec: &mut Value) {
    default(spec, "restartPolicy", "Always".into());
    default(spec, "terminationGracePeriodSeconds", 30.into());
    default(spec, "dnsPolicy", "ClusterFirst".into());
    default(spec, "schedulerName", "default-scheduler".into());
    default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            default(c, "terminationMessagePath", "/dev/termination-log".into());
            default(c, "terminationMessagePolicy", "File".into());
            default(c, "resources", json!({}));
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let tag = image.rsplit('/').next().and_then(|l| l.split_once(':'));
            let policy = match tag {
                Some((_, "latest")) | None => "Always",
                Some(_) => "IfNotPresent",
            };
            default(c, "imagePullPolicy", policy.into());
        }
    }
}

fn workload_defaults(rt: &ResourceType, object: &mut Value) {
    let Some(spec) = object.get_mut("spec") else {
        return;
    };
    default(spec, "replicas", 1.into());
    default(spec, "revisionHistoryLimit", 10.into());
    match rt.gr {
        registry::DEPLOYMENTS => {
            default(spec, "progressDeadlineSeconds", 600.into());
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        registry::STATEFUL_SETS => {
            default(spec, "podManagementPolicy", "OrderedReady".into());
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate",
                "rollingUpdate": {"partition": 0}}),
            );
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        _ => {}
    }
    if let Some(pod_spec) = spec.pointer_mut("/template/spec") {
        pod_spec_defaults(pod_spec);
    }
}

/// `GetPodQOS`: Guaranteed when every container's requests equal its limits for cpu
/// and memory, BestEffort when none sets any, else Burstable.
fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests");
        let limits = c.pointer("/resources/limits");
        any |= requests.is_some_and(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            || limits.is_some_and(|l| l.as_object().is_some_and(|o| !o.is_empty()));
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
