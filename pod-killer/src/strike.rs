//! One kill: DELETE with a grace period, or an eviction that honours
//! PodDisruptionBudgets (HTTP 429 is "blocked by PDB `<name>`", not an error).

use chaos_common::ChaosError;
use chaos_common::kube::{Connection, api_error};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::client::Body;
use serde_json::Value;

use crate::kill::Method;

#[derive(Debug, Clone, PartialEq)]
pub enum Struck {
    /// The API server accepted the deletion.
    Accepted,
    /// The eviction was refused by this PodDisruptionBudget.
    BlockedByPdb(String),
}

pub async fn strike(
    conn: &Connection,
    namespace: &str,
    pod: &str,
    method: Method,
    grace: u32,
) -> chaos_common::Result<Struck> {
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
    match method {
        Method::Delete => {
            api.delete(pod, &DeleteParams::default().grace_period(grace))
                .await
                .map_err(|e| api_error(e, "delete", "pods", namespace, conn))?;
            Ok(Struck::Accepted)
        }
        Method::Evict => evict(conn, namespace, pod, grace).await,
    }
}

/// Sent raw for two reasons: kube's `ErrorResponse` drops the Status causes that name the
/// PDB, and kube's own eviction body spells `delete_options` (ignored by the API server,
/// so the grace period would be lost).
async fn evict(
    conn: &Connection,
    namespace: &str,
    pod: &str,
    grace: u32,
) -> chaos_common::Result<Struck> {
    let body = serde_json::json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
        "deleteOptions": {"gracePeriodSeconds": grace},
    });
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
        .create_subresource(
            "eviction",
            pod,
            &PostParams::default(),
            body.to_string().into_bytes(),
        )
        .map_err(|e| ChaosError::fault(format!("cannot build the eviction of pod {pod}: {e}")))?;
    let response = conn
        .client
        .send(request.map(Body::from))
        .await
        .map_err(|e| api_error(e, "create", "pods/eviction", namespace, conn))?;
    let code = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if (200..300).contains(&code) {
        return Ok(Struck::Accepted);
    }
    if code == 429 {
        return Ok(Struck::BlockedByPdb(
            pdb_name(&status).unwrap_or_else(|| "(unnamed)".into()),
        ));
    }
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let error = kube::core::ErrorResponse {
        status: "Failure".into(),
        message,
        reason,
        code,
    };
    Err(api_error(
        kube::Error::Api(error),
        "create",
        "pods/eviction",
        namespace,
        conn,
    ))
}

/// The PDB named in a 429 Status: "The disruption budget NAME needs 2 healthy pods ...".
pub fn pdb_name(status: &Value) -> Option<String> {
    let causes = status.pointer("/details/causes")?.as_array()?;
    causes.iter().find_map(|cause| {
        let message = cause.get("message")?.as_str()?;
        let rest = message.strip_prefix("The disruption budget ")?;
        rest.split_whitespace().next().map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdb_name_comes_from_the_disruption_budget_cause() {
        let status = serde_json::json!({"code": 429, "details": {"causes": [
            {"reason": "DisruptionBudget", "message": "The disruption budget product-service-pdb needs 1 healthy pods and has 1 currently"}
        ]}});
        assert_eq!(pdb_name(&status).as_deref(), Some("product-service-pdb"));
        assert_eq!(pdb_name(&serde_json::json!({"code": 429})), None);
    }
}
