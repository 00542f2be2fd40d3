//! The Stripe-like webhook sender behind `lab-stripe`: signs each event, delivers it,
//! and retries a delivery that timed out, failed to connect or got a non-2xx answer on
//! the back-off schedule of `stripe.rs`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request};
use serde::Serialize;
use serde_json::{Value, json};

use super::http::{self, CallError};
use super::stripe;

#[derive(Debug, Clone)]
pub struct Sender {
    /// `http://host:port/v1/webhooks/stripe`.
    pub url: String,
    pub secret: String,
    /// Stripe gives up on an attempt after this long.
    pub timeout: Duration,
    pub attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
}

/// One delivery attempt, as reported.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    pub payment_intent: String,
    pub delivered: bool,
    pub attempts: Vec<Attempt>,
}

/// `(authority, path)` of an http URL.
pub fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported, not {url:?}"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        anyhow::bail!("no host in {url:?}");
    }
    Ok((authority.to_owned(), format!("/{path}")))
}

/// A Stripe event of `kind` about `intent`.
pub fn event(id: &str, kind: &str, intent: &str) -> Value {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    json!({
        "id": id, "object": "event", "type": kind, "created": created, "livemode": false,
        "data": {"object": {"id": intent, "object": "payment_intent"}}
    })
}

impl Sender {
    /// Delivers `event` until a 2xx or the attempts run out.
    pub async fn deliver(&self, event: &Value) -> anyhow::Result<Delivery> {
        let (authority, path) = split_url(&self.url)?;
        let payload = Bytes::from(event.to_string());
        let mut attempts = Vec::new();
        for n in 1..=self.attempts.max(1) {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let request = Request::builder()
                .method(Method::POST)
                .uri(&path)
                .header(hyper::header::HOST, &authority)
                .header(
                    hyper::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .header(
                    "stripe-signature",
                    stripe::signature_header(&self.secret, t, &payload),
                )
                .header(
                    hyper::header::USER_AGENT,
                    "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                )
                .body(Full::new(payload.clone()))?;
            let started = Instant::now();
            let result = http::call(&authority, request, self.timeout).await;
            let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (status, error) = match &result {
                Ok(up) => (Some(up.status.as_u16()), None),
                Err(CallError::Timeout) => (
                    None,
                    Some(format!("timed out after {} ms", self.timeout.as_millis())),
                ),
                Err(e) => (None, Some(e.to_string())),
            };
            let ok = status.is_some_and(|s| (200..300).contains(&s));
            attempts.push(Attempt {
                attempt: n,
                status,
                error,
                took_ms,
            });
            if ok {
                return Ok(self.delivery(event, true, attempts));
            }
            if n < self.attempts {
                tokio::time::sleep(stripe::retry_delay(n, self.retry_base, self.retry_max)).await;
            }
        }
        Ok(self.delivery(event, false, attempts))
    }

    fn delivery(&self, event: &Value, delivered: bool, attempts: Vec<Attempt>) -> Delivery {
        let s = |p: &str| {
            event
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Delivery {
            event_id: s("/id"),
            event_type: s("/type"),
            payment_intent: s("/data/object/id"),
            delivered,
            attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("http://203.0.113.1:3000/v1/webhooks/stripe").unwrap(),
            (
                "203.0.113.1:3000".to_owned(),
                "/v1/webhooks/stripe".to_owned()
            )
        );
        assert!(split_url("https://x/y").is_err());
        assert!(split_url("http:///y").is_err());
    }
}
