//! A small Redis client (RESP2: GET, SETEX, PING) with a per-command deadline, a few
//! kept connections, and a circuit breaker the well-behaved services use: after a
//! failure, Redis is skipped for a while, so that a slow or dead Redis costs one
//! timeout per breaker period instead of one per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// How many idle connections are kept.
const KEEP: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
}

pub struct Redis {
    authority: String,
    timeout: Duration,
    idle: Mutex<Vec<BufStream<TcpStream>>>,
    open_until: Mutex<Option<Instant>>,
}

/// `*N\r\n$len\r\narg\r\n…`
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Redis {
    pub fn new(authority: String, timeout: Duration) -> Redis {
        Redis {
            authority,
            timeout,
            idle: Mutex::new(Vec::new()),
            open_until: Mutex::new(None),
        }
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether the breaker is open (Redis is being skipped).
    pub fn skipping(&self) -> bool {
        self.open_until
            .lock()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| Instant::now() < t)
    }

    /// Opens the breaker for `period`.
    pub fn trip(&self, period: Duration) {
        if let Ok(mut g) = self.open_until.lock() {
            *g = Some(Instant::now() + period);
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.command(&[b"GET", key.as_bytes()]).await? {
            Resp::Bulk(v) => Ok(v),
            other => Err(format!("unexpected reply to GET: {other:?}")),
        }
    }

    pub async fn setex(&self, key: &str, seconds: u64, value: &[u8]) -> Result<(), String> {
        let secs = seconds.to_string();
        match self
            .command(&[b"SETEX", key.as_bytes(), secs.as_bytes(), value])
            .await?
        {
            Resp::Simple(_) => Ok(()),
            other => Err(format!("unexpected reply to SETEX: {other:?}")),
        }
    }

    pub async fn ping(&self) -> Result<(), String> {
        match self.command(&[b"PING"]).await? {
            Resp::Simple(s) if s == "PONG" => Ok(()),
            other => Err(format!("unexpected reply to PING: {other:?}")),
        }
    }

    /// One command within the deadline; a connection that failed is not kept.
    pub async fn command(&self, args: &[&[u8]]) -> Result<Resp, String> {
        let work = async {
            let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
            let mut conn = match pooled {
                Some(c) => c,
                None => {
                    let s = TcpStream::connect(&self.authority)
                        .await
                        .map_err(|e| format!("connect {}: {e}", self.authority))?;
                    let _ = s.set_nodelay(true);
                    BufStream::new(s)
                }
            };
            conn.write_all(&encode(args))
                .await
                .map_err(|e| e.to_string())?;
            conn.flush().await.map_err(|e| e.to_string())?;
            let reply = read_reply(&mut conn).await?;
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < KEEP {
                    idle.push(conn);
                }
            }
            Ok(reply)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(Resp::Error(e))) => Err(format!("redis error: {e}")),
            Ok(result) => result,
            Err(_) => Err(format!(
                "no reply from {} within {} ms",
                self.authority,
                self.timeout.as_millis()
            )),
        }
    }
}

async fn read_reply(conn: &mut BufStream<TcpStream>) -> Result<Resp, String> {
    let mut line = String::new();
    let n = conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed by redis".to_owned());
    }
    parse_line(&line, conn).await
}

async fn parse_line(line: &str, conn: &mut BufStream<TcpStream>) -> Result<Resp, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(rest.parse().map_err(|_| format!("bad integer {rest:?}"))?),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| format!("bad length {rest:?}"))?;
            if len < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0) + 2];
                conn.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                buf.truncate(buf.len() - 2);
                Resp::Bulk(Some(buf))
            }
        }
        _ => return Err(format!("unexpected RESP line {line:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&[b"SETEX", b"k", b"30", b"v"]),
            b"*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$2\r\n30\r\n$1\r\nv\r\n".to_vec()
        );
    }

    #[test]
    fn the_breaker_opens_for_its_period() {
        let r = Redis::new("redis:6379".into(), Duration::from_millis(100));
        assert!(!r.skipping());
        r.trip(Duration::from_secs(60));
        assert!(r.skipping());
        r.trip(Duration::ZERO);
        assert!(!r.skipping());
    }
}
