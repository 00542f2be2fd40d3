//! POST `pods/NAME/eviction` as the eviction REST handler does it: the pod's
//! PodDisruptionBudget must allow a disruption (429 TooManyRequests with a
//! `DisruptionBudget` cause otherwise, no Retry-After), the budget's status records the
//! disruption at once (so two evictions cannot both use the last one), then the pod is
//! deleted with the eviction's DeleteOptions. More than one budget is a 500.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::kube_server::api::DeleteOptions;
use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::http::{Body, Context, Server, body, respond};
use crate::kube_server::meta;
use crate::kube_server::registry::{PDBS, PODS};
use crate::kube_server::select;

fn pdb_refusal(pdb: &Value) -> ApiError {
    let int = |p: &str| meta::int_at(pdb, p).unwrap_or(0);
    let name = meta::name(pdb);
    let (message, retry_after) = if int("/status/observedGeneration") < int("/metadata/generation")
    {
        (
            format!("The disruption budget {name} is still being processed by the server."),
            10,
        )
    } else {
        let message = format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            int("/status/desiredHealthy"),
            int("/status/currentHealthy")
        );
        (message, 0)
    };
    let mut e = ApiError::too_many_requests(
        "Cannot evict pod as it would violate the pod's disruption budget.",
        retry_after,
    );
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": message}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = retry_after.into();
    }
    e.details = Some(details);
    e
}

/// Checks the budgets of `pod` and records the disruption; Err when refused.
fn admit(server: &Server, namespace: &str, pod: &Value) -> ApiResult<()> {
    let cluster = &server.cluster;
    let pdbs: Vec<Value> = {
        let store = cluster.store();
        store
            .list(PDBS, Some(namespace))
            .into_iter()
            .filter(|p| {
                let selector = p.pointer("/spec/selector").cloned().unwrap_or(Value::Null);
                select::label_selector_matches(&selector, pod)
            })
            .cloned()
            .collect()
    };
    let pdb = match pdbs.as_slice() {
        [] => return Ok(()),
        [one] => one,
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let int = |p: &str| meta::int_at(pdb, p).unwrap_or(0);
    // An unhealthy pod may go while the budget is otherwise met (IfHealthyBudget).
    if !meta::is_ready(pod) && int("/status/currentHealthy") >= int("/status/desiredHealthy") {
        return Ok(());
    }
    if int("/status/observedGeneration") < int("/metadata/generation")
        || int("/status/disruptionsAllowed") <= 0
    {
        return Err(pdb_refusal(pdb));
    }
    let name = meta::name(pod).to_owned();
    cluster.modify(PDBS, namespace, meta::name(pdb), |p| {
        let allowed = meta::int_at(p, "/status/disruptionsAllowed").unwrap_or(1);
        p["status"]["disruptionsAllowed"] = (allowed - 1).into();
        p["status"]["disruptedPods"][name.as_str()] = meta::now().into();
    })?;
    Ok(())
}

pub async fn handle(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    if ctx.info.verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on pods/eviction",
            ctx.info.verb
        )));
    }
    let (_, bytes) = body::body(req).await?;
    let eviction = respond::parse_body(&bytes)?;
    let (ns, name) = (ctx.info.namespace.as_str(), ctx.info.name.as_str());
    let body_name = meta::name(&eviction);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let rt = *server.cluster.resource(PODS)?;
    let pod = server.cluster.get(&rt, ns, name)?;
    let options = DeleteOptions::parse(
        &Default::default(),
        eviction.get("deleteOptions").unwrap_or(&Value::Null),
    );
    if !meta::is_terminating(&pod) {
        admit(&server, ns, &pod)?;
    }
    server.cluster.delete(&rt, ns, name, &options)?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(respond::json(201, &status))
}
