//! Kubernetes Events (events.k8s.io/v1) recording what a run did, named
//! `chaos-<tool>-<run id>-<n>` so they can be found; `kubectl get events` lists them.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::chrono::{DateTime, Utc};
use kube::api::{Api, PostParams};

use super::Connection;
use super::retry::{ThrottleCount, classify, retry};
use crate::error::Result;

/// One event about `regarding`.
#[derive(Debug, Clone)]
pub struct ChaosEvent {
    pub tool: &'static str,
    pub run_id: String,
    /// 1-based sequence number within the run.
    pub index: usize,
    pub regarding: ObjectReference,
    /// CamelCase reason, e.g. `ChaosPodKilled`.
    pub reason: String,
    /// What happened, including the run id.
    pub note: String,
    /// What was done, e.g. `Delete`.
    pub action: String,
}

pub fn micro_time(time: SystemTime) -> MicroTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    MicroTime(DateTime::<Utc>::from_timestamp(secs, since.subsec_nanos()).unwrap_or_default())
}

/// The Event object for `event` (pure, for tests and dry runs).
pub fn build(event: &ChaosEvent, namespace: &str, now: SystemTime) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "chaos-{}-{}-{}",
                event.tool, event.run_id, event.index
            )),
            namespace: Some(namespace.to_owned()),
            labels: Some([("chaos-tools/run-id".to_owned(), event.run_id.clone())].into()),
            ..Default::default()
        },
        event_time: Some(micro_time(now)),
        reason: Some(event.reason.clone()),
        note: Some(event.note.clone()),
        action: Some(event.action.clone()),
        type_: Some("Normal".into()),
        reporting_controller: Some(format!("chaos-tools/{}", event.tool)),
        reporting_instance: Some(format!("{}-{}", event.tool, event.run_id)),
        regarding: Some(event.regarding.clone()),
        ..Default::default()
    }
}

/// Creates the Event (retrying while throttled, for at most `budget`); returns its name.
pub async fn record(
    conn: &Connection,
    namespace: &str,
    event: &ChaosEvent,
    budget: std::time::Duration,
    count: &ThrottleCount,
) -> Result<String> {
    let api: Api<Event> = Api::namespaced(conn.client.clone(), namespace);
    let object = build(event, namespace, SystemTime::now());
    let what = format!("create Event in namespace {namespace}");
    let created = retry(&what, budget, count, || async {
        api.create(&PostParams::default(), &object)
            .await
            .map_err(|e| classify(e, "create", "events.events.k8s.io", namespace, conn))
    })
    .await?;
    Ok(created.metadata.name.unwrap_or_default())
}
