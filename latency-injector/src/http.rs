//! HTTP mode: a hyper server on the client side and one keep-alive hyper client
//! connection to the upstream per client connection. Matching requests are held before
//! they are forwarded; everything else is forwarded at once. Bodies stream through in
//! both directions (hyper's `Incoming` is passed on as it is, never buffered).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tracing::debug;

use crate::model::Rng;
use crate::proxy::Shared;

type Body = BoxBody<Bytes, hyper::Error>;

/// Which requests are delayed: a path prefix (whole segments) and optional methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRules {
    /// Empty: every path matches.
    pub endpoints: Vec<String>,
    /// Empty: every method matches. Upper case.
    pub methods: Vec<String>,
}

impl HttpRules {
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        let method_ok =
            self.methods.is_empty() || self.methods.iter().any(|m| m == method.as_str());
        let path_ok =
            self.endpoints.is_empty() || self.endpoints.iter().any(|p| prefix_matches(p, path));
        method_ok && path_ok
    }
}

/// `/v1/webhooks` matches `/v1/webhooks` and `/v1/webhooks/stripe`, not `/v1/webhooksX`;
/// a prefix ending in `/` matches anything below it.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with(['/', '?']),
        None => false,
    }
}

fn bad_gateway(cause: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(format!(
        "latency-injector: upstream error: {cause}\n"
    )))
    .map_err(|never: Infallible| match never {})
    .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// Serves one client connection until it closes, or until the drain starts and the
/// request in flight has been answered.
pub async fn serve(
    client: TcpStream,
    upstream: TcpStream,
    rules: &HttpRules,
    shared: &Shared,
    rng: Rng,
) {
    let (sender, upstream_conn) =
        match hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(upstream)).await {
            Ok(pair) => pair,
            Err(e) => {
                shared.stats.upstream_error(&format!("http handshake: {e}"));
                return;
            }
        };
    let upstream_task = tokio::spawn(upstream_conn);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let rng = Arc::new(Mutex::new(rng));
    let stats = Arc::clone(&shared.stats);
    let model = shared.config.model;
    let rules = rules.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (sender, rng, stats, rules) = (
            Arc::clone(&sender),
            Arc::clone(&rng),
            Arc::clone(&stats),
            rules.clone(),
        );
        async move {
            let arrived = tokio::time::Instant::now();
            stats.add(&stats.requests, 1);
            let delay = rules
                .matches(request.method(), request.uri().path())
                .then(|| {
                    let mut rng = rng
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    model.affects(&mut rng).then(|| model.sample(&mut rng))
                })
                .flatten();
            if let Some(delay) = delay {
                crate::timer::sleep_until(arrived + delay).await;
                stats.record_delay(arrived.elapsed());
                stats.add(&stats.requests_delayed, 1);
            }
            let mut sender = sender.lock().await;
            let sent = match sender.ready().await {
                Ok(()) => sender.send_request(request).await,
                Err(e) => Err(e),
            };
            Ok::<_, Infallible>(match sent {
                Ok(response) => response.map(BodyExt::boxed),
                Err(e) => {
                    let cause = if e.is_closed() {
                        "closed by upstream"
                    } else {
                        "http error"
                    };
                    stats.upstream_error(cause);
                    bad_gateway(cause)
                }
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(client), service);
    tokio::pin!(conn);
    let mut draining = shared.draining.clone();
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!("http connection ended: {e}");
                }
                break;
            }
            _ = draining.wait_for(|d| *d), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    upstream_task.abort();
}

/// Which requests are delayed, in words (for the plan).
pub fn describe(rules: &HttpRules) -> String {
    let methods = if rules.methods.is_empty() {
        "any method".to_owned()
    } else {
        rules.methods.join("|")
    };
    let paths = if rules.endpoints.is_empty() {
        "any path".to_owned()
    } else {
        rules.endpoints.join(", ")
    };
    format!("{methods} on {paths}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        let table = [
            ("/v1/webhooks/stripe", "/v1/webhooks/stripe", true),
            ("/v1/webhooks/stripe", "/v1/webhooks/stripe/events", true),
            ("/v1/webhooks/stripe", "/v1/webhooks/stripe?x=1", true),
            ("/v1/webhooks/stripe", "/v1/webhooks/stripex", false),
            ("/v1/webhooks/", "/v1/webhooks/paypal", true),
            ("/v1/webhooks/stripe", "/health", false),
            ("/", "/anything", true),
        ];
        for (prefix, path, expected) in table {
            assert_eq!(prefix_matches(prefix, path), expected, "{prefix} vs {path}");
        }
    }

    #[test]
    fn methods_narrow_the_match() {
        let rules = HttpRules {
            endpoints: vec!["/v1/webhooks/stripe".into()],
            methods: vec!["POST".into()],
        };
        assert!(rules.matches(&Method::POST, "/v1/webhooks/stripe"));
        assert!(!rules.matches(&Method::GET, "/v1/webhooks/stripe"));
        assert!(!rules.matches(&Method::POST, "/health"));
        let any = HttpRules {
            endpoints: vec![],
            methods: vec![],
        };
        assert!(any.matches(&Method::DELETE, "/x"));
    }
}
