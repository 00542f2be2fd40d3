//! The services' side of the database: a connection pool as Prisma has one
//! (`DATABASE_CONNECTION_LIMIT` connections; a request that waits longer than the pool
//! timeout for one fails with Prisma's P2024 error), and the client of the lab's
//! database stand-in (the `postgres` role, an HTTP JSON service; see database.rs).

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::http::{self, CallError};

/// Prisma's message for an exhausted pool (error code P2024).
pub fn pool_timeout_message(limit: usize, timeout: Duration) -> String {
    format!(
        "PrismaClientKnownRequestError: Timed out fetching a new connection from the connection pool. \
         More info: http://pris.ly/d/connection-pool (Current connection pool timeout: {}, connection limit: {limit}) code=P2024",
        timeout.as_secs_f64()
    )
}

#[derive(Debug)]
pub enum DbError {
    /// No connection within the pool timeout.
    PoolTimeout { limit: usize, timeout: Duration },
    /// The database did not answer (down, partitioned, slow).
    Unavailable(String),
    /// The database answered with an error.
    Failed(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::PoolTimeout { limit, timeout } => {
                f.write_str(&pool_timeout_message(*limit, *timeout))
            }
            DbError::Unavailable(e) => write!(
                f,
                "PrismaClientInitializationError: Can't reach database server: {e}"
            ),
            DbError::Failed(e) => write!(f, "PrismaClientKnownRequestError: {e}"),
        }
    }
}

pub struct Db {
    authority: String,
    limit: usize,
    pool_timeout: Duration,
    query_timeout: Duration,
    pool: Arc<Semaphore>,
}

/// A connection taken from the pool, returned when dropped.
pub struct Conn<'a> {
    db: &'a Db,
    _permit: OwnedSemaphorePermit,
}

impl Db {
    pub fn new(authority: String, limit: usize, pool_timeout: Duration) -> Db {
        let limit = limit.max(1);
        Db {
            authority,
            limit,
            pool_timeout,
            query_timeout: Duration::from_secs(10),
            pool: Arc::new(Semaphore::new(limit)),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections in use now.
    pub fn in_use(&self) -> usize {
        self.limit - self.pool.available_permits()
    }

    /// A connection, waiting at most the pool timeout.
    pub async fn connection(&self) -> Result<Conn<'_>, DbError> {
        let permit =
            tokio::time::timeout(self.pool_timeout, self.pool.clone().acquire_owned()).await;
        match permit {
            Ok(Ok(permit)) => Ok(Conn {
                db: self,
                _permit: permit,
            }),
            _ => Err(DbError::PoolTimeout {
                limit: self.limit,
                timeout: self.pool_timeout,
            }),
        }
    }

    /// One query on a connection of its own.
    pub async fn query(&self, op: &Value) -> Result<Value, DbError> {
        self.connection().await?.query(op).await
    }
}

impl Conn<'_> {
    pub async fn query(&self, op: &Value) -> Result<Value, DbError> {
        let db = self.db;
        let request = http::request(Method::POST, &db.authority, "/query", Some(op))
            .map_err(|e| DbError::Failed(e.to_string()))?;
        match http::call(&db.authority, request, db.query_timeout).await {
            Ok(up) if up.status.is_success() => Ok(up
                .json()
                .and_then(|v| v.get("rows").cloned())
                .unwrap_or(Value::Null)),
            Ok(up) => Err(DbError::Failed(
                String::from_utf8_lossy(&up.body).into_owned(),
            )),
            Err(CallError::Timeout) => Err(DbError::Unavailable(format!(
                "{} did not answer within {:?}",
                db.authority, db.query_timeout
            ))),
            Err(e) => Err(DbError::Unavailable(format!("{} ({e})", db.authority))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_exhausted_pool_times_out_with_prismas_error() {
        let db = Db::new("127.0.0.1:9".into(), 2, Duration::from_millis(50));
        let a = db.connection().await.unwrap();
        let _b = db.connection().await.unwrap();
        assert_eq!(db.in_use(), 2);
        let err = db.connection().await.err().unwrap().to_string();
        assert!(
            err.starts_with("PrismaClientKnownRequestError: Timed out fetching a new connection"),
            "{err}"
        );
        assert!(err.contains("connection limit: 2"), "{err}");
        drop(a);
        assert!(db.connection().await.is_ok());
    }
}
