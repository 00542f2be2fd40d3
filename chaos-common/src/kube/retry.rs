//! Throttling: an API server answers 429 TooManyRequests when API Priority and Fairness
//! has no room for a request, with a `Retry-After` header; that is "try again later",
//! never a failure of the operation and never a PodDisruptionBudget refusal (which is a
//! 429 too, but on an eviction and with a `DisruptionBudget` cause). [`retry`] waits
//! `Retry-After` (else an exponential back-off) and tries again until a deadline.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::Value;
use tokio::time::Instant;
use tracing::warn;

use super::{Connection, api_error};
use crate::error::{ChaosError, Result};

/// The first wait when the server gives no Retry-After, doubled up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(8);

/// Why an attempt did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// 429 from API Priority and Fairness: wait and try again.
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Anything else: give up.
    Fatal(ChaosError),
}

/// How many throttled answers a run got (for its report).
#[derive(Debug, Default)]
pub struct ThrottleCount(AtomicU64);

impl ThrottleCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `attempt` until it succeeds, fails for good, or throttling lasts past `budget`.
pub async fn retry<T, F, Fut>(
    what: &str,
    budget: Duration,
    count: &ThrottleCount,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Failure>>,
{
    let deadline = Instant::now() + budget;
    let mut backoff = FIRST_WAIT;
    loop {
        let (retry_after, message) = match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Throttled {
                retry_after,
                message,
            }) => (retry_after, message),
        };
        count.add();
        let wait = retry_after.unwrap_or(backoff).min(MAX_WAIT * 4);
        backoff = (backoff * 2).min(MAX_WAIT);
        if Instant::now() + wait > deadline {
            return Err(ChaosError::Fault(format!(
                "{what}: the API server kept throttling the requests (429 TooManyRequests) for {} s; \
                 last answer: {message}",
                budget.as_secs()
            )));
        }
        warn!(
            "{what}: throttled by the API server ({message}); retrying in {} ms",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
    }
}

/// A kube-rs error as a [`Failure`]: 429 is throttling, the rest is mapped by [`api_error`].
pub fn classify(
    err: kube::Error,
    verb: &str,
    resource: &str,
    namespace: &str,
    conn: &Connection,
) -> Failure {
    match err {
        kube::Error::Api(status) if status.code == 429 => Failure::Throttled {
            retry_after: None,
            message: status.message,
        },
        other => Failure::Fatal(api_error(other, verb, resource, namespace, conn)),
    }
}

/// An answer read in full: the code, `Retry-After`, and the body (a Status on errors).
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    pub retry_after: Option<Duration>,
    pub body: Value,
}

impl Answer {
    /// The message of a Status body.
    pub fn message(&self) -> String {
        self.body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    /// The cause of a PodDisruptionBudget refusal, if this 429 is one.
    pub fn disruption_budget(&self) -> Option<String> {
        self.body
            .pointer("/details/causes")?
            .as_array()?
            .iter()
            .find(|c| c.get("reason").and_then(Value::as_str) == Some("DisruptionBudget"))
            .and_then(|c| c.get("message").and_then(Value::as_str))
            .map(str::to_owned)
    }

    /// This answer as a kube error (for [`api_error`]'s messages).
    pub fn into_error(self) -> kube::Error {
        let reason = self
            .body
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        kube::Error::Api(kube::core::ErrorResponse {
            status: "Failure".into(),
            message: self.message(),
            reason,
            code: self.code,
        })
    }
}

/// Sends `request` and reads the whole answer; kube-rs's typed calls drop the Status
/// causes and the headers that tell throttling from a disruption budget.
pub async fn send(
    conn: &Connection,
    request: http::Request<Vec<u8>>,
) -> std::result::Result<Answer, kube::Error> {
    let response = conn.client.send(request.map(Body::from)).await?;
    let code = response.status().as_u16();
    let header = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let from_body = body
        .pointer("/details/retryAfterSeconds")
        .and_then(Value::as_u64);
    Ok(Answer {
        code,
        retry_after: header
            .or(from_body)
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(body: Value) -> Answer {
        Answer {
            code: 429,
            retry_after: None,
            body,
        }
    }

    #[test]
    fn a_disruption_budget_429_is_told_from_throttling_by_its_cause() {
        let pdb = answer(json!({"code": 429, "reason": "TooManyRequests",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "details": {"causes": [{"reason": "DisruptionBudget",
                "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]}}));
        assert!(
            pdb.disruption_budget()
                .is_some_and(|m| m.contains("web-pdb"))
        );
        let apf = answer(json!({"code": 429, "reason": "TooManyRequests",
            "message": "Too many requests, please try again later.", "details": {"retryAfterSeconds": 1}}));
        assert_eq!(apf.disruption_budget(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_until_it_passes_or_the_budget_ends() {
        let count = ThrottleCount::default();
        let mut calls = 0;
        let result = retry("list pods", Duration::from_secs(30), &count, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(Failure::Throttled {
                        retry_after: Some(Duration::from_secs(1)),
                        message: "busy".into(),
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.ok(), Some(3));
        assert_eq!(count.get(), 2);
        let never = retry("list pods", Duration::from_secs(3), &count, || async {
            Err::<(), _>(Failure::Throttled {
                retry_after: Some(Duration::from_secs(2)),
                message: "busy".into(),
            })
        })
        .await;
        assert!(never.is_err_and(|e| e.to_string().contains("kept throttling")));
        let fatal = retry("list pods", Duration::from_secs(3), &count, || async {
            Err::<(), _>(Failure::Fatal(ChaosError::Fault("403".into())))
        })
        .await;
        assert!(fatal.is_err_and(|e| e.to_string() == "403"));
    }
}
