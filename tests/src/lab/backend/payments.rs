//! order-payment-service.
//!
//! - `POST /v1/payments/create-intent` (`{"amount": pence, "currency"}`, bearer token):
//!   checks the token with auth-service first (unreachable or slower than
//!   `AUTH_TIMEOUT_MS`: 503 "authentication service unavailable", logged with the
//!   upstream and the cause; rejected: 401), then takes a pooled database connection
//!   (none within `DATABASE_POOL_TIMEOUT_MS`: 503, and Prisma's P2024
//!   `PrismaClientKnownRequestError` in the log), calls "Stripe"
//!   (`STRIPE_API_LATENCY_MS`) and writes the order as PENDING_PAYMENT: 201.
//! - `POST /v1/webhooks/stripe`: checks the `Stripe-Signature` (400 when wrong), then
//!   processes the event idempotently by event id (a redelivery answers 200 and changes
//!   nothing): `payment_intent.succeeded` -> PAID, `payment_intent.payment_failed` ->
//!   FAILED.
//! - `GET /v1/payments/orders?status=S` and `GET /v1/payments/orders/summary`: the
//!   inspection endpoints (orders by status; counts and duplicated intents).
//!
//! `LAB_MODE=fragile`: the order is written before the token is checked (partial writes
//! when auth fails), failures are 500s, an exhausted pool crashes the process (exit 1),
//! and webhook events are processed without idempotency (a redelivery duplicates the
//! order record).

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::{Method, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};

use super::db::DbError;
use super::http::{self, CallError, Reply, Req};
use super::{Service, auth, error, not_found, stripe};

pub async fn handle(svc: &Service, req: Req) -> Reply {
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/v1/payments/create-intent") => {
            if svc.cfg.fragile {
                create_intent_fragile(svc, &req).await
            } else {
                create_intent(svc, &req).await
            }
        }
        (&Method::POST, "/v1/webhooks/stripe") => webhook(svc, &req).await,
        (&Method::GET, "/v1/payments/orders") => {
            let mut op = json!({"op": "orders.list"});
            if let Some(s) = req.query_param("status") {
                op["status"] = json!(s);
            }
            inspect(svc, &op).await
        }
        (&Method::GET, "/v1/payments/orders/summary") => {
            inspect(svc, &json!({"op": "orders.summary"})).await
        }
        _ => not_found(&req),
    }
}

fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

enum AuthCheck {
    Valid(String),
    Rejected,
    Unavailable(String),
}

async fn check_token(svc: &Service, req: &Req) -> AuthCheck {
    let Some(token) = auth::bearer(req) else {
        return AuthCheck::Rejected;
    };
    let authority = match http::authority(&svc.cfg.auth_url) {
        Ok(a) => a,
        Err(e) => return AuthCheck::Unavailable(format!("{e:#}")),
    };
    let mut request = match http::request(Method::GET, &authority, "/v1/auth/verify", None) {
        Ok(r) => r,
        Err(e) => return AuthCheck::Unavailable(format!("{e:#}")),
    };
    if let Ok(v) = format!("Bearer {token}").parse() {
        request
            .headers_mut()
            .insert(hyper::header::AUTHORIZATION, v);
    }
    match http::call(&authority, request, svc.cfg.auth_timeout).await {
        Ok(up) if up.status == StatusCode::OK => AuthCheck::Valid(
            up.json()
                .and_then(|v| v["sub"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        Ok(up) if up.status == StatusCode::UNAUTHORIZED => AuthCheck::Rejected,
        Ok(up) => AuthCheck::Unavailable(format!("auth-service answered {}", up.status)),
        Err(CallError::Timeout) => AuthCheck::Unavailable(format!(
            "no answer from {} within {} ms",
            svc.cfg.auth_url,
            svc.cfg.auth_timeout.as_millis()
        )),
        Err(e) => AuthCheck::Unavailable(format!("{} {e}", svc.cfg.auth_url)),
    }
}

fn amount(req: &Req) -> Option<(u64, String)> {
    let body = req.json()?;
    let amount = body["amount"].as_u64().filter(|a| *a > 0)?;
    let currency = body["currency"].as_str().unwrap_or("gbp").to_owned();
    Some((amount, currency))
}

async fn create_intent(svc: &Service, req: &Req) -> Reply {
    let user = match check_token(svc, req).await {
        AuthCheck::Valid(sub) => sub,
        AuthCheck::Rejected => return error(StatusCode::UNAUTHORIZED, "invalid or missing token"),
        AuthCheck::Unavailable(why) => {
            svc.log(
                "error",
                &format!("token verification failed: upstream auth-service unavailable: {why}"),
            );
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication service unavailable, try again later",
            );
        }
    };
    let Some((amount, currency)) = amount(req) else {
        return error(
            StatusCode::BAD_REQUEST,
            "amount (positive integer, pence) is required",
        );
    };
    let conn = match svc.db.connection().await {
        Ok(c) => c,
        Err(e) => return db_failure(svc, &e),
    };
    tokio::time::sleep(svc.cfg.stripe_api_latency).await;
    let intent = random_id("pi");
    let op = json!({"op": "orders.insert", "paymentIntentId": intent, "amount": amount,
                    "currency": currency, "userId": user, "status": "PENDING_PAYMENT"});
    match conn.query(&op).await {
        Ok(order) => http::json(
            StatusCode::CREATED,
            &json!({"paymentIntentId": intent, "clientSecret": format!("{intent}_secret_{}", random_id("s")),
                    "orderId": order["id"], "status": "PENDING_PAYMENT"}),
        ),
        Err(e) => db_failure(svc, &e),
    }
}

async fn create_intent_fragile(svc: &Service, req: &Req) -> Reply {
    let conn = match svc.db.connection().await {
        Ok(c) => c,
        Err(e) => return db_failure(svc, &e),
    };
    tokio::time::sleep(svc.cfg.stripe_api_latency).await;
    let intent = random_id("pi");
    let (amount, currency) = amount(req).unwrap_or((0, "gbp".to_owned()));
    let op = json!({"op": "orders.insert", "paymentIntentId": intent, "amount": amount,
                    "currency": currency, "userId": "", "status": "PENDING_PAYMENT"});
    let order = match conn.query(&op).await {
        Ok(o) => o,
        Err(e) => return db_failure(svc, &e),
    };
    drop(conn);
    match check_token(svc, req).await {
        AuthCheck::Valid(_) => http::json(
            StatusCode::CREATED,
            &json!({"paymentIntentId": intent, "orderId": order["id"], "status": "PENDING_PAYMENT"}),
        ),
        AuthCheck::Rejected | AuthCheck::Unavailable(_) => {
            svc.log(
                "error",
                "Unhandled error: TypeError: Cannot read properties of undefined (reading 'sub')",
            );
            error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The answer to a database failure: 503 with the cause logged; in fragile mode a 500,
/// and an exhausted pool ends the process.
fn db_failure(svc: &Service, e: &DbError) -> Reply {
    svc.log("error", &e.to_string());
    if svc.cfg.fragile {
        if matches!(e, DbError::PoolTimeout { .. }) {
            svc.log("fatal", "unhandled rejection, exiting");
            std::process::exit(1);
        }
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    }
    let message = match e {
        DbError::PoolTimeout { .. } => "database busy: connection pool exhausted, retry later",
        _ => "database unavailable, retry later",
    };
    error(StatusCode::SERVICE_UNAVAILABLE, message)
}

async fn webhook(svc: &Service, req: &Req) -> Reply {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let signature = req.header("stripe-signature").unwrap_or_default();
    if !stripe::verify(&svc.cfg.stripe_secret, signature, &req.body, now) {
        return error(StatusCode::BAD_REQUEST, "invalid Stripe-Signature");
    }
    let Some(event) = req.json() else {
        return error(StatusCode::BAD_REQUEST, "the event is not JSON");
    };
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return error(StatusCode::BAD_REQUEST, "the event has no id or type");
    };
    let intent = event
        .pointer("/data/object/id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let op = json!({"op": "webhook.process", "eventId": id, "type": kind,
                    "paymentIntentId": intent, "dedupe": !svc.cfg.fragile});
    match svc.db.query(&op).await {
        Ok(result) => {
            if result["matched"] == false {
                svc.log(
                    "warn",
                    &format!("webhook {id} ({kind}) for unknown payment intent {intent:?}"),
                );
            }
            http::json(
                StatusCode::OK,
                &json!({"received": true, "duplicate": result["duplicate"]}),
            )
        }
        Err(e) => db_failure(svc, &e),
    }
}

async fn inspect(svc: &Service, op: &Value) -> Reply {
    match svc.db.query(op).await {
        Ok(rows) => http::json(StatusCode::OK, &json!({"data": rows})),
        Err(e) => db_failure(svc, &e),
    }
}
