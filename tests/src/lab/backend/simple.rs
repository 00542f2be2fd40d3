//! The other roles: appointment-service (bookings in the database), notification-service
//! (accepts notifications), content-, customer- and analytics-service (small fixed
//! answers), and the postgres role's `POST /query`.

use hyper::{Method, StatusCode};
use serde_json::json;

use super::db::DbError;
use super::http::{self, Reply, Req};
use super::{Service, error, not_found};

/// How many notifications are kept in memory.
const KEPT: usize = 1000;

pub async fn handle(svc: &Service, req: Req) -> Reply {
    let role = svc.cfg.role.as_str();
    match (role, &req.method, req.path.as_str()) {
        ("appointment-service", &Method::POST, "/v1/appointments") => book(svc, &req).await,
        ("appointment-service", &Method::GET, "/v1/appointments") => {
            match svc.db.query(&json!({"op": "appointments.list"})).await {
                Ok(rows) => http::json(StatusCode::OK, &json!({"data": rows})),
                Err(e) => unavailable(svc, &e),
            }
        }
        ("notification-service", &Method::POST, "/v1/notifications") => {
            let body = req.json().unwrap_or_default();
            let total = match svc.notifications.lock() {
                Ok(mut list) => {
                    list.push(body);
                    if list.len() > KEPT {
                        list.remove(0);
                    }
                    list.len()
                }
                Err(_) => 0,
            };
            http::json(
                StatusCode::ACCEPTED,
                &json!({"queued": true, "kept": total}),
            )
        }
        ("notification-service", &Method::GET, "/v1/notifications") => {
            let kept = svc
                .notifications
                .lock()
                .map(|l| l.len())
                .unwrap_or_default();
            http::json(StatusCode::OK, &json!({"kept": kept}))
        }
        ("content-service", &Method::GET, p) if p.starts_with("/v1/content") => http::json(
            StatusCode::OK,
            &json!({"data": [{"slug": "about", "title": "About Lomash Wood"}, {"slug": "care", "title": "Caring for solid wood"}]}),
        ),
        ("customer-service", &Method::GET, p) if p.starts_with("/v1/customers") => http::json(
            StatusCode::OK,
            &json!({"data": [{"id": "cus_001", "name": "A. Customer"}]}),
        ),
        ("analytics-service", _, p) if p.starts_with("/v1/analytics") => {
            http::json(StatusCode::ACCEPTED, &json!({"accepted": true}))
        }
        _ => not_found(&req),
    }
}

async fn book(svc: &Service, req: &Req) -> Reply {
    let body = req.json().unwrap_or_default();
    let (Some(customer), Some(slot)) = (body["customer"].as_str(), body["slot"].as_str()) else {
        return error(StatusCode::BAD_REQUEST, "customer and slot are required");
    };
    let op = json!({"op": "appointments.insert", "customer": customer, "slot": slot});
    match svc.db.query(&op).await {
        Ok(row) => http::json(StatusCode::CREATED, &json!({"data": row})),
        Err(e) => unavailable(svc, &e),
    }
}

fn unavailable(svc: &Service, e: &DbError) -> Reply {
    svc.log("error", &e.to_string());
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "database unavailable, retry later",
    )
}

/// The postgres role: `POST /query` after the configured latency.
pub async fn database(svc: &Service, req: Req) -> Reply {
    if req.method != Method::POST || req.path != "/query" {
        return not_found(&req);
    }
    let Some(op) = req.json() else {
        return error(StatusCode::BAD_REQUEST, "the query is not JSON");
    };
    tokio::time::sleep(svc.cfg.db_latency).await;
    match svc.database.run(&op) {
        Ok(rows) => http::json(StatusCode::OK, &json!({"rows": rows})),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}
