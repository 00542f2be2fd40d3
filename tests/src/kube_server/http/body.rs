//! Reading a request's body and telling its patch type: shared by the generic verbs
//! (`resource.rs`) and the subresource handlers.

use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;

use crate::kube_server::api::patch::PatchType;
use crate::kube_server::errors::{ApiError, ApiResult};

/// Reads the whole body (requests are small: objects, patches, options).
pub async fn body(req: Request<Incoming>) -> ApiResult<(hyper::http::request::Parts, Vec<u8>)> {
    let (parts, incoming) = req.into_parts();
    let bytes = incoming
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?
        .to_bytes();
    Ok((parts, bytes.to_vec()))
}

pub fn patch_type(parts: &hyper::http::request::Parts) -> ApiResult<PatchType> {
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .unwrap_or("");
    PatchType::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (server-side apply, {content_type}, is not supported by kube-test-server)"),
        )
    })
}
