//! API errors as the API server writes them: a `Status` object with code, reason,
//! message and details, built by the same constructors the real server uses
//! (`NewNotFound`, `NewInvalid`, `NewForbidden`, `NewTooManyRequests`, ...).

use serde_json::{Value, json};

use super::registry::GroupResource;

/// One field error (`field.Error`): its type and the body of its message.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// `Required value`, `Invalid value: "x": detail`, ...
    pub body: String,
}

fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl FieldError {
    pub fn required(field: &str) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueRequired",
            body: "Required value".into(),
        }
    }

    /// `field.Invalid(path, value, detail)` with a string value.
    pub fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            body: format!("Invalid value: {}: {detail}", quoted(value)),
        }
    }

    /// `field.Invalid(path, value, detail)` with a number.
    pub fn invalid_number(field: &str, value: i64, detail: &str) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            body: format!("Invalid value: {value}: {detail}"),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueForbidden",
            body: format!("Forbidden: {detail}"),
        }
    }

    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
        let list: Vec<String> = supported.iter().map(|s| quoted(s)).collect();
        FieldError {
            field: field.into(),
            reason: "FieldValueNotSupported",
            body: format!(
                "Unsupported value: {}: supported values: {}",
                quoted(value),
                list.join(", ")
            ),
        }
    }
}

/// An error response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Sent as the `Retry-After` header too.
    pub retry_after: Option<u32>,
    /// `metadata.continue` of the Status (an expired list's inconsistent continuation).
    pub continue_token: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

fn details(gr: GroupResource, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": gr.resource});
    if !gr.group.is_empty() {
        d["group"] = gr.group.into();
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            continue_token: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn not_found(gr: GroupResource, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
            .with_details(details(gr, name))
    }

    /// The 404 for a path the server does not serve.
    pub fn no_route() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn already_exists(gr: GroupResource, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .with_details(details(gr, name))
    }

    /// An optimistic-concurrency failure (stale resourceVersion).
    pub fn conflict(gr: GroupResource, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .with_details(details(gr, name))
    }

    /// `NewInvalid`: 422 with one cause per field error.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> ApiError {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let all: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect();
        let list = match all.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.body, "field": e.field}))
            .collect();
        let mut d = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            d["group"] = group.into();
        }
        ApiError::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {list}"),
        )
        .with_details(d)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    /// `NewTooManyRequests(message, retryAfterSeconds)`.
    pub fn too_many_requests(message: &str, retry_after: u32) -> ApiError {
        let mut e = ApiError::new(429, "TooManyRequests", message);
        if retry_after > 0 {
            e.details = Some(json!({"retryAfterSeconds": retry_after}));
            e.retry_after = Some(retry_after);
        }
        e
    }

    /// 410 Gone, reason Expired (`NewResourceExpired`).
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The Status object.
    pub fn status(&self) -> Value {
        let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code});
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        if let Some(token) = &self.continue_token {
            s["metadata"]["continue"] = token.clone().into();
        }
        s
    }
}

impl ApiError {
    /// The Status as the API server writes it, fields in its order (kind, apiVersion,
    /// metadata, status, message, reason, details, code).
    pub fn status_text(&self) -> String {
        let s = self.status();
        let mut out = String::from("{");
        for key in [
            "kind",
            "apiVersion",
            "metadata",
            "status",
            "message",
            "reason",
            "details",
            "code",
        ] {
            if let Some(value) = s.get(key) {
                if out.len() > 1 {
                    out.push(',');
                }
                out.push_str(&format!("{}:{value}", Value::String(key.into())));
            }
        }
        out.push('}');
        out
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_field_error_as_the_api_server_does() {
        let one = ApiError::invalid(
            "Event",
            "events.k8s.io",
            "e",
            &[FieldError::required("eventTime")],
        );
        assert_eq!(
            one.message,
            "Event.events.k8s.io \"e\" is invalid: eventTime: Required value"
        );
        let two = ApiError::invalid(
            "Pod",
            "",
            "p",
            &[
                FieldError::required("a"),
                FieldError::invalid("b", "x", "bad"),
            ],
        );
        assert_eq!(
            two.message,
            "Pod \"p\" is invalid: [a: Required value, b: Invalid value: \"x\": bad]"
        );
        assert_eq!(
            two.status()["details"]["causes"][1]["reason"],
            "FieldValueInvalid"
        );
    }
}
