//! Probes as the kubelet runs them, from the node (here: the host) to the pod's IP:
//! `httpGet` (success: a status from 200 to 399 within `timeoutSeconds`) and
//! `tcpSocket` (success: the connection opens). `exec` probes run through the pod
//! runtime (see pod.rs).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A probe's timing, with the API defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

pub fn timing(p: &Probe) -> Timing {
    let secs = |v: Option<i32>, default: i32| {
        Duration::from_secs(u64::try_from(v.unwrap_or(default)).unwrap_or(0))
    };
    let count =
        |v: Option<i32>, default: i32| u32::try_from(v.unwrap_or(default)).unwrap_or(1).max(1);
    Timing {
        initial_delay: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: count(p.success_threshold, 1),
        failure_threshold: count(p.failure_threshold, 3),
    }
}

/// A named or numbered port of `container`.
pub fn port_number(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("bad port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    }
}

/// Runs a network probe against `ip`; `Ok` on success, `Err(why)` on failure (the
/// message of the `Unhealthy` event). `None` when the probe is not a network probe.
pub async fn run_network(
    p: &Probe,
    container: &Container,
    ip: Ipv4Addr,
) -> Option<Result<(), String>> {
    let timeout = timing(p).timeout;
    if let Some(get) = &p.http_get {
        let port = match port_number(&get.port, container) {
            Ok(port) => port,
            Err(e) => return Some(Err(e)),
        };
        let path = get.path.clone().unwrap_or_else(|| "/".to_owned());
        let addr = SocketAddr::new(ip.into(), port);
        let result = tokio::time::timeout(timeout, http_get(addr, &path)).await;
        return Some(match result {
            Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
            Ok(Ok(code)) => Err(format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(e)) => Err(format!("Get \"http://{addr}{path}\": {e}")),
            Err(_) => Err(format!(
                "Get \"http://{addr}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        });
    }
    if let Some(tcp) = &p.tcp_socket {
        let port = match port_number(&tcp.port, container) {
            Ok(port) => port,
            Err(e) => return Some(Err(e)),
        };
        let addr = SocketAddr::new(ip.into(), port);
        return Some(
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial tcp {addr}: {e}")),
                Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
            },
        );
    }
    None
}

/// One `GET` with `Connection: close`; the status code.
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head).ok_or_else(|| std::io::Error::other("malformed HTTP response"))
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 503 x\r\n"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0\r\n"), None);
    }

    #[test]
    fn defaults_are_the_apis() {
        let t = timing(&Probe::default());
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
    }

    #[tokio::test]
    async fn http_probe_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for code in [200, 500] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let probe: Probe = serde_json::from_value(serde_json::json!({
            "httpGet": {"path": "/health", "port": port}
        }))
        .unwrap();
        let c = Container::default();
        let ip = Ipv4Addr::LOCALHOST;
        assert_eq!(run_network(&probe, &c, ip).await, Some(Ok(())));
        let second = run_network(&probe, &c, ip).await.unwrap();
        assert!(second.unwrap_err().contains("statuscode: 500"));
    }
}
