//! Subresources are handlers looked up by (resource, name): the built-in `status`,
//! `scale`, `eviction` and `token`, and whatever the lab adds (`exec`, `log`, `attach`,
//! `ephemeralcontainers`) with [`Subresources::add`]. A handler gets the whole request,
//! so it can upgrade the connection (websockets) when it needs to.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{Body, Context, Server, respond};
use crate::kube_server::api::Part;
use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::handlers::{eviction, review, scale, token};
use crate::kube_server::registry::{
    DEPLOYMENTS, GroupResource, PODS, REPLICA_SETS, SERVICE_ACCOUNTS, STATEFUL_SETS,
};

pub type Handler = Arc<
    dyn Fn(Arc<Server>, Context, Request<Incoming>) -> BoxFuture<'static, ApiResult<Response<Body>>>
        + Send
        + Sync,
>;

#[derive(Default)]
pub struct Subresources {
    handlers: HashMap<(GroupResource, String), Handler>,
}

impl std::fmt::Debug for Subresources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self
            .handlers
            .keys()
            .map(|(gr, n)| format!("{gr}/{n}"))
            .collect();
        names.sort();
        f.debug_list().entries(names).finish()
    }
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Arc<Server>, Context, Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ApiResult<Response<Body>>> + Send + 'static,
{
    Arc::new(move |server, ctx, req| Box::pin(f(server, ctx, req)))
}

impl Subresources {
    /// The subresources every test server has.
    pub fn builtin() -> Subresources {
        let mut s = Subresources::default();
        for gr in [
            PODS,
            DEPLOYMENTS,
            REPLICA_SETS,
            STATEFUL_SETS,
            crate::kube_server::registry::PDBS,
            crate::kube_server::registry::NAMESPACES,
            crate::kube_server::registry::NODES,
        ] {
            s.add(gr, "status", handler(status));
        }
        for gr in [DEPLOYMENTS, REPLICA_SETS, STATEFUL_SETS] {
            s.add(gr, "scale", handler(scale::handle));
        }
        s.add(PODS, "eviction", handler(eviction::handle));
        s.add(SERVICE_ACCOUNTS, "token", handler(token::handle));
        s
    }

    pub fn add(&mut self, gr: GroupResource, name: &str, handler: Handler) {
        self.handlers.insert((gr, name.to_owned()), handler);
    }

    fn get(&self, gr: GroupResource, name: &str) -> Option<Handler> {
        self.handlers.get(&(gr, name.to_owned())).cloned()
    }
}

pub async fn dispatch(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let handler = server
        .subresources
        .get(ctx.resource.gr, &ctx.info.subresource)
        .ok_or_else(ApiError::no_route)?;
    handler(server, ctx, req).await
}

/// GET, PUT and PATCH of `/status`: only the status changes.
async fn status(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let (parts, bytes) = super::body::body(req).await?;
    let rt = ctx.resource;
    let (ns, name) = (ctx.info.namespace.as_str(), ctx.info.name.as_str());
    let cluster = &server.cluster;
    let object = match ctx.info.verb.as_str() {
        "get" => cluster.get(&rt, ns, name)?,
        "update" => cluster.update(&rt, ns, name, &respond::parse_body(&bytes)?, Part::Status)?,
        "patch" => {
            let kind = super::body::patch_type(&parts)?;
            cluster.patch(
                &rt,
                ns,
                name,
                kind,
                &respond::parse_body(&bytes)?,
                Part::Status,
            )?
        }
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not supported on {}/status",
                rt.gr
            )));
        }
    };
    Ok(respond::json(200, &object))
}

/// Create-only review resources (SelfSubjectAccessReview).
pub async fn review(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    if ctx.info.verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {}",
            ctx.info.verb, ctx.resource.gr
        )));
    }
    let (_, bytes) = super::body::body(req).await?;
    let reviewed =
        review::self_subject_access_review(&server, &ctx.user, &respond::parse_body(&bytes)?)?;
    Ok(respond::json(201, &reviewed))
}
