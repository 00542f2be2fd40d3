//! Responses: JSON bodies and `Status` errors with the headers the API server sends.

use std::convert::Infallible;

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::kube_server::errors::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json(code: u16, value: &Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub fn error(e: &ApiError) -> Response<Body> {
    let mut response = Response::new(full(e.status_text()));
    *response.status_mut() =
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(seconds) = e.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

/// The body of a request as JSON (an empty body is null).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    if super::protobuf::is_protobuf(body) {
        return super::protobuf::to_json(body);
    }
    serde_json::from_slice(body).or_else(|_| {
        // kubectl and kube-rs send JSON; YAML bodies are accepted too.
        std::str::from_utf8(body)
            .ok()
            .and_then(|text| serde_norway::from_str::<Value>(text).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
                )
            })
    })
}
