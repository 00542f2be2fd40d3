//! product-service: `GET /v1/products` (and `/v1/products/{id}`) from the Redis cache
//! (key `products:all`, 30 s), the database on a miss.
//!
//! Redis failing (down, partitioned, slower than `REDIS_TIMEOUT_MS`): the well-behaved
//! service logs a warning, serves from the database (`X-Cache: BYPASS`) and skips Redis
//! for `REDIS_BREAKER_MS` (so a slow Redis costs one timeout per period, not one per
//! request); `LAB_MODE=fragile` answers 500 and logs the error (no fallback).

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::http::{self, Reply, Req};
use super::{Service, error, not_found};

const CACHE_KEY: &str = "products:all";
const CACHE_SECONDS: u64 = 30;

pub async fn handle(svc: &Service, req: Req) -> Reply {
    if req.method != Method::GET {
        return not_found(&req);
    }
    let id = match req.path.as_str() {
        "/v1/products" => None,
        p => match p.strip_prefix("/v1/products/") {
            Some(id) if !id.is_empty() => Some(id.to_owned()),
            _ => return not_found(&req),
        },
    };
    let (products, cache) = match catalogue(svc).await {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let mut reply = match id {
        None => http::json(
            StatusCode::OK,
            &json!({"data": products, "count": products.as_array().map_or(0, Vec::len)}),
        ),
        Some(id) => match products
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == id.as_str()))
        {
            Some(p) => http::json(StatusCode::OK, &json!({"data": p})),
            None => error(StatusCode::NOT_FOUND, &format!("product {id} not found")),
        },
    };
    reply
        .headers_mut()
        .insert("x-cache", hyper::header::HeaderValue::from_static(cache));
    reply
}

/// The catalogue and where it came from (HIT, MISS, BYPASS), or the error reply.
async fn catalogue(svc: &Service) -> Result<(Value, &'static str), Reply> {
    let mut cache = "BYPASS";
    if !svc.redis.skipping() {
        match svc.redis.get(CACHE_KEY).await {
            Ok(Some(bytes)) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    return Ok((v, "HIT"));
                }
                cache = "MISS";
            }
            Ok(None) => cache = "MISS",
            Err(e) if svc.cfg.fragile => {
                svc.log(
                    "error",
                    &format!("Unhandled error: Redis GET {CACHE_KEY} failed: {e}"),
                );
                return Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                ));
            }
            Err(e) => {
                svc.log(
                    "warn",
                    &format!("redis unavailable, serving products from the database: {e}"),
                );
                svc.redis.trip(svc.cfg.redis_breaker);
            }
        }
    }
    let products = svc
        .db
        .query(&json!({"op": "products.list"}))
        .await
        .map_err(|e| {
            svc.log("error", &format!("products query failed: {e}"));
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "products are unavailable: database error",
            )
        })?;
    if cache == "MISS" {
        if let Err(e) = svc
            .redis
            .setex(CACHE_KEY, CACHE_SECONDS, products.to_string().as_bytes())
            .await
        {
            svc.log("warn", &format!("cannot refresh the products cache: {e}"));
        }
    }
    Ok((products, cache))
}
