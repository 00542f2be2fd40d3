//! Writes: create (events are mirrored between events.k8s.io/v1 and core v1, as on a
//! real cluster), delete with a grace period, and the pods' eviction subresource with
//! PodDisruptionBudgets.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use serde_json::{Value, json};

use super::controller::{Cluster, is_ready};
use super::http::{Body, Target, error, not_found};
use super::objects;
use super::store::{self, Kind};

fn parse_body(body: &Bytes) -> Result<Value, Box<Response<Body>>> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            400,
            "BadRequest",
            format!("the body of the request was in an unknown format: {e}"),
            None,
        ))
    })
}

pub fn create(cluster: &Arc<Cluster>, t: &Target, body: &Bytes) -> Response<Body> {
    let object = match parse_body(body) {
        Ok(Value::Object(o)) => Value::Object(o),
        Ok(_) => {
            return error(
                400,
                "BadRequest",
                "the request body must be an object".into(),
                None,
            );
        }
        Err(response) => return *response,
    };
    let ns = t.namespace.clone().unwrap_or_default();
    let named = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
        || object
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
    if !named {
        let message = format!(
            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
            t.kind.kind()
        );
        return error(
            422,
            "Invalid",
            message,
            Some(objects::details(
                t.kind.resource(),
                "",
                t.kind.group(),
                Vec::new(),
            )),
        );
    }
    let mut s = store::lock(&cluster.store);
    if t.kind != Kind::Namespace && !s.namespace_exists(&ns) {
        return error(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            None,
        );
    }
    match s.insert(t.kind, &ns, object) {
        Ok(created) => {
            let mirror = match t.kind {
                Kind::EventV1 => Some((Kind::Event, core_event(&created))),
                _ => None,
            };
            if let Some((kind, event)) = mirror {
                let _ = s.insert(kind, &ns, event);
            }
            super::http::json(StatusCode::CREATED, &created)
        }
        Err(name) => {
            let details = objects::details(t.kind.resource(), &name, t.kind.group(), Vec::new());
            error(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.kind.resource()),
                Some(details),
            )
        }
    }
}

/// The core/v1 view of an events.k8s.io/v1 Event (what `kubectl get events` lists).
fn core_event(e: &Value) -> Value {
    let time = e.get("eventTime").and_then(Value::as_str).map(|t| {
        format!(
            "{}Z",
            t.split('.').next().unwrap_or(t).trim_end_matches('Z')
        )
    });
    json!({
        "metadata": {"name": e.pointer("/metadata/name"), "labels": e.pointer("/metadata/labels"),
                     "annotations": e.pointer("/metadata/annotations")},
        "involvedObject": e.get("regarding"),
        "related": e.get("related"),
        "reason": e.get("reason"),
        "message": e.get("note"),
        "type": e.get("type"),
        "action": e.get("action"),
        "eventTime": e.get("eventTime"),
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
        "source": {"component": e.get("reportingController")},
        "reportingComponent": e.get("reportingController"),
        "reportingInstance": e.get("reportingInstance"),
    })
}

fn grace_period(query: &HashMap<String, String>, body: &Value) -> Option<i64> {
    query
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64))
}

pub fn delete(
    cluster: &Arc<Cluster>,
    t: &Target,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Response<Body> {
    let options = match parse_body(body) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let (ns, name) = (
        t.namespace.as_deref().unwrap_or(""),
        t.name.as_deref().unwrap_or(""),
    );
    if t.name.is_none() {
        return error(
            405,
            "MethodNotAllowed",
            "deletecollection is not supported by this test server".into(),
            None,
        );
    }
    let deleted = if t.kind == Kind::Pod {
        cluster.delete_pod(ns, name, grace_period(query, &options))
    } else {
        store::lock(&cluster.store).remove(t.kind, ns, name)
    };
    match deleted {
        Some(object) => super::http::json(StatusCode::OK, &object),
        None => not_found(t.kind, name),
    }
}

/// POST pods/NAME/eviction: 429 when a PodDisruptionBudget allows no disruption.
pub fn evict(cluster: &Arc<Cluster>, t: &Target, body: &Bytes) -> Response<Body> {
    let eviction = match parse_body(body) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let (ns, name) = (
        t.namespace.as_deref().unwrap_or(""),
        t.name.as_deref().unwrap_or(""),
    );
    if t.kind != Kind::Pod {
        return error(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            None,
        );
    }
    let blocking = {
        let s = store::lock(&cluster.store);
        let Some(pod) = s.get(Kind::Pod, ns, name) else {
            return not_found(Kind::Pod, name);
        };
        let pdbs = s.list(Kind::Pdb, Some(ns), &Default::default());
        pdbs.into_iter()
            .find(|pdb| selects(pdb, &pod) && is_ready(&pod) && allowed(pdb) <= 0)
    };
    if let Some(pdb) = blocking {
        let pdb_name = pdb
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let need = pdb
            .pointer("/status/desiredHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let has = pdb
            .pointer("/status/currentHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let cause = StatusCause {
            reason: Some("DisruptionBudget".into()),
            message: Some(format!(
                "The disruption budget {pdb_name} needs {need} healthy pods and has {has} currently"
            )),
            field: None,
        };
        let details = objects::details("pods", name, "", vec![cause]);
        return error(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            Some(details),
        );
    }
    let grace = eviction
        .pointer("/deleteOptions/gracePeriodSeconds")
        .and_then(Value::as_i64);
    match cluster.delete_pod(ns, name, grace) {
        Some(_) => error(201, "", String::new(), None),
        None => not_found(Kind::Pod, name),
    }
}

fn allowed(pdb: &Value) -> i64 {
    pdb.pointer("/status/disruptionsAllowed")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Whether the PDB's matchLabels select the pod.
fn selects(pdb: &Value, pod: &Value) -> bool {
    let Some(Value::Object(wanted)) = pdb.pointer("/spec/selector/matchLabels") else {
        return false;
    };
    wanted
        .iter()
        .all(|(k, v)| pod.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
}
