//! LIST with the API server's semantics: `limit` and `continue` (a consistent snapshot
//! across pages, served from the history; an expired token is 410 with an inconsistent
//! continuation), `resourceVersion` ("" most recent, "0" any, N not older than N) and
//! `resourceVersionMatch` (`NotOlderThan`, `Exact`), validated as `ValidateListOptions`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as STANDARD;
use hyper::Response;
use serde_json::{Value, json};

use super::{Body, Context, Server, respond, table};
use crate::kube_server::errors::{ApiError, ApiResult, FieldError};
use crate::kube_server::meta;
use crate::kube_server::select::Selector;

const TOO_OLD: &str = "The resourceVersion for the provided list is too old.";
const INCONSISTENT: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// How long a read waits for a resourceVersion the store has not reached yet.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

fn encode_continue(rv: i64, namespace: &str, name: &str) -> String {
    let token =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{namespace}/{name}\u{0}")});
    STANDARD.encode(token.to_string())
}

/// (rv, namespace, name) of a continue token; rv -1 means "the latest".
fn decode_continue(token: &str) -> ApiResult<(i64, String, String)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = STANDARD.decode(token).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = value.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = value.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let (ns, name) = start
        .trim_end_matches('\u{0}')
        .split_once('/')
        .ok_or_else(bad)?;
    Ok((rv, ns.to_owned(), name.to_owned()))
}

/// `ValidateListOptions` (422 `ListOptions.meta.k8s.io "" is invalid`).
pub fn validate(ctx: &Context, watch: bool) -> ApiResult<()> {
    let q = &ctx.query;
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let mut errors = Vec::new();
    if let Some(m) = q.get("resourceVersionMatch").filter(|m| !m.is_empty()) {
        let send_initial = q.get("sendInitialEvents").is_some_and(|s| s == "true");
        if watch && !send_initial {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch",
            ));
        }
        if rv.is_empty() && !send_initial {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if q.get("continue").is_some_and(|c| !c.is_empty()) {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            errors.push(FieldError::not_supported(
                "resourceVersionMatch",
                m,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == "0" {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if !rv.is_empty() && rv.parse::<u64>().is_err() {
        return Err(ApiError::bad_request(format!(
            "invalid resource version: \"{rv}\""
        )));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", &errors))
    }
}

/// Waits (up to 3 s) until the store has reached `rv`; 504 otherwise.
pub async fn wait_for(server: &Server, rv: u64) -> ApiResult<()> {
    let mut versions = server.cluster.store().versions();
    let reached = tokio::time::timeout(FRESHNESS_WAIT, versions.wait_for(|v| *v >= rv)).await;
    if matches!(reached, Ok(Ok(_))) {
        return Ok(());
    }
    let current = server.cluster.store().resource_version();
    let mut e = ApiError::new(
        504,
        "Timeout",
        format!("Too large resource version: {rv}, current: {current}"),
    );
    e.details = Some(
        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1}),
    );
    e.retry_after = Some(1);
    Err(e)
}

/// The snapshot to list from: (objects, its resourceVersion, start after key, paged).
async fn snapshot(
    server: &Server,
    ctx: &Context,
) -> ApiResult<(Vec<Value>, u64, Option<(String, String)>, bool)> {
    let q = &ctx.query;
    let rt = ctx.resource;
    let gr = rt.stored_as();
    let namespace = (!ctx.info.namespace.is_empty()).then_some(ctx.info.namespace.as_str());
    let current = || {
        let s = server.cluster.store();
        let items: Vec<Value> = s.list(gr, namespace).into_iter().cloned().collect();
        (items, s.resource_version())
    };
    if let Some(token) = q.get("continue").filter(|c| !c.is_empty()) {
        let (rv, ns, name) = decode_continue(token)?;
        if rv < 0 {
            let (items, at) = current();
            return Ok((items, at, Some((ns, name)), true));
        }
        let rv = rv.unsigned_abs();
        let items = server.cluster.store().list_at(gr, namespace, rv);
        return match items {
            Ok(items) => Ok((items, rv, Some((ns, name)), true)),
            Err(_) => {
                let mut e = ApiError::expired(INCONSISTENT);
                e.continue_token = Some(encode_continue(-1, &ns, &name));
                Err(e)
            }
        };
    }
    let rv: Option<u64> = q.get("resourceVersion").and_then(|r| r.parse().ok());
    let exact = q.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
    match rv {
        Some(0) => {
            let (items, at) = current();
            Ok((items, at, None, false))
        }
        Some(rv) if exact => {
            wait_for(server, rv).await?;
            let items = server
                .cluster
                .store()
                .list_at(gr, namespace, rv)
                .map_err(|_| ApiError::expired(TOO_OLD))?;
            Ok((items, rv, None, true))
        }
        Some(rv) => {
            wait_for(server, rv).await?;
            let (items, at) = current();
            Ok((items, at, None, true))
        }
        None => {
            let (items, at) = current();
            Ok((items, at, None, true))
        }
    }
}

pub async fn respond(server: &Server, ctx: &Context, as_table: bool) -> ApiResult<Response<Body>> {
    validate(ctx, false)?;
    let rt = ctx.resource;
    let selector = Selector::parse(
        ctx.query.get("labelSelector").map(String::as_str),
        ctx.query.get("fieldSelector").map(String::as_str),
        rt.gr,
    )
    .map_err(ApiError::bad_request)?;
    let limit: usize = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let (items, rv, start, paged) = snapshot(server, ctx).await?;
    let mut selected: Vec<Value> = items
        .into_iter()
        .filter(|o| match &start {
            Some((ns, name)) => (meta::namespace(o), meta::name(o)) > (ns.as_str(), name.as_str()),
            None => true,
        })
        .filter(|o| selector.matches(o))
        .map(|o| crate::kube_server::api::external_form(&rt, o))
        .collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if paged && limit > 0 && selected.len() > limit {
        let remaining = selected.len() - limit;
        selected.truncate(limit);
        if let Some(last) = selected.last() {
            let token = encode_continue(
                i64::try_from(rv).unwrap_or(-1),
                meta::namespace(last),
                meta::name(last),
            );
            metadata["continue"] = token.into();
        }
        if selector.is_empty() {
            metadata["remainingItemCount"] = remaining.into();
        }
    }
    if as_table {
        let cont = metadata.get("continue").and_then(Value::as_str);
        return Ok(respond::json(200, &table::table(&rt, &selected, rv, cont)));
    }
    let doc = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
        "metadata": metadata, "items": selected});
    Ok(respond::json(200, &doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(1234, "ns", "pod-a");
        assert_eq!(
            decode_continue(&token).ok(),
            Some((1234, "ns".into(), "pod-a".into()))
        );
        assert!(decode_continue("not-a-token").is_err());
    }
}
