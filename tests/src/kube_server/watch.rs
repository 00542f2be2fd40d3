//! `?watch=true`: a stream of `{"type": ADDED|MODIFIED|DELETED, "object": ...}` lines
//! with increasing resourceVersions; resumes from `resourceVersion`, or starts with
//! ADDED for every current object; 410 Gone (an ERROR event) when the version is too old.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::controller::Cluster;
use super::http::{Body, Target};
use super::objects;
use super::select::Selector;
use super::store::{self, Change, Kind};

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

pub fn respond(
    cluster: &Arc<Cluster>,
    t: &Target,
    selector: Selector,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let from: Option<u64> = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (initial, live, snapshot) = {
        let s = store::lock(&cluster.store);
        let initial: Vec<Bytes> = match from {
            None => s
                .list(t.kind, t.namespace.as_deref(), &selector)
                .iter()
                .map(|o| line("ADDED", o))
                .collect(),
            Some(rv) => match s.changes_since(rv, t.kind) {
                Some(changes) => changes
                    .iter()
                    .filter(|c| wanted(c, t, &selector))
                    .map(|c| line(c.event_type, &c.object))
                    .collect(),
                None => {
                    let message =
                        format!("too old resource version: {rv} ({})", s.resource_version());
                    vec![line(
                        "ERROR",
                        &objects::status(410, "Expired", message, None),
                    )]
                }
            },
        };
        (initial, s.subscribe(), s.resource_version())
    };
    let (kind, namespace) = (t.kind, t.namespace.clone());
    tokio::spawn(async move {
        let _ = tokio::time::timeout(
            timeout,
            forward(initial, live, snapshot, kind, namespace, selector, tx),
        )
        .await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn wanted(change: &Change, t: &Target, selector: &Selector) -> bool {
    change.kind == t.kind
        && t.namespace
            .as_ref()
            .is_none_or(|ns| *ns == change.namespace)
        && selector.matches(&change.object)
}

async fn forward(
    initial: Vec<Bytes>,
    mut live: broadcast::Receiver<Arc<Change>>,
    snapshot: u64,
    kind: Kind,
    namespace: Option<String>,
    selector: Selector,
    tx: mpsc::Sender<Bytes>,
) {
    for bytes in initial {
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
    let target = Target {
        kind,
        namespace,
        name: None,
        subresource: None,
    };
    loop {
        let change = match live.recv().await {
            Ok(change) => change,
            // A watcher that fell behind is closed; clients re-list or resume, as with
            // a real API server.
            Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => {
                return;
            }
        };
        if change.rv <= snapshot || !wanted(&change, &target, &selector) {
            continue;
        }
        if tx
            .send(line(change.event_type, &change.object))
            .await
            .is_err()
        {
            return;
        }
    }
}
