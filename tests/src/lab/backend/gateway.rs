//! api-gateway: routes by path prefix to the Services and passes method, path, query,
//! body and the headers that matter (Authorization, Content-Type, Stripe-Signature)
//! through. An unreachable upstream is a 503, one that does not answer within
//! `UPSTREAM_TIMEOUT_MS` a 504, both with the upstream's name.

use http_body_util::Full;
use hyper::{Request, StatusCode};

use super::http::{self, CallError, Reply, Req};
use super::{Service, error, not_found};

/// Path prefix -> the Service behind it.
pub const ROUTES: [(&str, &str); 9] = [
    ("/v1/products", "product-service"),
    ("/v1/auth", "auth-service"),
    ("/v1/payments", "order-payment-service"),
    ("/v1/webhooks", "order-payment-service"),
    ("/v1/appointments", "appointment-service"),
    ("/v1/content", "content-service"),
    ("/v1/customers", "customer-service"),
    ("/v1/notifications", "notification-service"),
    ("/v1/analytics", "analytics-service"),
];

/// The Service for `path`, if any.
pub fn route(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")))
        .map(|(_, service)| *service)
}

const PASSED_HEADERS: [&str; 4] = [
    "authorization",
    "content-type",
    "stripe-signature",
    "idempotency-key",
];

pub async fn handle(svc: &Service, req: Req) -> Reply {
    let Some(service) = route(&req.path) else {
        return not_found(&req);
    };
    let url = svc.cfg.upstream(service);
    let authority = match http::authority(&url) {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("bad upstream URL for {service}: {e}"),
            );
        }
    };
    let path = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(path)
        .header(hyper::header::HOST, authority.as_str());
    for name in PASSED_HEADERS {
        if let Some(v) = req.headers.get(name) {
            builder = builder.header(name, v);
        }
    }
    let Ok(upstream_req) = builder.body(Full::new(req.body.clone())) else {
        return error(StatusCode::BAD_REQUEST, "cannot forward this request");
    };
    match http::call(&authority, upstream_req, svc.cfg.upstream_timeout).await {
        Ok(up) => {
            let mut reply = http::text(up.status, String::new(), "application/json");
            if let Some(ct) = up.headers.get(hyper::header::CONTENT_TYPE) {
                reply
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, ct.clone());
            }
            if let Some(cache) = up.headers.get("x-cache") {
                reply.headers_mut().insert("x-cache", cache.clone());
            }
            *reply.body_mut() = Full::new(up.body);
            reply
        }
        Err(CallError::Timeout) => {
            svc.log(
                "error",
                &format!(
                    "upstream {service} did not answer within {} ms",
                    svc.cfg.upstream_timeout.as_millis()
                ),
            );
            error(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("upstream {service} timed out"),
            )
        }
        Err(e) => {
            svc.log("error", &format!("upstream {service} unavailable: {e}"));
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("upstream {service} unavailable"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_prefix_not_by_substring() {
        assert_eq!(route("/v1/products"), Some("product-service"));
        assert_eq!(route("/v1/products/prod_001"), Some("product-service"));
        assert_eq!(route("/v1/webhooks/stripe"), Some("order-payment-service"));
        assert_eq!(route("/v1/productsx"), None);
        assert_eq!(route("/health2"), None);
    }
}
