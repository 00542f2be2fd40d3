//! The HTTPS front: TLS, then the filter chain of a real API server in its order
//! (authentication, API Priority and Fairness, authorization), then routing to
//! discovery, OpenAPI, the generic resource handlers and the subresource handlers.
//!
//! # Layout
//! - `request.rs`: paths and verbs. `respond.rs`: bodies and Status errors.
//! - `resource.rs`: get/create/update/patch/delete. `list.rs`, `watch.rs`: reads.
//! - `subresources.rs`: the handler table (`status`, `scale`, `eviction`, `token`, ...).
//! - `table.rs`: server-side printing. `openapi.rs`: the OpenAPI v3 documents kubectl asks for.

pub mod body;
pub mod list;
pub mod openapi;
pub mod protobuf;
pub mod request;
pub mod resource;
pub mod respond;
pub mod subresources;
pub mod table;
pub mod watch;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::api::Cluster;
use super::auth::{self, Audit, Authenticator, Decision, UserInfo};
use super::discovery;
use super::errors::{ApiError, ApiResult};
use super::registry::{self, ResourceType};
use super::throttle::Throttle;
use super::tls::Authority;
use request::RequestInfo;
pub use respond::Body;
pub use subresources::{Handler, Subresources};

/// How watches behave.
#[derive(Debug)]
pub struct WatchSettings {
    pub bookmark_interval: Duration,
    pub default_timeout: Duration,
    /// Bumped to end every open watch (a restart of the watch cache, as clients see it).
    pub epoch: tokio::sync::watch::Sender<u64>,
    /// How many watches were answered 410 Expired.
    pub expired: std::sync::atomic::AtomicU64,
}

/// Everything a request can reach.
pub struct Server {
    pub cluster: Arc<Cluster>,
    pub authn: Authenticator,
    pub audit: Audit,
    pub throttle: Throttle,
    pub watch: WatchSettings,
    pub subresources: Subresources,
    pub authority: Authority,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

/// A request past authentication and authorization.
#[derive(Debug, Clone)]
pub struct Context {
    pub info: RequestInfo,
    pub user: UserInfo,
    pub query: HashMap<String, String>,
    pub resource: ResourceType,
}

/// Serves HTTPS on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let server = server.clone();
        tokio::spawn(async move {
            let acceptor = server.authority.acceptor();
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            let service = service_fn(move |req| handle(server.clone(), peer.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await;
        });
    }
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

async fn handle(
    server: Arc<Server>,
    peer: Option<Vec<u8>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    tracing::debug!(method = %req.method(), uri = %req.uri(),
        content_type = ?req.headers().get("content-type"), accept = ?req.headers().get("accept"), "request");
    let response = match route(&server, peer.as_deref(), req).await {
        Ok(response) => response,
        Err(e) => respond::error(&e),
    };
    Ok(response)
}

async fn route(
    server: &Arc<Server>,
    peer: Option<&[u8]>,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let user = {
        let store = server.cluster.store();
        server
            .authn
            .authenticate(bearer(&req).as_deref(), peer, &store)
    }
    .ok_or_else(ApiError::unauthorized)?;
    let query = request::query(req.uri().query());
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let info = request::parse(req.method(), &path, &query);
    let resource = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    if let Some(rejection) = server.throttle.check(&user, &info.verb, &resource) {
        return Err(rejection);
    }
    authorize(server, &user, &info)?;
    if !info.resource_request {
        return non_resource(server, req.method(), &path, &req);
    }
    let resource = *server
        .cluster
        .registry
        .find(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::no_route)?;
    let ctx = Context {
        info,
        user,
        query,
        resource,
    };
    if ctx.info.subresource.is_empty() {
        resource::handle(server.clone(), ctx, req).await
    } else {
        subresources::dispatch(server.clone(), ctx, req).await
    }
}

fn authorize(server: &Server, user: &UserInfo, info: &RequestInfo) -> ApiResult<()> {
    let request = auth::Request {
        verb: info.verb.clone(),
        namespace: info.namespace.clone(),
        group: info.group.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        name: info.name.clone(),
        path: (!info.resource_request).then(|| info.path.clone()),
    };
    let decision = auth::rbac::authorize(&server.cluster.store(), user, &request);
    let allowed = matches!(decision, Decision::Allow(_));
    server.audit.record(user, &request, allowed);
    if allowed {
        return Ok(());
    }
    let mut details = serde_json::json!({"name": info.name, "kind": info.resource});
    if !info.group.is_empty() {
        details["group"] = info.group.clone().into();
    }
    Err(ApiError::new(
        403,
        "Forbidden",
        auth::rbac::forbidden_message(user, &request),
    )
    .with_details(details))
}

fn non_resource(
    server: &Server,
    method: &Method,
    path: &str,
    req: &Request<Incoming>,
) -> ApiResult<Response<Body>> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({path})"
        )));
    }
    let registry = &server.cluster.registry;
    let doc = match path {
        "/version" => discovery::version(),
        "/api" => discovery::core_versions(),
        "/apis" => registry.group_list(),
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(Response::new(respond::full("ok")));
        }
        _ if path.starts_with("/openapi") => openapi::document(registry, path, req.uri().query())?,
        _ => {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let found = match parts.as_slice() {
                ["api", v] => registry.resource_list("", v),
                ["apis", g, v] => registry.resource_list(g, v),
                ["apis", g] => group(registry, g),
                _ => None,
            };
            found.ok_or_else(ApiError::no_route)?
        }
    };
    Ok(respond::json(200, &doc))
}

fn group(registry: &registry::Registry, name: &str) -> Option<serde_json::Value> {
    registry.group_list()["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)
        .map(|g| {
            let mut g = g.clone();
            g["kind"] = "APIGroup".into();
            g["apiVersion"] = "v1".into();
            g
        })
}
