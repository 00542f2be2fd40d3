//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which
//! is what plain `kubectl get` asks for: the columns a real API server prints for pods,
//! Deployments, StatefulSets, ReplicaSets and events; other kinds get NAME and AGE.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::kube_server::meta;
use crate::kube_server::registry::{self, ResourceType};

pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn age(object: &Value) -> String {
    let created = object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(meta::parse_time);
    let Some(created) = created else {
        return "<unknown>".into();
    };
    let secs = SystemTime::now()
        .duration_since(created)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        7200..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn columns(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({"name": n, "type": "string", "format": if *n == "Name" { "name" } else { "" }, "description": "", "priority": 0}))
        .collect()
}

fn pod_cells(o: &Value) -> Vec<Value> {
    let containers = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let status = if meta::is_terminating(o) {
        "Terminating".to_owned()
    } else {
        o.pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending")
            .to_owned()
    };
    let restarts = meta::int_at(o, "/status/containerStatuses/0/restartCount").unwrap_or(0);
    vec![
        json!(meta::name(o)),
        json!(format!("{ready}/{containers}")),
        json!(status),
        json!(restarts),
        json!(age(o)),
    ]
}

fn event_cells(o: &Value) -> Vec<Value> {
    let object = format!(
        "{}/{}",
        o.pointer("/involvedObject/kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase(),
        o.pointer("/involvedObject/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    let field = |p: &str| o.pointer(p).cloned().unwrap_or(Value::Null);
    vec![
        json!(age(o)),
        field("/type"),
        field("/reason"),
        json!(object),
        field("/message"),
    ]
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let int = |p: &str| meta::int_at(o, p).unwrap_or(0);
    let name = json!(meta::name(o));
    match rt.gr {
        registry::PODS => pod_cells(o),
        registry::DEPLOYMENTS => vec![
            name,
            json!(format!(
                "{}/{}",
                int("/status/readyReplicas"),
                int("/spec/replicas")
            )),
            json!(int("/status/updatedReplicas")),
            json!(int("/status/availableReplicas")),
            json!(age(o)),
        ],
        registry::STATEFUL_SETS => vec![
            name,
            json!(format!(
                "{}/{}",
                int("/status/readyReplicas"),
                int("/spec/replicas")
            )),
            json!(age(o)),
        ],
        registry::REPLICA_SETS => vec![
            name,
            json!(int("/spec/replicas")),
            json!(int("/status/replicas")),
            json!(int("/status/readyReplicas")),
            json!(age(o)),
        ],
        registry::CORE_EVENTS => event_cells(o),
        _ => vec![name, json!(age(o))],
    }
}

fn names(rt: &ResourceType) -> &'static [&'static str] {
    match rt.gr {
        registry::PODS => &["Name", "Ready", "Status", "Restarts", "Age"],
        registry::DEPLOYMENTS => &["Name", "Ready", "Up-to-date", "Available", "Age"],
        registry::STATEFUL_SETS => &["Name", "Ready", "Age"],
        registry::REPLICA_SETS => &["Name", "Desired", "Current", "Ready", "Age"],
        registry::CORE_EVENTS => &["Last Seen", "Type", "Reason", "Object", "Message"],
        _ => &["Name", "Age"],
    }
}

/// A meta.k8s.io/v1 Table of `items`.
pub fn table(
    rt: &ResourceType,
    items: &[Value],
    resource_version: u64,
    continue_token: Option<&str>,
) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({"cells": cells(rt, o), "object": o}))
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = token.into();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
           "columnDefinitions": columns(names(rt)), "rows": rows})
}
