//! The generic verbs on a resource: get, list and watch (see `list.rs`, `watch.rs`),
//! create, update (PUT), patch, delete and deletecollection. Query options the server
//! does not implement (`dryRun`) are refused rather than ignored.

use std::sync::Arc;

use hyper::Request;
use hyper::Response;
use hyper::body::Incoming;
use serde_json::Value;

use super::body::{body, patch_type};
use super::{Body, Context, Server, list, respond, table, watch};
use crate::kube_server::api::{DeleteOptions, Part};
use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::meta;
use crate::kube_server::select::Selector;

fn accept(parts: &hyper::http::request::Parts) -> String {
    parts
        .headers
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub async fn handle(
    server: Arc<Server>,
    ctx: Context,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    if ctx.resource.virtual_only {
        return super::subresources::review(server, ctx, req).await;
    }
    if ctx.query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request(
            "dryRun is not supported by kube-test-server",
        ));
    }
    let (parts, bytes) = body(req).await?;
    let as_table = table::wants_table(&accept(&parts));
    let rt = ctx.resource;
    let (ns, name) = (ctx.info.namespace.as_str(), ctx.info.name.as_str());
    let cluster = &server.cluster;
    let object = match ctx.info.verb.as_str() {
        "get" => {
            let object = cluster.get(&rt, ns, name)?;
            if as_table {
                let rv = cluster.store().resource_version();
                return Ok(respond::json(200, &table::table(&rt, &[object], rv, None)));
            }
            object
        }
        "list" => return list::respond(&server, &ctx, as_table).await,
        "watch" => return watch::respond(&server, &ctx, as_table).await,
        "create" => {
            let created = cluster.create(&rt, ns, &respond::parse_body(&bytes)?)?;
            return Ok(respond::json(201, &created));
        }
        "update" => cluster.update(&rt, ns, name, &respond::parse_body(&bytes)?, Part::Main)?,
        "patch" => {
            let kind = patch_type(&parts)?;
            cluster.patch(
                &rt,
                ns,
                name,
                kind,
                &respond::parse_body(&bytes)?,
                Part::Main,
            )?
        }
        "delete" => {
            let options = DeleteOptions::parse(&ctx.query, &respond::parse_body(&bytes)?);
            cluster.delete(&rt, ns, name, &options)?
        }
        "deletecollection" => delete_collection(&server, &ctx, &bytes)?,
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not supported on {}",
                rt.gr
            )));
        }
    };
    Ok(respond::json(200, &object))
}

/// DELETE on a collection: every selected object, each as a DELETE would.
fn delete_collection(server: &Server, ctx: &Context, bytes: &[u8]) -> ApiResult<Value> {
    let rt = ctx.resource;
    let selector = Selector::parse(
        ctx.query.get("labelSelector").map(String::as_str),
        ctx.query.get("fieldSelector").map(String::as_str),
        rt.gr,
    )
    .map_err(ApiError::bad_request)?;
    let options = DeleteOptions::parse(&ctx.query, &respond::parse_body(bytes)?);
    let namespace = (!ctx.info.namespace.is_empty()).then_some(ctx.info.namespace.as_str());
    let mut items = Vec::new();
    for object in server.cluster.list(&rt, namespace) {
        if selector.matches(&object) {
            let (ns, name) = (meta::namespace(&object), meta::name(&object));
            items.push(server.cluster.delete(&rt, ns, name, &options)?);
        }
    }
    Ok(
        serde_json::json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": server.cluster.store().resource_version().to_string()},
        "items": items}),
    )
}
