//! The pods subresources that reach into containers: `exec` and `attach` (websockets,
//! `stream/`), `log` (plain, or streamed with `follow`), and `ephemeralcontainers`
//! (`kubectl debug` patches it; the kubelet starts what it adds).

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::logs;
use crate::kube_server::api::patch;
use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::http::{Body, Context, Handler, Server, body, respond};
use crate::kube_server::meta;
use crate::kube_server::registry::PODS;
use crate::lab::exec;
use crate::lab::node::Node;
use crate::lab::pod::PodShared;
use crate::lab::stream::session;

/// Every `key=value` of the query, repeated keys kept (`command=sh&command=-c`).
pub fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding (and `+` as a space) of one query component.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn flag(pairs: &[(String, String)], key: &str) -> bool {
    pairs
        .iter()
        .any(|(k, v)| k == key && (v == "true" || v == "1"))
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The running pod behind a request, and the container it names (or its only one).
fn target(
    server: &Server,
    node: &Node,
    ctx: &Context,
    container: Option<&str>,
) -> ApiResult<(Arc<PodShared>, String)> {
    let (ns, name) = (ctx.info.namespace.as_str(), ctx.info.name.as_str());
    let pod = server
        .cluster
        .store()
        .get(PODS, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(PODS, name))?;
    let shared = node.pod(meta::uid(&pod)).ok_or_else(|| {
        ApiError::bad_request(format!("pod {name} is not running on the lab's node"))
    })?;
    let names: Vec<String> = shared.lock().containers.keys().cloned().collect();
    let container = match container.filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None => {
            let spec: Vec<String> = shared
                .pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
                .collect();
            match spec.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        spec.join(" ")
                    )));
                }
            }
        }
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    Ok((shared, container))
}

fn switching(headers: Vec<(hyper::header::HeaderName, String)>) -> ApiResult<Response<Body>> {
    let mut response = Response::new(respond::full(""));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in headers {
        let value = v
            .parse()
            .map_err(|_| ApiError::internal("bad upgrade header"))?;
        response.headers_mut().insert(k, value);
    }
    Ok(response)
}

async fn exec_handler(
    node: Arc<Node>,
    server: Arc<Server>,
    ctx: Context,
    mut req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let pairs = query_pairs(&req);
    let argv: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if argv.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let (pod, container) = target(&server, &node, &ctx, first(&pairs, "container"))?;
    let (protocol, headers) = session::handshake(req.headers()).map_err(ApiError::bad_request)?;
    let process = exec::spawn(&pod, &container, argv.clone())
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let stdin = flag(&pairs, "stdin");
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let ws = session::accept(TokioIo::new(upgraded)).await;
            session::run_exec(ws, protocol, process, argv, stdin).await;
        }
    });
    switching(headers)
}

async fn attach_handler(
    node: Arc<Node>,
    server: Arc<Server>,
    ctx: Context,
    mut req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let pairs = query_pairs(&req);
    let (pod, container) = target(&server, &node, &ctx, first(&pairs, "container"))?;
    if flag(&pairs, "stdin") {
        return Err(ApiError::bad_request(format!(
            "the lab does not connect stdin to container {container} (its containers have none); attach without -i"
        )));
    }
    let (protocol, headers) = session::handshake(req.headers()).map_err(ApiError::bad_request)?;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let ws = session::accept(TokioIo::new(upgraded)).await;
            logs::attach(ws, protocol, pod, container).await;
        }
    });
    switching(headers)
}

async fn log_handler(
    node: Arc<Node>,
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let pairs = query_pairs(&req);
    let query: HashMap<String, String> = pairs.iter().cloned().collect();
    let (pod, container) = target(&server, &node, &ctx, first(&pairs, "container"))?;
    logs::respond(pod, &container, &query)
}

/// `kubectl debug` (a strategic-merge PATCH), kube-rs (any patch, or PUT): only
/// `spec.ephemeralContainers` may change, and only by additions.
async fn ephemeral_handler(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let (ns, name) = (ctx.info.namespace.clone(), ctx.info.name.clone());
    let cluster = &server.cluster;
    let rt = *cluster.resource(PODS)?;
    let current = cluster.get(&rt, &ns, &name)?;
    let (parts, bytes) = body::body(req).await?;
    let wanted = match ctx.info.verb.as_str() {
        "get" => return Ok(respond::json(200, &current)),
        "patch" => patch::apply(
            body::patch_type(&parts)?,
            &current,
            &respond::parse_body(&bytes)?,
        )?,
        "update" => respond::parse_body(&bytes)?,
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not supported on pods/ephemeralcontainers"
            )));
        }
    };
    let list = wanted
        .pointer("/spec/ephemeralContainers")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    check_additions(&current, &list)?;
    let uid = meta::uid(&current).to_owned();
    let updated = cluster.modify(PODS, &ns, &name, |p| {
        if meta::uid(p) == uid {
            p["spec"]["ephemeralContainers"] = list.clone();
        }
    })?;
    Ok(respond::json(200, &updated))
}

fn check_additions(current: &Value, list: &Value) -> ApiResult<()> {
    let old = current
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new = list.as_array().cloned().unwrap_or_default();
    for o in &old {
        if !new.iter().any(|n| n == o) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "Pod \"{}\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"{}\" may not be changed",
                    meta::name(current),
                    o["name"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    let mut names: Vec<&str> = current
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for n in &new {
        let name = n["name"].as_str().unwrap_or_default();
        if name.is_empty() || n["image"].as_str().unwrap_or_default().is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                "spec.ephemeralContainers: name and image are required",
            ));
        }
        if names.contains(&name) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("spec.ephemeralContainers[{name}]: Duplicate value: \"{name}\""),
            ));
        }
        names.push(name);
    }
    Ok(())
}

/// The handlers, for `Builder::subresource`.
pub fn handlers(node: Arc<Node>) -> Vec<(&'static str, Handler)> {
    let n1 = node.clone();
    let n2 = node.clone();
    let exec: Handler = Arc::new(move |s, c, r| Box::pin(exec_handler(n1.clone(), s, c, r)));
    let attach: Handler = Arc::new(move |s, c, r| Box::pin(attach_handler(n2.clone(), s, c, r)));
    let log: Handler = Arc::new(move |s, c, r| Box::pin(log_handler(node.clone(), s, c, r)));
    let ephemeral: Handler = Arc::new(|s, c, r| Box::pin(ephemeral_handler(s, c, r)));
    vec![
        ("exec", exec),
        ("attach", attach),
        ("log", log),
        ("ephemeralcontainers", ephemeral),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_decode() {
        assert_eq!(decode("sh%20-c"), "sh -c");
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%2Fbin%2Fsh"), "/bin/sh");
    }
}
