//! Routing: discovery, list / get / watch / create / delete, the eviction subresource,
//! and `Status` errors with the API server's codes and messages.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::controller::Cluster;
use super::select::Selector;
use super::store::{self, Kind};
use super::{discovery, handlers, objects, table, watch};

pub type Body = BoxBody<Bytes, Infallible>;

/// The user every request is made as (RBAC messages name it).
pub const USER: &str = "system:serviceaccount:chaos:pod-killer";

pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

pub fn error(
    code: u16,
    reason: &str,
    message: String,
    details: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails>,
) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &objects::status(code, reason, message, details))
}

pub fn not_found(kind: Kind, name: &str) -> Response<Body> {
    let details = objects::details(kind.resource(), name, kind.group(), Vec::new());
    error(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.resource()),
        Some(details),
    )
}

/// A parsed resource request.
pub struct Target {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

fn kind_of(group: &str, resource: &str) -> Option<Kind> {
    Some(match (group, resource) {
        ("", "pods") => Kind::Pod,
        ("", "events") => Kind::Event,
        ("", "namespaces") => Kind::Namespace,
        ("apps", "deployments") => Kind::Deployment,
        ("apps", "replicasets") => Kind::ReplicaSet,
        ("events.k8s.io", "events") => Kind::EventV1,
        ("policy", "poddisruptionbudgets") => Kind::Pdb,
        _ => return None,
    })
}

fn parse_target(group: &str, rest: &[&str]) -> Option<Target> {
    let target =
        |resource: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
            kind_of(group, resource).map(|kind| Target {
                kind,
                namespace: namespace.map(str::to_owned),
                name: name.map(str::to_owned),
                subresource: sub.map(str::to_owned),
            })
        };
    match rest {
        ["namespaces", ns, resource, tail @ ..] if !resource.is_empty() => match tail {
            [] => target(resource, Some(ns), None, None),
            [name] => target(resource, Some(ns), Some(name), None),
            [name, sub] => target(resource, Some(ns), Some(name), Some(sub)),
            _ => None,
        },
        [resource] => target(resource, None, None, None),
        [resource, name] => target(resource, None, Some(name), None),
        _ => None,
    }
}

pub fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Percent-decoding for query values (`app%3Dx`, `+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn handle(
    cluster: Arc<Cluster>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    let response = match (req.method(), parts.as_slice()) {
        (&Method::GET, ["version"]) => json(StatusCode::OK, &discovery::version()),
        (&Method::GET, ["api"]) => json(StatusCode::OK, &discovery::core_versions()),
        (&Method::GET, ["apis"]) => json(StatusCode::OK, &discovery::groups()),
        (&Method::GET, ["api", v]) => discovery_or_404(discovery::resources("", v)),
        (&Method::GET, ["apis", g, v]) => discovery_or_404(discovery::resources(g, v)),
        (_, ["api", "v1", rest @ ..]) => match parse_target("", rest) {
            Some(t) => resource(&cluster, req, t).await,
            None => error(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                None,
            ),
        },
        (_, ["apis", g, "v1", rest @ ..]) => match parse_target(g, rest) {
            Some(t) => resource(&cluster, req, t).await,
            None => error(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                None,
            ),
        },
        _ => error(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            None,
        ),
    };
    Ok(response)
}

fn discovery_or_404(doc: Option<Value>) -> Response<Body> {
    match doc {
        Some(doc) => json(StatusCode::OK, &doc),
        None => error(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            None,
        ),
    }
}

fn verb_of(method: &Method, t: &Target, query: &HashMap<String, String>) -> &'static str {
    let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match *method {
        Method::GET if watching => "watch",
        Method::GET if t.name.is_some() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::DELETE => "delete",
        Method::PUT => "update",
        Method::PATCH => "patch",
        _ => "unknown",
    }
}

async fn resource(cluster: &Arc<Cluster>, req: Request<Incoming>, t: Target) -> Response<Body> {
    let query = query(&req);
    let verb = verb_of(req.method(), &t, &query);
    let accept = req
        .headers()
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let as_table = table::wants_table(accept);
    let resource_name = match &t.subresource {
        Some(sub) => format!("{}/{sub}", t.kind.resource()),
        None => t.kind.resource().to_owned(),
    };
    if let Some(ns) = &t.namespace
        && cluster
            .fixture
            .forbidden
            .iter()
            .any(|f| f.matches(ns, verb, &resource_name))
    {
        let subject = match &t.name {
            Some(name) => format!("{} \"{name}\"", t.kind.resource()),
            None => t.kind.resource().to_owned(),
        };
        let message = format!(
            "{subject} is forbidden: User \"{USER}\" cannot {verb} resource \"{resource_name}\" in API group \"{}\" in the namespace \"{ns}\"",
            t.kind.group()
        );
        let details = objects::details(
            t.kind.resource(),
            t.name.as_deref().unwrap_or(""),
            t.kind.group(),
            Vec::new(),
        );
        return error(403, "Forbidden", message, Some(details));
    }
    let selector = match Selector::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    ) {
        Ok(s) => s,
        Err(e) => return error(400, "BadRequest", e, None),
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(400, "BadRequest", format!("cannot read body: {e}"), None),
    };
    match verb {
        "watch" => watch::respond(cluster, &t, selector, &query),
        "list" => list(cluster, &t, &selector, as_table),
        "get" => get(cluster, &t, as_table),
        "create" if t.subresource.as_deref() == Some("eviction") => {
            handlers::evict(cluster, &t, &body)
        }
        "create" => handlers::create(cluster, &t, &body),
        "delete" => handlers::delete(cluster, &t, &query, &body),
        _ => error(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported by this test server"),
            None,
        ),
    }
}

fn list(cluster: &Arc<Cluster>, t: &Target, selector: &Selector, as_table: bool) -> Response<Body> {
    let s = store::lock(&cluster.store);
    let items = s.list(t.kind, t.namespace.as_deref(), selector);
    if as_table {
        return json(
            StatusCode::OK,
            &table::table(t.kind, &items, s.resource_version()),
        );
    }
    let doc = serde_json::json!({
        "kind": format!("{}List", t.kind.kind()),
        "apiVersion": t.kind.api_version(),
        "metadata": {"resourceVersion": s.resource_version().to_string()},
        "items": items,
    });
    json(StatusCode::OK, &doc)
}

fn get(cluster: &Arc<Cluster>, t: &Target, as_table: bool) -> Response<Body> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let s = store::lock(&cluster.store);
    match s.get(t.kind, ns, name) {
        Some(object) if as_table => json(
            StatusCode::OK,
            &table::table(t.kind, &[object], s.resource_version()),
        ),
        Some(object) => json(StatusCode::OK, &object),
        None => not_found(t.kind, name),
    }
}
