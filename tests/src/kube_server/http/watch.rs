//! WATCH as the watch cache serves it: `{"type", "object"}` lines; synthetic ADDED for
//! every object when no resourceVersion (or "0") is given; the changes after N when it
//! is; an ERROR with 410 Expired when N is older than the history (clients must relist);
//! BOOKMARK events every bookmark interval when `allowWatchBookmarks=true` (and one when
//! the watch ends); `sendInitialEvents=true` (streaming lists) closed by a bookmark with
//! `k8s.io/initial-events-end`; objects that stop or start matching the selector are sent
//! as DELETED or ADDED; `timeoutSeconds` ends the watch (else the server's default).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::{Bytes, Frame};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{Body, Context, Server, list, table};
use crate::kube_server::api::external_form;
use crate::kube_server::errors::{ApiError, ApiResult, FieldError};
use crate::kube_server::registry::ResourceType;
use crate::kube_server::select::Selector;
use crate::kube_server::store::{Change, EventType};

struct Stream {
    rt: ResourceType,
    namespace: Option<String>,
    selector: Selector,
    as_table: bool,
    bookmarks: bool,
}

impl Stream {
    fn line(&self, event_type: &str, object: &Value) -> Bytes {
        let object = if self.as_table && event_type != "ERROR" && event_type != "BOOKMARK" {
            table::table(&self.rt, std::slice::from_ref(object), 0, None)
        } else {
            object.clone()
        };
        let mut text = json!({"type": event_type, "object": object}).to_string();
        text.push('\n');
        Bytes::from(text)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut object = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(),
            "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}});
        if initial_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.line("BOOKMARK", &object)
    }

    /// The event a change is for this watch, if any (selector transitions included).
    fn event(&self, change: &Change) -> Option<Bytes> {
        if change.gr != self.rt.stored_as()
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| ns != change.namespace())
        {
            return None;
        }
        let now = self.selector.matches(&change.object);
        let before = change
            .prev
            .as_ref()
            .is_some_and(|p| self.selector.matches(p));
        let kind = match (change.event_type, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            (EventType::Deleted, true, _) => "DELETED",
            _ => return None,
        };
        Some(self.line(kind, &external_form(&self.rt, change.object.clone())))
    }
}

fn validate_streaming(ctx: &Context) -> ApiResult<()> {
    if ctx
        .query
        .get("sendInitialEvents")
        .is_none_or(|s| s != "true")
    {
        return Ok(());
    }
    let mut errors = Vec::new();
    if ctx
        .query
        .get("resourceVersionMatch")
        .is_none_or(|m| m != "NotOlderThan")
    {
        errors.push(FieldError::forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if ctx
        .query
        .get("allowWatchBookmarks")
        .is_none_or(|b| b != "true")
    {
        errors.push(FieldError::forbidden(
            "allowWatchBookmarks",
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", &errors))
    }
}

/// The first lines of the watch, the version they bring the client to, and the live
/// changes after it.
fn start(
    server: &Server,
    ctx: &Context,
    stream: &Stream,
) -> (Vec<Bytes>, u64, broadcast::Receiver<Arc<Change>>) {
    let s = server.cluster.store();
    let live = s.subscribe();
    let snapshot = s.resource_version();
    let gr = stream.rt.stored_as();
    let from: Option<u64> = ctx
        .query
        .get("resourceVersion")
        .and_then(|r| r.parse().ok());
    let streaming = ctx
        .query
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true");
    let current = |lines: &mut Vec<Bytes>| {
        for object in s.list(gr, stream.namespace.as_deref()) {
            if stream.selector.matches(object) {
                lines.push(stream.line("ADDED", &external_form(&stream.rt, object.clone())));
            }
        }
    };
    let mut lines = Vec::new();
    match from {
        _ if streaming => {
            current(&mut lines);
            lines.push(stream.bookmark(snapshot, true));
        }
        None | Some(0) => current(&mut lines),
        Some(rv) => match s.changes_since(gr, rv) {
            Ok(changes) => lines.extend(changes.iter().filter_map(|c| stream.event(c))),
            Err(too_old) => {
                server.watch.expired.fetch_add(1, Ordering::SeqCst);
                let e = ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    too_old.oldest
                ));
                lines.push(stream.line("ERROR", &e.status()));
                return (lines, u64::MAX, live);
            }
        },
    }
    (lines, snapshot, live)
}

pub async fn respond(
    server: &Arc<Server>,
    ctx: &Context,
    as_table: bool,
) -> ApiResult<Response<Body>> {
    list::validate(ctx, true)?;
    validate_streaming(ctx)?;
    let selector = Selector::parse(
        ctx.query.get("labelSelector").map(String::as_str),
        ctx.query.get("fieldSelector").map(String::as_str),
        ctx.resource.gr,
    )
    .map_err(ApiError::bad_request)?;
    if let Some(rv) = ctx
        .query
        .get("resourceVersion")
        .and_then(|r| r.parse::<u64>().ok())
    {
        list::wait_for(server, rv).await?;
    }
    let stream = Stream {
        rt: ctx.resource,
        namespace: (!ctx.info.namespace.is_empty()).then(|| ctx.info.namespace.clone()),
        selector,
        as_table,
        bookmarks: ctx
            .query
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true"),
    };
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(server.watch.default_timeout, Duration::from_secs);
    let (initial, snapshot, live) = start(server, ctx, &stream);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let server = server.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        forward(&server, stream, initial, snapshot, live, tx, deadline).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(StreamBody::new(body).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn forward(
    server: &Server,
    stream: Stream,
    initial: Vec<Bytes>,
    snapshot: u64,
    mut live: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Bytes>,
    deadline: tokio::time::Instant,
) {
    for bytes in initial {
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
    if snapshot == u64::MAX {
        return; // the ERROR event ends the watch
    }
    let mut epoch = server.watch.epoch.subscribe();
    let interval = server
        .watch
        .bookmark_interval
        .max(Duration::from_millis(10));
    let mut bookmark = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        let line = tokio::select! {
            change = live.recv() => match change {
                Ok(change) if change.rv > snapshot => stream.event(&change),
                Ok(_) => None,
                // A watcher that fell behind is closed; clients resume or relist.
                Err(_) => return,
            },
            _ = bookmark.tick(), if stream.bookmarks => Some(drain_and_mark(server, &stream, &mut live, &tx, snapshot).await),
            _ = epoch.changed() => return,
            () = tokio::time::sleep_until(deadline) => {
                if stream.bookmarks {
                    let last = drain_and_mark(server, &stream, &mut live, &tx, snapshot).await;
                    let _ = tx.send(last).await;
                }
                return;
            }
        };
        if let Some(line) = line
            && tx.send(line).await.is_err()
        {
            return;
        }
    }
}

/// Sends every change already published, then returns a bookmark at the version they
/// reach: resuming from it loses nothing for this watch.
async fn drain_and_mark(
    server: &Server,
    stream: &Stream,
    live: &mut broadcast::Receiver<Arc<Change>>,
    tx: &mpsc::Sender<Bytes>,
    snapshot: u64,
) -> Bytes {
    let rv = server.cluster.store().resource_version();
    while let Ok(change) = live.try_recv() {
        if change.rv > snapshot
            && let Some(line) = stream.event(&change)
        {
            let _ = tx.send(line).await;
        }
    }
    stream.bookmark(rv, false)
}
