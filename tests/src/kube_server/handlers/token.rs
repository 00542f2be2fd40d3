//! POST `serviceaccounts/NAME/token` (TokenRequest, what `kubectl create token NAME`
//! calls): a bearer token for the ServiceAccount, valid for `expirationSeconds` (default
//! one hour, at least ten minutes) and only while the ServiceAccount exists.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use k8s_openapi::chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::kube_server::errors::{ApiError, ApiResult, FieldError};
use crate::kube_server::http::{Body, Context, Server, body, respond};
use crate::kube_server::meta;
use crate::kube_server::registry::SERVICE_ACCOUNTS;

pub async fn handle(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    if ctx.info.verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on serviceaccounts/token",
            ctx.info.verb
        )));
    }
    let (_, bytes) = body::body(req).await?;
    let request = respond::parse_body(&bytes)?;
    let (ns, name) = (ctx.info.namespace.as_str(), ctx.info.name.as_str());
    let seconds = request
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if seconds < 600 {
        return Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            &[FieldError::invalid_number(
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration less than 10 minutes",
            )],
        ));
    }
    let rt = *server.cluster.resource(SERVICE_ACCOUNTS)?;
    let sa = server.cluster.get(&rt, ns, name)?;
    let ttl = Duration::from_secs(seconds.unsigned_abs());
    let (token, expires) = server.authn.issue(ns, name, meta::uid(&sa), ttl);
    let audiences = request
        .pointer("/spec/audiences")
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!(["https://kubernetes.default.svc.cluster.local"]));
    let response = json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": meta::now()},
        "spec": {"audiences": audiences, "expirationSeconds": seconds,
            "boundObjectRef": request.pointer("/spec/boundObjectRef").cloned().unwrap_or(Value::Null)},
        "status": {"token": token,
            "expirationTimestamp": meta::rfc3339(expires, SecondsFormat::Secs)}});
    Ok(respond::json(201, &response))
}
