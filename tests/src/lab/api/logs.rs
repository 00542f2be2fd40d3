//! `pods/log` and `pods/attach` from the container log files (`lab/logs.rs`):
//! `container`, `previous`, `sinceSeconds`, `sinceTime`, `timestamps`, `tailLines`,
//! `limitBytes`, and `follow` (the response streams new records until that container
//! instance ends). Attach streams the records written from now on, stdout on channel 1
//! and stderr on channel 2.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::{Bytes, Frame};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use k8s_openapi::chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::http::Body;
use crate::lab::clock;
use crate::lab::logs::{self, LogQuery, Record};
use crate::lab::pod::PodShared;
use crate::lab::stream::protocol::{self, Protocol};

const POLL: Duration = Duration::from_millis(100);

/// The instance whose log is read: (file, number).
fn instance(pod: &PodShared, container: &str, previous: bool) -> ApiResult<(PathBuf, u32)> {
    let count = pod
        .lock()
        .containers
        .get(container)
        .map(|s| u32::try_from(s.status.restart_count).unwrap_or(0))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container {container} is not valid for pod {}",
                pod.name
            ))
        })?;
    let n = if previous {
        count.checked_sub(1).ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{}\" not found",
                pod.name
            ))
        })?
    } else {
        count
    };
    Ok((logs::log_path(&pod.dir, container, n), n))
}

/// Whether instance `n` of `container` has ended (or was replaced).
fn ended(pod: &PodShared, container: &str, n: u32) -> bool {
    let state = pod.lock();
    let Some(slot) = state.containers.get(container) else {
        return true;
    };
    u32::try_from(slot.status.restart_count).unwrap_or(0) != n
        || slot.pid.is_none()
        || state.terminating && slot.pid.is_none()
}

fn query_of(q: &HashMap<String, String>) -> ApiResult<LogQuery> {
    let number = |k: &str| -> ApiResult<Option<i64>> {
        q.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("{k} must be a number")))
            })
            .transpose()
    };
    let since = match (number("sinceSeconds")?, q.get("sinceTime")) {
        (Some(s), _) => Some(clock::now() - k8s_openapi::chrono::Duration::seconds(s.max(0))),
        (None, Some(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| ApiError::bad_request("sinceTime must be RFC 3339"))?
                .with_timezone(&Utc),
        ),
        (None, None) => None,
    };
    Ok(LogQuery {
        since,
        tail_lines: number("tailLines")?.map(|n| usize::try_from(n.max(0)).unwrap_or(0)),
        timestamps: q.get("timestamps").is_some_and(|v| v == "true"),
        limit_bytes: number("limitBytes")?.map(|n| usize::try_from(n.max(0)).unwrap_or(0)),
    })
}

pub fn respond(
    pod: Arc<PodShared>,
    container: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let query = query_of(q)?;
    let previous = q.get("previous").is_some_and(|v| v == "true");
    let (path, n) = instance(&pod, container, previous)?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let head = logs::render(&text, &query);
    let follow = q.get("follow").is_some_and(|v| v == "true") && !previous;
    let body: Body = if follow {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let container = container.to_owned();
        let timestamps = query.timestamps;
        let offset = text.len() as u64;
        tokio::spawn(async move {
            if tx.send(Bytes::from(head)).await.is_err() {
                return;
            }
            tail(
                path,
                offset,
                |r| {
                    let tx = tx.clone();
                    async move {
                        tx.send(Bytes::from(logs::render_one(&r, timestamps)))
                            .await
                            .is_ok()
                    }
                },
                || ended(&pod, &container, n),
            )
            .await;
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        BodyExt::boxed(StreamBody::new(stream))
    } else {
        crate::kube_server::http::respond::full(head)
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Calls `each` for every record appended to `path` after `offset`, until `done()` and
/// nothing more to read, or until `each` returns false.
async fn tail<F, Fut>(path: PathBuf, mut offset: u64, each: F, done: impl Fn() -> bool)
where
    F: Fn(Record) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut partial = String::new();
    loop {
        let finished = done();
        let mut chunk = String::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                if let Ok(n) = f.read_to_string(&mut chunk) {
                    offset += n as u64;
                }
            }
        }
        partial.push_str(&chunk);
        while let Some(i) = partial.find('\n') {
            let line: String = partial.drain(..=i).collect();
            if let Some(r) = logs::parse_record(line.trim_end_matches('\n')) {
                if !each(r).await {
                    return;
                }
            }
        }
        if finished && chunk.is_empty() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Streams the container's output from now on over the websocket, until it ends.
pub async fn attach<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    pod: Arc<PodShared>,
    container: String,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _ = protocol;
    let Ok((path, n)) = instance(&pod, &container, false) else {
        return;
    };
    let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (sink, mut incoming) = ws.split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let gone = gone.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = incoming.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
            gone.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    {
        let sink = sink.clone();
        let gone = gone.clone();
        tail(
            path,
            offset,
            move |r| {
                let sink = sink.clone();
                async move {
                    let channel = if r.stream == "stderr" {
                        protocol::STDERR
                    } else {
                        protocol::STDOUT
                    };
                    let data = format!("{}\n", r.text);
                    let frame = protocol::frame(channel, data.as_bytes());
                    sink.lock()
                        .await
                        .send(Message::Binary(frame.into()))
                        .await
                        .is_ok()
                }
            },
            || ended(&pod, &container, n) || gone.load(std::sync::atomic::Ordering::Relaxed),
        )
        .await;
    }
    watcher.abort();
    let status = protocol::exit_status(&[], 0).to_string();
    let mut sink = sink.lock().await;
    let _ = sink
        .send(Message::Binary(
            protocol::frame(protocol::ERROR, status.as_bytes()).into(),
        ))
        .await;
    let _ = sink.send(crate::lab::stream::session::normal_close()).await;
}
