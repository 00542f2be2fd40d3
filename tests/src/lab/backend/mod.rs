//! The stand-in backend: one program (`lab-service`) that plays each Lomash Wood service
//! by role (`LAB_ROLE`, set by the lab's image table), so that the experiments' hypotheses
//! can be tested against behaviour that is known and documented (docs/lab.md).
//!
//! Every role serves `GET /health` (`{"status":"ok","service","pod","redis":"ok"|"degraded"}`,
//! always 200 while the process runs; `pod` is `HOSTNAME`, which replica answered) and `GET /metrics` (Prometheus text), logs JSON lines on
//! stdout (`level`, `time`, `service`, `msg`), and spends `LAB_WORK_MS` in every API
//! request. `LAB_MODE=fragile` makes a service behave badly in the documented way:
//! product-service and auth-service have no cache fallback (500 when Redis fails),
//! order-payment-service answers 500 instead of 503, writes the order before checking the
//! token, crashes (exit 1) on pool exhaustion and processes webhook events without
//! idempotency. `POST /lab/fail?ms=N` (every role but postgres) makes the process answer
//! 500 to every API request for N ms, to force an error spike mid-run (`fail.rs`).
//!
//! # Layout
//! - `config.rs`: settings from the environment; `http.rs`: server loop and client.
//! - `gateway.rs` (api-gateway), `products.rs` (product-service), `auth.rs`
//!   (auth-service, tokens), `payments.rs` (order-payment-service), `simple.rs` (the
//!   others); `database.rs` (the postgres role).
//! - `redis.rs`, `db.rs`: the cache and database clients; `metrics.rs`; `stripe.rs`: the
//!   webhook signature and the Stripe-like sender's retry schedule.
//! - `fail.rs`: the fail switch (`POST /lab/fail`).

pub mod auth;
pub mod config;
pub mod database;
pub mod db;
pub mod fail;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod payments;
pub mod products;
pub mod redis;
pub mod sender;
pub mod simple;
pub mod stripe;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use config::Config;
use database::Database;
use db::Db;
use http::{Reply, Req};
use metrics::Metrics;
use redis::Redis;

/// One running stand-in service.
pub struct Service {
    pub cfg: Config,
    pub redis: Redis,
    pub db: Db,
    pub database: Database,
    pub metrics: Metrics,
    pub notifications: std::sync::Mutex<Vec<Value>>,
    /// When the process started serving (`LAB_WARMUP_MS` counts from here).
    pub started: Instant,
    /// `POST /lab/fail?ms=N`: API requests answer 500 meanwhile.
    pub fail: fail::FailSwitch,
}

impl Service {
    pub fn new(cfg: Config) -> Result<Service> {
        let redis = Redis::new(http::authority(&cfg.redis_url)?, cfg.redis_timeout);
        let db = Db::new(
            http::authority(&cfg.database_url)?,
            cfg.db_limit,
            cfg.pool_timeout,
        );
        Ok(Service {
            cfg,
            redis,
            db,
            database: Database::default(),
            metrics: Metrics::default(),
            notifications: std::sync::Mutex::new(Vec::new()),
            started: Instant::now(),
            fail: fail::FailSwitch::default(),
        })
    }

    /// One JSON log line on stdout (what `kubectl logs` shows).
    pub fn log(&self, level: &str, msg: &str) {
        let line = json!({
            "level": level,
            "time": super::clock::now().to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Millis, true),
            "service": self.cfg.role,
            "msg": msg,
        });
        println!("{line}");
    }

    /// The role's work per API request.
    pub async fn work(&self) {
        tokio::time::sleep(self.cfg.work).await;
    }

    /// Redis for `/health`: "ok" or "degraded" (Redis is optional for every role).
    async fn redis_health(&self) -> &'static str {
        if self.redis.skipping() {
            return "degraded";
        }
        match self.redis.ping().await {
            Ok(()) => "ok",
            Err(_) => "degraded",
        }
    }
}

/// Serves the role on `0.0.0.0:PORT` until the process ends.
pub async fn run(cfg: Config) -> Result<()> {
    let port = cfg.port;
    let svc = Arc::new(Service::new(cfg)?);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("cannot listen on port {port} (PORT)"))?;
    if !svc.cfg.warmup.is_zero() {
        svc.log(
            "warn",
            &format!(
                "warming up for {} ms: API requests answer 503 meanwhile, /health says ok",
                svc.cfg.warmup.as_millis()
            ),
        );
    }
    svc.log(
        "info",
        &format!(
            "{} listening on port {port}{}",
            svc.cfg.role,
            if svc.cfg.fragile {
                " (LAB_MODE=fragile)"
            } else {
                ""
            }
        ),
    );
    let handler = Arc::new(move |req: Req| dispatch(svc.clone(), req));
    http::serve(listener, handler).await;
    Ok(())
}

async fn dispatch(svc: Arc<Service>, req: Req) -> Reply {
    let started = Instant::now();
    let (method, path) = (req.method.clone(), req.path.clone());
    let reply = match (req.method.clone(), req.path.as_str()) {
        (Method::GET, "/health") => health(&svc).await,
        (Method::GET, "/metrics") => metrics_reply(&svc),
        _ if svc.cfg.role == "postgres" => simple::database(&svc, req).await,
        (Method::POST, "/lab/fail") => fail::handle(&svc, &req),
        _ if svc.fail.failing(svc.started) => fail::reply(),
        _ if svc.started.elapsed() < svc.cfg.warmup => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "warming up (LAB_WARMUP_MS): not ready to serve yet",
        ),
        _ => {
            svc.work().await;
            match svc.cfg.role.as_str() {
                "api-gateway" => gateway::handle(&svc, req).await,
                "product-service" => products::handle(&svc, req).await,
                "auth-service" => auth::handle(&svc, req).await,
                "order-payment-service" => payments::handle(&svc, req).await,
                _ => simple::handle(&svc, req).await,
            }
        }
    };
    svc.metrics.observe(
        method.as_str(),
        &path,
        reply.status().as_u16(),
        started.elapsed(),
    );
    reply
}

async fn health(svc: &Service) -> Reply {
    let uses_redis = matches!(svc.cfg.role.as_str(), "product-service" | "auth-service");
    let mut body = json!({"status": "ok", "service": svc.cfg.role, "pod": svc.cfg.pod});
    if uses_redis {
        body["redis"] = json!(svc.redis_health().await);
    }
    http::json(StatusCode::OK, &body)
}

fn metrics_reply(svc: &Service) -> Reply {
    let gauges = [
        (
            "db_pool_connections_in_use",
            "Database connections in use.",
            svc.db.in_use() as f64,
        ),
        (
            "db_pool_connections_limit",
            "DATABASE_CONNECTION_LIMIT.",
            svc.db.limit() as f64,
        ),
        (
            "redis_skipped",
            "1 while Redis is skipped after a failure.",
            f64::from(u8::from(svc.redis.skipping())),
        ),
    ];
    http::text(
        StatusCode::OK,
        svc.metrics.render(&svc.cfg.role, &gauges),
        "text/plain; version=0.0.4",
    )
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    http::json(status, &json!({"error": message}))
}

pub fn not_found(req: &Req) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}", req.method, req.path),
    )
}
