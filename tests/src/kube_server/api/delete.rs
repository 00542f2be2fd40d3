//! DELETE as the API server does it (`rest.BeforeDelete` and the generic store):
//!
//! - Pods are deleted gracefully: the first DELETE sets `deletionTimestamp` (now + grace)
//!   and `deletionGracePeriodSeconds` and keeps the pod; the kubelet removes it once its
//!   containers stopped (a second DELETE with grace 0). The grace comes from the request,
//!   else the pod's `terminationGracePeriodSeconds`; an unscheduled or finished pod, or a
//!   grace of 0, goes at once.
//! - A second DELETE may only shorten the grace period (the deadline moves to the first
//!   request's time plus the new grace); a longer one changes nothing.
//! - An object with finalizers is kept with `deletionTimestamp` and
//!   `deletionGracePeriodSeconds: 0` until the last finalizer is removed.
//! - `preconditions.uid` / `preconditions.resourceVersion` must match (409 otherwise).

use std::time::Duration;

use serde_json::{Value, json};

use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::meta;
use crate::kube_server::registry::{self, GroupResource, ResourceType};
use crate::kube_server::store::Store;

/// The DeleteOptions the server honours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `Orphan` keeps the dependents (their ownerReferences are removed by the GC).
    pub propagation_policy: Option<String>,
}

impl DeleteOptions {
    /// From the query string and the body (a DeleteOptions object), as kubectl and kube-rs
    /// send them; the query wins.
    pub fn parse(query: &std::collections::HashMap<String, String>, body: &Value) -> DeleteOptions {
        let grace = query
            .get("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64));
        let text = |pointer: &str| {
            body.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        DeleteOptions {
            grace_period_seconds: grace,
            uid: text("/preconditions/uid"),
            resource_version: text("/preconditions/resourceVersion"),
            propagation_policy: query
                .get("propagationPolicy")
                .cloned()
                .or_else(|| text("/propagationPolicy")),
        }
    }
}

fn precondition_failed(
    rt: &ResourceType,
    name: &str,
    what: &str,
    want: &str,
    have: &str,
) -> ApiError {
    ApiError::conflict(
        rt.gr,
        name,
        &format!(
            "Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
        ),
    )
}

fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    object: &Value,
    options: &DeleteOptions,
) -> ApiResult<()> {
    if let Some(uid) = options.uid.as_deref()
        && uid != meta::uid(object)
    {
        return Err(precondition_failed(rt, name, "UID", uid, meta::uid(object)));
    }
    if let Some(rv) = options.resource_version.as_deref()
        && rv != meta::resource_version(object)
    {
        return Err(precondition_failed(
            rt,
            name,
            "ResourceVersion",
            rv,
            meta::resource_version(object),
        ));
    }
    Ok(())
}

/// The grace period a pod gets (`podStrategy.CheckGracefulDelete`).
fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let mut period = requested
        .or_else(|| meta::int_at(pod, "/spec/terminationGracePeriodSeconds"))
        .unwrap_or(0);
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if !scheduled || matches!(phase, Some("Failed" | "Succeeded")) {
        period = 0;
    }
    if period < 0 { 1 } else { period }
}

enum Plan {
    /// Set or shorten the deletion deadline and keep the object.
    Graceful { timestamp: String, grace: i64 },
    /// Leave it as it is (a deletion is pending with an equal or shorter grace).
    Pending,
    /// Delete now (or mark for finalization).
    Now,
}

fn plan(rt: &ResourceType, object: &Value, options: &DeleteOptions) -> Plan {
    let current_grace = meta::int_at(object, "/metadata/deletionGracePeriodSeconds");
    if meta::is_terminating(object) {
        let Some(current) = current_grace.filter(|g| *g > 0) else {
            return Plan::Now;
        };
        let Some(requested) = options.grace_period_seconds else {
            return Plan::Pending;
        };
        if requested >= current {
            return Plan::Pending;
        }
        let deadline = object
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(meta::parse_time)
            .map(|t| {
                t - Duration::from_secs(current.unsigned_abs())
                    + Duration::from_secs(requested.max(0).unsigned_abs())
            });
        return match deadline {
            Some(t) if requested > 0 => Plan::Graceful {
                timestamp: meta::rfc3339(t, k8s_openapi::chrono::SecondsFormat::Secs),
                grace: requested,
            },
            _ => Plan::Now,
        };
    }
    if rt.gr != registry::PODS {
        return Plan::Now;
    }
    match pod_grace(object, options.grace_period_seconds) {
        0 => Plan::Now,
        grace => Plan::Graceful {
            timestamp: meta::time_after(Duration::from_secs(grace.unsigned_abs())),
            grace,
        },
    }
}

/// Deletes `name`; `kinds` are the stored resources a namespace's deletion empties.
pub fn delete(
    s: &mut Store,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
    kinds: &[GroupResource],
) -> ApiResult<Value> {
    let gr = rt.stored_as();
    let object = s
        .get(gr, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt.gr, name))?;
    check_preconditions(rt, name, &object, options)?;
    let mut updated = object.clone();
    match plan(rt, &object, options) {
        Plan::Pending => return Ok(object),
        Plan::Graceful { timestamp, grace } => {
            updated["metadata"]["deletionTimestamp"] = timestamp.into();
            updated["metadata"]["deletionGracePeriodSeconds"] = grace.into();
            return s
                .replace(gr, updated)
                .ok_or_else(|| ApiError::not_found(rt.gr, name));
        }
        Plan::Now => {}
    }
    if !meta::finalizers(&object).is_empty() {
        if !meta::is_terminating(&object) {
            updated["metadata"]["deletionTimestamp"] = meta::now().into();
        }
        updated["metadata"]["deletionGracePeriodSeconds"] = 0.into();
        return s
            .replace(gr, updated)
            .ok_or_else(|| ApiError::not_found(rt.gr, name));
    }
    if gr == registry::NAMESPACES {
        remove_namespace_content(s, name, kinds);
    }
    let removed = s
        .remove(gr, namespace, name)
        .ok_or_else(|| ApiError::not_found(rt.gr, name))?;
    if gr == registry::PODS || gr == registry::NAMESPACES {
        return Ok(removed);
    }
    let mut details = json!({"name": name, "kind": rt.gr.resource, "uid": meta::uid(&removed)});
    if !rt.gr.group.is_empty() {
        details["group"] = rt.gr.group.into();
    }
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "details": details}),
    )
}

/// A deleted namespace takes its objects with it (at once: the stand-in has no
/// namespace controller that would drain it first).
fn remove_namespace_content(s: &mut Store, namespace: &str, kinds: &[GroupResource]) {
    let mut doomed = Vec::new();
    for &gr in kinds {
        for object in s.list(gr, Some(namespace)) {
            doomed.push((gr, meta::name(object).to_owned()));
        }
    }
    for (gr, name) in doomed {
        s.remove(gr, namespace, &name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> ResourceType {
        *registry::Registry::default()
            .get(registry::PODS)
            .unwrap_or_else(|| panic!("pods registered"))
    }

    fn delete_pod(s: &mut Store, options: &DeleteOptions) -> ApiResult<Value> {
        delete(s, &pods(), "ns", "p", options, &[])
    }

    fn scheduled_pod(finalizers: &[&str]) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "finalizers": finalizers},
               "spec": {"nodeName": "node", "terminationGracePeriodSeconds": 30},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn a_pod_is_kept_terminating_and_a_shorter_grace_shortens_it() {
        let mut s = Store::new(10);
        s.insert(registry::PODS, scheduled_pod(&[]))
            .unwrap_or_default();
        let opts = |grace| DeleteOptions {
            grace_period_seconds: grace,
            ..Default::default()
        };
        let first = delete_pod(&mut s, &opts(None)).unwrap_or_default();
        assert_eq!(first["metadata"]["deletionGracePeriodSeconds"], 30);
        let longer = delete_pod(&mut s, &opts(Some(60))).unwrap_or_default();
        assert_eq!(longer["metadata"]["deletionGracePeriodSeconds"], 30);
        let shorter = delete_pod(&mut s, &opts(Some(5))).unwrap_or_default();
        assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 5);
        assert!(s.get(registry::PODS, "ns", "p").is_some());
        delete_pod(&mut s, &opts(Some(0))).unwrap_or_default();
        assert!(s.get(registry::PODS, "ns", "p").is_none());
    }

    #[test]
    fn finalizers_hold_the_object_and_a_wrong_uid_is_a_conflict() {
        let mut s = Store::new(10);
        s.insert(registry::PODS, scheduled_pod(&["example.com/hold"]))
            .unwrap_or_default();
        let wrong = DeleteOptions {
            uid: Some("other".into()),
            ..Default::default()
        };
        assert_eq!(delete_pod(&mut s, &wrong).map_err(|e| e.code), Err(409));
        let now = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let held = delete_pod(&mut s, &now).unwrap_or_default();
        assert_eq!(held["metadata"]["deletionGracePeriodSeconds"], 0);
        assert!(s.get(registry::PODS, "ns", "p").is_some());
    }
}
