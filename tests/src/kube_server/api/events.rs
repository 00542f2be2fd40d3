//! Events: one stored object (core/v1), served as events.k8s.io/v1 too, converted field
//! by field as the API server converts them; and the validation the API server applies
//! to an Event created through events.k8s.io/v1 (`ValidateEventCreate`), which checks the
//! internal (core) form: a too-long `note` is reported on `message`, as on a real server.

use serde_json::{Map, Value};

use super::validation::{dns1123_subdomain, qualified_name};
use crate::kube_server::errors::FieldError;

/// events.k8s.io/v1 name -> core/v1 name, for the fields that differ.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(object: &Value, to_core: bool, api_version: &str) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = RENAMES.iter().find_map(|(v1, core)| {
            if to_core && key == v1 {
                Some(*core)
            } else if !to_core && key == core {
                Some(*v1)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(key).to_owned(), value.clone());
    }
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), "Event".into());
    if !to_core {
        // events.k8s.io/v1 has no `source.host`, and an empty source is left out.
        if out
            .get("deprecatedSource")
            .is_some_and(|s| s == &Value::Object(Map::new()))
        {
            out.remove("deprecatedSource");
        }
    }
    Value::Object(out)
}

pub fn to_core(event: &Value) -> Value {
    rename(event, true, "v1")
}

pub fn from_core(event: &Value) -> Value {
    rename(event, false, "events.k8s.io/v1")
}

const LIMIT_128: &str = "can have at most 128 characters";

fn str_field<'a>(event: &'a Value, field: &str) -> &'a str {
    event.get(field).and_then(Value::as_str).unwrap_or("")
}

fn set(event: &Value, field: &str) -> bool {
    event.get(field).is_some_and(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_i64() != Some(0),
        Value::Object(o) => o
            .values()
            .any(|v| v.as_str().is_some_and(|s| !s.is_empty())),
        _ => true,
    })
}

/// `legacyValidateEvent` for an event with an eventTime, on the core form.
fn legacy(event: &Value, namespace: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let involved_ns = event
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ));
    }
    let controller = str_field(event, "reportingComponent");
    if controller.is_empty() {
        errs.push(FieldError::required("reportingController"));
    }
    for m in qualified_name(controller) {
        errs.push(FieldError::invalid("reportingController", controller, &m));
    }
    for (field, limit_field) in [
        ("reportingInstance", "reportingInstance"),
        ("action", "action"),
        ("reason", "reason"),
    ] {
        let value = str_field(event, field);
        if value.is_empty() {
            errs.push(FieldError::required(field));
        }
        if value.len() > 128 {
            errs.push(FieldError::invalid(limit_field, "", LIMIT_128));
        }
    }
    if str_field(event, "message").len() > 1024 {
        errs.push(FieldError::invalid(
            "message",
            "",
            "can have at most 1024 characters",
        ));
    }
    for m in dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid("namespace", namespace, &m));
    }
    errs
}

/// `ValidateEventCreate` for a request through events.k8s.io/v1, on the core form.
pub fn validate_v1_create(event: &Value, namespace: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let has_time = set(event, "eventTime");
    if has_time {
        errs.extend(legacy(event, namespace));
    } else {
        let involved_ns = event
            .pointer("/involvedObject/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if involved_ns != namespace {
            errs.push(FieldError::invalid(
                "involvedObject.namespace",
                involved_ns,
                "does not match event.namespace",
            ));
        }
    }
    if let Some(series) = event.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if !set(series, "lastObservedTime") {
            errs.push(FieldError::required("series.lastObservedTime"));
        }
    }
    if !has_time {
        errs.push(FieldError::required("eventTime"));
    }
    let kind = str_field(event, "type");
    if kind != "Normal" && kind != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            &format!("has invalid value: {kind}"),
        ));
    }
    for field in ["firstTimestamp", "lastTimestamp", "count", "source"] {
        if set(event, field) {
            errs.push(FieldError::invalid(field, "", "needs to be unset"));
        }
    }
    errs
}

/// A malformed `eventTime` fails decoding before validation, as in Go (400, not 422).
pub fn decode_error(event: &Value) -> Option<String> {
    let time = event.get("eventTime")?.as_str()?;
    if crate::kube_server::meta::parse_time(time).is_some() {
        return None;
    }
    Some(format!(
        "Event in version \"v1\" cannot be handled as a Event: parsing time \"{time}\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"{time}\" as \"2006\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"metadata": {"name": "e", "namespace": "ns"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "reason": "ChaosPodKilled", "note": "run abc", "type": "Normal", "action": "Delete",
            "reportingController": "chaos-tools/pod-killer", "reportingInstance": "pod-killer-abc",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"}})
    }

    #[test]
    fn a_good_event_converts_both_ways_and_validates() {
        let core = to_core(&good());
        assert_eq!(core["message"], "run abc");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert!(
            validate_v1_create(&core, "ns").is_empty(),
            "{:?}",
            validate_v1_create(&core, "ns")
        );
        let back = from_core(&core);
        assert_eq!(back["note"], "run abc");
        assert_eq!(back["apiVersion"], "events.k8s.io/v1");
    }

    #[test]
    fn bad_fields_are_reported_on_their_internal_names() {
        let mut e = good();
        e["note"] = "x".repeat(1025).into();
        e["reportingController"] = "chaos tools".into();
        e["reportingInstance"] = "".into();
        e["action"] = "a".repeat(129).into();
        let fields: Vec<String> = validate_v1_create(&to_core(&e), "ns")
            .into_iter()
            .map(|f| f.field)
            .collect();
        for wanted in [
            "message",
            "reportingController",
            "reportingInstance",
            "action",
        ] {
            assert!(
                fields.iter().any(|f| f == wanted),
                "{wanted} not in {fields:?}"
            );
        }
        // Without an eventTime the event is validated as an old one: only the time.
        if let Some(o) = e.as_object_mut() {
            o.remove("eventTime");
        }
        let fields: Vec<String> = validate_v1_create(&to_core(&e), "ns")
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["eventTime"]);
        assert!(decode_error(&json!({"eventTime": "yesterday"})).is_some());
    }
}
