//! Reading and writing `metadata` of objects kept as their JSON wire form, and the
//! API server's time formats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(object: &Value) -> &str {
    str_at(object, "/metadata/name")
}

pub fn namespace(object: &Value) -> &str {
    str_at(object, "/metadata/namespace")
}

pub fn uid(object: &Value) -> &str {
    str_at(object, "/metadata/uid")
}

pub fn resource_version(object: &Value) -> &str {
    str_at(object, "/metadata/resourceVersion")
}

pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

pub fn is_terminating(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The controller owner reference: (kind, name, uid).
pub fn controller_of(object: &Value) -> Option<(&str, &str, &str)> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            (
                r.get("kind").and_then(Value::as_str).unwrap_or(""),
                r.get("name").and_then(Value::as_str).unwrap_or(""),
                r.get("uid").and_then(Value::as_str).unwrap_or(""),
            )
        })
}

/// An owner reference to `owner` as its controller.
pub fn controller_ref(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner), "uid": uid(owner),
        "controller": true, "blockOwnerDeletion": true,
    })
}

pub fn int_at(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

/// `time` as RFC 3339 in UTC with `format` precision (metav1.Time is seconds,
/// metav1.MicroTime microseconds).
pub fn rfc3339(time: SystemTime, format: SecondsFormat) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(secs, since.subsec_nanos())
        .map(|t| t.to_rfc3339_opts(format, true))
        .unwrap_or_default()
}

/// Now, as a metav1.Time.
pub fn now() -> String {
    rfc3339(SystemTime::now(), SecondsFormat::Secs)
}

/// `now + after`, as a metav1.Time.
pub fn time_after(after: Duration) -> String {
    rfc3339(SystemTime::now() + after, SecondsFormat::Secs)
}

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let t = DateTime::parse_from_rfc3339(text).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, t.timestamp_subsec_nanos()))
}

/// Whether the object's Ready condition is True (pods).
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Sets condition `kind` to `status`, keeping its transition time when unchanged.
pub fn set_condition(object: &mut Value, kind: &str, status: &str, reason: Option<&str>) {
    if !object["status"]["conditions"].is_array() {
        object["status"]["conditions"] = Value::Array(Vec::new());
    }
    let now = now();
    let Some(conditions) = object["status"]["conditions"].as_array_mut() else {
        return;
    };
    let mut condition = serde_json::json!({"type": kind, "status": status,
        "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(reason) = reason {
        condition["reason"] = reason.into();
    }
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(existing) if existing["status"] == status => {
            if let Some(reason) = reason {
                existing["reason"] = reason.into();
            }
        }
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}
