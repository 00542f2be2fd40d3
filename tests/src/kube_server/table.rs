//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which
//! is what plain `kubectl get` asks for: the columns a real API server prints for pods,
//! Deployments and events; other kinds get NAME and AGE.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::controller::is_ready;
use super::store::Kind;

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
        .unwrap_or("");
    let Ok(created) = k8s_openapi::chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = now.saturating_sub(u64::try_from(created.timestamp()).unwrap_or(0));
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

fn columns(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({"name": n, "type": "string", "format": if *n == "Name" { "name" } else { "" }, "description": "", "priority": 0}))
        .collect()
}

fn cells(kind: Kind, o: &Value) -> Vec<Value> {
    let name = o.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    let int = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    match kind {
        Kind::Pod => {
            let containers = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = if is_ready(o) { containers } else { 0 };
            let status = if o.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating".to_owned()
            } else {
                o.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Pending")
                    .to_owned()
            };
            let restarts = int("/status/containerStatuses/0/restartCount");
            vec![
                name,
                json!(format!("{ready}/{containers}")),
                json!(status),
                json!(restarts),
                json!(age(o)),
            ]
        }
        Kind::Deployment => {
            let ready = format!("{}/{}", int("/status/readyReplicas"), int("/spec/replicas"));
            vec![
                name,
                json!(ready),
                json!(int("/status/updatedReplicas")),
                json!(int("/status/availableReplicas")),
                json!(age(o)),
            ]
        }
        Kind::Event => {
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
        _ => vec![name, json!(age(o))],
    }
}

/// A meta.k8s.io/v1 Table of `items`.
pub fn table(kind: Kind, items: &[Value], resource_version: u64) -> Value {
    let names: &[&str] = match kind {
        Kind::Pod => &["Name", "Ready", "Status", "Restarts", "Age"],
        Kind::Deployment => &["Name", "Ready", "Up-to-date", "Available", "Age"],
        Kind::Event => &["Last Seen", "Type", "Reason", "Object", "Message"],
        _ => &["Name", "Age"],
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({"cells": cells(kind, o), "object": o}))
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
           "metadata": {"resourceVersion": resource_version.to_string()},
           "columnDefinitions": columns(names), "rows": rows})
}
