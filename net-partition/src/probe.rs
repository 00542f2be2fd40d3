//! `--probe HOST:PORT`: the time a TCP connect takes, before apply, every second during
//! the partition and after revert, so the report shows the cut and the recovery.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Longer than any healthy connect, short enough to fit one probe in each 1 s sample.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// `--probe HOST:PORT`, checked; the address is filled in by the fault's resolve step.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeTarget {
    /// As given.
    pub text: String,
    pub host: String,
    pub port: u16,
    pub addr: Option<SocketAddr>,
}

/// Parses `HOST:PORT` (`[v6]:PORT` for IPv6 literals) without touching the network; the
/// error says what is wrong, without the flag name. An IP literal is resolved at once.
pub fn parse_probe(text: &str) -> Result<ProbeTarget, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("'{text}': port must be 1-65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{text}': missing host"));
    }
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => Some(SocketAddr::new(ip, port)),
        Err(_) => {
            crate::target::check_host_name(host)?;
            None
        }
    };
    Ok(ProbeTarget {
        text: text.to_owned(),
        host: host.to_owned(),
        port,
        addr,
    })
}

/// Resolves the probe's host name (the first address the resolver returns).
pub async fn resolve_probe(target: &mut ProbeTarget) -> Result<SocketAddr, String> {
    if let Some(addr) = target.addr {
        return Ok(addr);
    }
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot resolve '{}': {e}", target.host))?
        .next()
        .ok_or_else(|| format!("'{}' resolved to no address", target.host))?;
    target.addr = Some(addr);
    Ok(addr)
}

/// One connect attempt.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSample {
    /// Milliseconds since apply (absent for the before and after probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_ms: Option<u64>,
    pub ok: bool,
    /// Connect time; for a failure, how long it took to fail.
    pub connect_ms: f64,
    /// `timeout`, `refused`, or the OS error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Connects to `addr` and closes at once. Cancel-safe: dropping it drops the socket.
pub async fn probe(addr: SocketAddr, t_ms: Option<u64>) -> ProbeSample {
    let started = Instant::now();
    let result = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await;
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let error = match result {
        Ok(Ok(_stream)) => None,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some("refused".to_owned())
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(_elapsed) => Some("timeout".to_owned()),
    };
    ProbeSample {
        t_ms,
        ok: error.is_none(),
        connect_ms,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_probe_targets_and_resolves_names_later() {
        assert_eq!(
            parse_probe("198.51.100.2:8080").unwrap().addr,
            Some(SocketAddr::from(([198, 51, 100, 2], 8080)))
        );
        assert_eq!(
            parse_probe("[::1]:80").unwrap().addr.map(|a| a.port()),
            Some(80)
        );
        let mut local = parse_probe("localhost:443").unwrap();
        assert_eq!(local.addr, None);
        assert_eq!(resolve_probe(&mut local).await.unwrap().port(), 443);
        let mut missing = parse_probe("no-such-host.invalid:80").unwrap();
        assert!(resolve_probe(&mut missing).await.is_err());
        for bad in [
            "198.51.100.2",
            "198.51.100.2:0",
            "198.51.100.2:65536",
            ":80",
            "0x7f.1:80",
        ] {
            assert!(parse_probe(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn probe_reports_success_and_refusal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let ok = probe(addr, Some(5)).await;
        assert!(ok.ok, "{ok:?}");
        assert_eq!(ok.t_ms, Some(5));
        drop(listener);
        let refused = probe(addr, None).await;
        assert_eq!(refused.error.as_deref(), Some("refused"));
    }
}
