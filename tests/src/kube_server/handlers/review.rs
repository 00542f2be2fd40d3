//! SelfSubjectAccessReview (`kubectl auth can-i`, and the remote layer's preflight):
//! "may I do this?", answered from the same RBAC rules that authorize real requests.

use serde_json::Value;

use crate::kube_server::auth::{self, Decision, UserInfo};
use crate::kube_server::errors::{ApiError, ApiResult, FieldError};
use crate::kube_server::http::Server;

fn text(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

pub fn self_subject_access_review(
    server: &Server,
    user: &UserInfo,
    review: &Value,
) -> ApiResult<Value> {
    let resource = review
        .pointer("/spec/resourceAttributes")
        .filter(|v| !v.is_null());
    let non_resource = review
        .pointer("/spec/nonResourceAttributes")
        .filter(|v| !v.is_null());
    let request = match (resource, non_resource) {
        (Some(r), None) => auth::Request {
            verb: text(r, "verb"),
            namespace: text(r, "namespace"),
            group: text(r, "group"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            name: text(r, "name"),
            path: None,
        },
        (None, Some(n)) => auth::Request {
            verb: text(n, "verb"),
            path: Some(text(n, "path")),
            ..Default::default()
        },
        _ => {
            return Err(ApiError::invalid(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "",
                &[FieldError::invalid(
                    "spec.resourceAttributes",
                    "",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )],
            ));
        }
    };
    let decision = auth::rbac::authorize(&server.cluster.store(), user, &request);
    let mut out = review.clone();
    out["apiVersion"] = "authorization.k8s.io/v1".into();
    out["kind"] = "SelfSubjectAccessReview".into();
    out["metadata"] = serde_json::json!({"creationTimestamp": null});
    out["status"] = match decision {
        Decision::Allow(reason) if reason.is_empty() => serde_json::json!({"allowed": true}),
        Decision::Allow(reason) => serde_json::json!({"allowed": true, "reason": reason}),
        Decision::Deny => serde_json::json!({"allowed": false}),
    };
    Ok(out)
}
