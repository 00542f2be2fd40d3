//! The stand-in's settings, from its environment (the container's env in the lab).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LAB_ROLE` | (required) | which service to play (see `images.rs`), or `postgres` |
//! | `PORT` | 3000 (postgres: 5432) | listening port |
//! | `LAB_MODE` | `normal` | `fragile`: behave badly in the documented way |
//! | `LAB_WORK_MS` | 15 | handler time of every API request |
//! | `LAB_WARMUP_MS` | 0 | API requests answer 503 for this long after start while `/health` says ok (a service that is Ready before it can serve; with `LAB_MODE=fragile`, the runbooks' pod-lifecycle experiments fail on it) |
//! | `REDIS_URL` | `redis://redis:6379` | the cache |
//! | `REDIS_TIMEOUT_MS` | 100 | per Redis command |
//! | `REDIS_BREAKER_MS` | 5000 | how long Redis is skipped after a failure |
//! | `DATABASE_URL` | `postgresql://lomash:lomash@postgres:5432/lomash` | the database stand-in |
//! | `DATABASE_CONNECTION_LIMIT` | 10 | pool size |
//! | `DATABASE_POOL_TIMEOUT_MS` | 2000 | wait for a pooled connection (Prisma's default is 10 s; shortened) |
//! | `LAB_DB_LATENCY_MS` | 20 | postgres role: time per query |
//! | `STRIPE_API_LATENCY_MS` | 300 | order-payment: the Stripe API call made while the order's transaction is open (with 20 connections per pod, 50 concurrent clients wait well under the pool timeout; with 2, well over it) |
//! | `AUTH_SERVICE_URL` | `http://auth-service:3000` | order-payment's token check |
//! | `AUTH_TIMEOUT_MS` | 2000 | order-payment's token check deadline |
//! | `UPSTREAM_TIMEOUT_MS` | 30000 | api-gateway's deadline per proxied request |
//! | `<SERVICE>_URL` | `http://<service>:3000` | api-gateway's upstreams (`PRODUCT_SERVICE_URL`, …) |
//! | `JWT_SECRET` | `lab-jwt-secret` | auth-service's token key |
//! | `STRIPE_WEBHOOK_SECRET` | `whsec_lab` | webhook signature key |

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};

use super::super::images::ROLES;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub role: String,
    pub port: u16,
    pub fragile: bool,
    pub work: Duration,
    pub warmup: Duration,
    pub redis_url: String,
    pub redis_timeout: Duration,
    pub redis_breaker: Duration,
    pub database_url: String,
    pub db_limit: usize,
    pub pool_timeout: Duration,
    pub db_latency: Duration,
    pub stripe_api_latency: Duration,
    pub auth_url: String,
    pub auth_timeout: Duration,
    pub upstream_timeout: Duration,
    pub jwt_secret: String,
    pub stripe_secret: String,
    /// `HOSTNAME` (the pod's name in the lab), reported by `/health`.
    pub pod: String,
    /// Every variable, for the gateway's `<SERVICE>_URL` lookups.
    pub env: BTreeMap<String, String>,
}

impl Config {
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let role = get("LAB_ROLE").unwrap_or_default().to_owned();
        if role != "postgres" && !ROLES.contains(&role.as_str()) {
            bail!(
                "LAB_ROLE must be one of {} or postgres, not {role:?}",
                ROLES.join(", ")
            );
        }
        let ms = |k: &str, default: u64| -> Result<Duration> {
            match get(k) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => v.parse().map(Duration::from_millis).map_err(|_| {
                    anyhow::anyhow!("{k} must be a number of milliseconds, not {v:?}")
                }),
            }
        };
        let mode = get("LAB_MODE").unwrap_or("normal");
        let fragile = match mode {
            "normal" => false,
            "fragile" => true,
            other => bail!("LAB_MODE must be normal or fragile, not {other:?}"),
        };
        let default_port = if role == "postgres" { 5432 } else { 3000 };
        let port = match get("PORT") {
            None => default_port,
            Some(p) => p
                .parse()
                .map_err(|_| anyhow::anyhow!("PORT must be a port number, not {p:?}"))?,
        };
        let db_limit = match get("DATABASE_CONNECTION_LIMIT") {
            None => 10,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => bail!("DATABASE_CONNECTION_LIMIT must be a positive number, not {v:?}"),
            },
        };
        let text = |k: &str, d: &str| get(k).unwrap_or(d).to_owned();
        Ok(Config {
            port,
            fragile,
            work: ms("LAB_WORK_MS", 15)?,
            warmup: ms("LAB_WARMUP_MS", 0)?,
            redis_url: text("REDIS_URL", "redis://redis:6379"),
            redis_timeout: ms("REDIS_TIMEOUT_MS", 100)?,
            redis_breaker: ms("REDIS_BREAKER_MS", 5000)?,
            database_url: text(
                "DATABASE_URL",
                "postgresql://lomash:lomash@postgres:5432/lomash",
            ),
            db_limit,
            pool_timeout: ms("DATABASE_POOL_TIMEOUT_MS", 2000)?,
            db_latency: ms("LAB_DB_LATENCY_MS", 20)?,
            stripe_api_latency: ms("STRIPE_API_LATENCY_MS", 300)?,
            auth_url: text("AUTH_SERVICE_URL", "http://auth-service:3000"),
            auth_timeout: ms("AUTH_TIMEOUT_MS", 2000)?,
            upstream_timeout: ms("UPSTREAM_TIMEOUT_MS", 30_000)?,
            jwt_secret: text("JWT_SECRET", "lab-jwt-secret"),
            stripe_secret: text("STRIPE_WEBHOOK_SECRET", "whsec_lab"),
            pod: text("HOSTNAME", ""),
            role,
            env,
        })
    }

    /// The URL of `service` for the gateway: `<SERVICE>_URL`, else `http://<service>:3000`.
    pub fn upstream(&self, service: &str) -> String {
        let key = format!("{}_URL", service.to_ascii_uppercase().replace('-', "_"));
        self.env
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("http://{service}:3000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_env(env(&[
            ("LAB_ROLE", "order-payment-service"),
            ("DATABASE_CONNECTION_LIMIT", "2"),
            ("LAB_MODE", "fragile"),
            ("PRODUCT_SERVICE_URL", "http://127.0.0.1:4000"),
        ]))
        .unwrap();
        assert_eq!((c.port, c.db_limit, c.fragile), (3000, 2, true));
        assert_eq!(c.upstream("product-service"), "http://127.0.0.1:4000");
        assert_eq!(c.upstream("auth-service"), "http://auth-service:3000");
        let pg = Config::from_env(env(&[("LAB_ROLE", "postgres")])).unwrap();
        assert_eq!(pg.port, 5432);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("LAB_ROLE", "x"),
            ("LAB_MODE", "chaotic"),
            ("DATABASE_CONNECTION_LIMIT", "0"),
            ("REDIS_TIMEOUT_MS", "soon"),
        ] {
            let mut pairs = vec![("LAB_ROLE", "product-service")];
            pairs.retain(|(key, _)| *key != k);
            pairs.push((k, v));
            let err = Config::from_env(env(&pairs)).unwrap_err().to_string();
            assert!(err.contains(k), "{k}: {err}");
        }
    }
}
