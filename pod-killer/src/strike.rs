//! One kill: a DELETE with a grace period, or an eviction that honours
//! PodDisruptionBudgets, both with the victim's UID as a precondition (a StatefulSet's
//! replacement has the same name: it must not be killed by a stale request).
//!
//! A 429 is one of two things, told apart by the Status: an eviction refused by a
//! PodDisruptionBudget (a `DisruptionBudget` cause) is the outcome "blocked by PDB
//! `<name>`"; any other 429 is API Priority and Fairness throttling, retried after
//! `Retry-After`. Sent raw because kube-rs's typed calls drop the causes and the header.

use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::kube::retry::{self, Answer, Failure, ThrottleCount};
use chaos_common::kube::{Connection, api_error};
use kube::api::{DeleteParams, PostParams, Preconditions};
use serde_json::json;

use crate::settings::Method;

/// How long a throttled kill keeps retrying.
const THROTTLE_BUDGET: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub enum Struck {
    /// The API server accepted the deletion.
    Accepted,
    /// The eviction was refused by this PodDisruptionBudget.
    BlockedByPdb(String),
    /// The pod was already gone, or replaced (another UID): nothing deleted.
    Vanished(String),
}

/// The victim: its namespace, name and UID.
#[derive(Debug, Clone, Copy)]
pub struct Victim<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

pub async fn strike(
    conn: &Connection,
    victim: Victim<'_>,
    method: Method,
    grace: u32,
    count: &ThrottleCount,
) -> chaos_common::Result<Struck> {
    let what = format!(
        "{} pod {} in namespace {}",
        method.verb(),
        victim.name,
        victim.namespace
    );
    retry::retry(&what, THROTTLE_BUDGET, count, || async {
        let request = request(victim, method, grace).map_err(Failure::Fatal)?;
        let answer = retry::send(conn, request).await.map_err(|e| {
            Failure::Fatal(api_error(
                e,
                method.verb(),
                resource(method),
                victim.namespace,
                conn,
            ))
        })?;
        classify(answer, victim, method, conn)
    })
    .await
}

fn resource(method: Method) -> &'static str {
    match method {
        Method::Delete => "pods",
        Method::Evict => "pods/eviction",
    }
}

fn request(
    victim: Victim<'_>,
    method: Method,
    grace: u32,
) -> chaos_common::Result<http::Request<Vec<u8>>> {
    let pods = kube::core::Request::new(format!("/api/v1/namespaces/{}/pods", victim.namespace));
    let preconditions = Preconditions {
        uid: Some(victim.uid.to_owned()),
        resource_version: None,
    };
    let built = match method {
        Method::Delete => {
            let params = DeleteParams {
                grace_period_seconds: Some(grace),
                preconditions: Some(preconditions),
                ..Default::default()
            };
            pods.delete(victim.name, &params)
        }
        Method::Evict => {
            // kube's own eviction body spells `delete_options`, which the API server
            // ignores: the grace period and the precondition would be lost.
            let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": victim.name, "namespace": victim.namespace},
                "deleteOptions": {"gracePeriodSeconds": grace, "preconditions": {"uid": victim.uid}}});
            pods.create_subresource(
                "eviction",
                victim.name,
                &PostParams::default(),
                body.to_string().into_bytes(),
            )
        }
    };
    built.map_err(|e| {
        ChaosError::fault(format!(
            "cannot build the request for pod {}: {e}",
            victim.name
        ))
    })
}

fn classify(
    answer: Answer,
    victim: Victim<'_>,
    method: Method,
    conn: &Connection,
) -> Result<Struck, Failure> {
    match answer.code {
        200..=299 => Ok(Struck::Accepted),
        404 => Ok(Struck::Vanished(format!(
            "pod {} was already gone",
            victim.name
        ))),
        409 => Ok(Struck::Vanished(format!(
            "pod {} was replaced (UID changed) before the request reached it: {}",
            victim.name,
            answer.message()
        ))),
        429 if method == Method::Evict && answer.disruption_budget().is_some() => {
            let cause = answer.disruption_budget().unwrap_or_default();
            Ok(Struck::BlockedByPdb(pdb_name(&cause).unwrap_or(cause)))
        }
        429 => Err(Failure::Throttled {
            retry_after: answer.retry_after,
            message: answer.message(),
        }),
        _ => Err(Failure::Fatal(api_error(
            answer.into_error(),
            method.verb(),
            resource(method),
            victim.namespace,
            conn,
        ))),
    }
}

/// The PDB named in a DisruptionBudget cause: "The disruption budget NAME needs ...".
pub fn pdb_name(cause: &str) -> Option<String> {
    let rest = cause.strip_prefix("The disruption budget ")?;
    rest.split_whitespace().next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdb_name_comes_from_the_disruption_budget_cause() {
        let cause =
            "The disruption budget product-service-pdb needs 1 healthy pods and has 1 currently";
        assert_eq!(pdb_name(cause).as_deref(), Some("product-service-pdb"));
        assert_eq!(pdb_name("something else"), None);
    }
}
