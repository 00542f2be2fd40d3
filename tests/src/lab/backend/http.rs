//! The HTTP plumbing of the stand-in services: a hyper server loop, small response
//! builders, and a one-request client (a fresh connection per call, with a deadline).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

pub type Body = Full<Bytes>;
pub type Reply = Response<Body>;

/// One incoming request, read whole.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `?key=value` (no percent-decoding needed for the lab's values).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

pub fn json(status: StatusCode, value: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(value.to_string())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    reply
}

pub fn text(status: StatusCode, body: String, content_type: &'static str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    reply
}

/// Serves `handler` on `listener` until the process ends.
pub async fn serve<F, Fut>(listener: TcpListener, handler: Arc<F>)
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handle_one(req, handler).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle_one<F, Fut>(req: Request<Incoming>, handler: Arc<F>) -> Reply
where
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Reply>,
{
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "unreadable body"}),
            );
        }
    };
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
    };
    handler(req).await
}

/// A response from an upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Upstream {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why an upstream call failed.
#[derive(Debug)]
pub enum CallError {
    /// Name resolution or connect failed (refused, unreachable).
    Connect(String),
    /// No complete response within the deadline.
    Timeout,
    /// The connection broke mid-request.
    Broken(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "connect failed: {e}"),
            CallError::Timeout => write!(f, "timed out"),
            CallError::Broken(e) => write!(f, "connection broken: {e}"),
        }
    }
}

/// `host:port` of an `http://host:port/...` or `postgresql://user@host:port/db` URL.
pub fn authority(url: &str) -> Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    if host_port.is_empty() {
        return Err(anyhow!("no host in URL {url:?}"));
    }
    Ok(host_port.to_owned())
}

/// One HTTP/1.1 request to `authority` within `timeout`.
pub async fn call(
    authority: &str,
    request: Request<Body>,
    timeout: Duration,
) -> Result<Upstream, CallError> {
    let work = async {
        let addr = resolve(authority)
            .await
            .map_err(|e| CallError::Connect(format!("{e:#}")))?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| CallError::Connect(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Broken(e.to_string()))?;
        tokio::spawn(conn);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| CallError::Broken(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| CallError::Broken(e.to_string()))?
            .to_bytes();
        Ok(Upstream {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(CallError::Timeout))
}

/// A request with a JSON body (or none).
pub fn request(
    method: Method,
    authority: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Request<Body>> {
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes))
        .context("cannot build the request")
}

async fn resolve(authority: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .ok_or_else(|| anyhow!("{authority} resolves to nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_of_service_and_database_urls() {
        assert_eq!(
            authority("http://auth-service:3000/x").unwrap(),
            "auth-service:3000"
        );
        assert_eq!(
            authority("postgresql://lw:secret@postgres:5432/lomash").unwrap(),
            "postgres:5432"
        );
        assert_eq!(authority("redis://redis:6379").unwrap(), "redis:6379");
        assert!(authority("http:///x").is_err());
    }
}
