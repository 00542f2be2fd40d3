//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets: an
//! autoscaling/v1 Scale (`spec.replicas`, `status.replicas`, `status.selector`), read,
//! replaced (PUT) or patched; `kubectl scale` patches it.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::kube_server::api::patch;
use crate::kube_server::errors::{ApiError, ApiResult, FieldError};
use crate::kube_server::http::{Body, Context, Server, body, respond};
use crate::kube_server::meta;

fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_owned(),
                _ => format!("!{key}"),
            },
        );
    }
    parts.join(",")
}

/// The Scale of a workload.
pub fn scale_of(object: &Value) -> Value {
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta::name(object), "namespace": meta::namespace(object),
            "uid": meta::uid(object), "resourceVersion": meta::resource_version(object),
            "creationTimestamp": object.pointer("/metadata/creationTimestamp")},
        "spec": {"replicas": meta::int_at(object, "/spec/replicas").unwrap_or(0)},
        "status": {"replicas": meta::int_at(object, "/status/replicas").unwrap_or(0),
            "selector": selector_string(object.pointer("/spec/selector").unwrap_or(&Value::Null))}})
}

pub async fn handle(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let (parts, bytes) = body::body(req).await?;
    let rt = ctx.resource;
    let (ns, name) = (ctx.info.namespace.as_str(), ctx.info.name.as_str());
    let current = server.cluster.get(&rt, ns, name)?;
    let wanted = match ctx.info.verb.as_str() {
        "get" => return Ok(respond::json(200, &scale_of(&current))),
        "update" => respond::parse_body(&bytes)?,
        "patch" => {
            let kind = body::patch_type(&parts)?;
            patch::apply(kind, &scale_of(&current), &respond::parse_body(&bytes)?)?
        }
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not supported on {}/scale",
                rt.gr
            )));
        }
    };
    let sent_rv = meta::resource_version(&wanted);
    if !sent_rv.is_empty() && sent_rv != meta::resource_version(&current) {
        return Err(ApiError::conflict(
            rt.gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            &[FieldError::invalid_number(
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    let updated = server.cluster.modify(rt.gr, ns, name, |o| {
        o["spec"]["replicas"] = replicas.into();
    })?;
    Ok(respond::json(200, &scale_of(&updated)))
}
