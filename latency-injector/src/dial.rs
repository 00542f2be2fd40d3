//! Dialling the upstream of a connection: where it goes (a fixed address, the original
//! destination of a redirected connection, the application from the client's own
//! address), and the short causes failures are counted under.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::sockets;

/// Where a connection goes.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The addresses `--upstream` resolved to, tried in order.
    Fixed(Vec<SocketAddr>),
    /// Transparent egress: the connection's original destination (SO_ORIGINAL_DST),
    /// dialled with this socket mark so the redirect rule lets it through.
    OriginalDst { mark: u32 },
    /// Transparent ingress: the application on 127.0.0.1:`port`, dialled from the
    /// client's own address when `preserve_source`.
    App { port: u16, preserve_source: bool },
}

const BASELINE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The cause of a descriptor shortage (EMFILE, ENFILE): a local limit, not a peer's fault.
pub const OPEN_FILES: &str = "open-files limit";

/// A short, stable cause for the report.
pub fn cause(e: &io::Error) -> &'static str {
    if matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE)
    ) {
        return OPEN_FILES;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset",
        io::ErrorKind::BrokenPipe => "broken pipe",
        io::ErrorKind::TimedOut => "timed out",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::AddrInUse => "address in use",
        io::ErrorKind::PermissionDenied => "permission denied",
        _ => "other",
    }
}

pub type Connected = Result<TcpStream, (SocketAddr, io::Error)>;

/// Connects to the first of `addrs` that answers within 5 s (the baseline's probe).
pub async fn connect_first(addrs: &[SocketAddr]) -> Connected {
    let mut last = None;
    for &addr in addrs {
        match tokio::time::timeout(BASELINE_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some((addr, e)),
            Err(_) => last = Some((addr, io::Error::from(io::ErrorKind::TimedOut))),
        }
    }
    Err(last.unwrap_or_else(|| {
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        (
            none,
            io::Error::new(io::ErrorKind::AddrNotAvailable, "no upstream address"),
        )
    }))
}

fn not_redirected(at: SocketAddr) -> (SocketAddr, io::Error) {
    let e = io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        "not a redirected connection",
    );
    (at, e)
}

/// Dials the upstream of `client`. No timeout of its own: the kernel's SYN retries
/// decide, as they would for the client direct (the drain still bounds it at the end).
pub async fn connect(client: &TcpStream, peer: SocketAddr, upstream: &Upstream) -> Connected {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    match upstream {
        Upstream::Fixed(addrs) => {
            let mut last = not_redirected(unknown);
            for &addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = (addr, e),
                }
            }
            Err(last)
        }
        Upstream::OriginalDst { mark } => {
            let target = sockets::original_dst(client).map_err(|e| (unknown, e))?;
            // A client that connected to the proxy's port itself: refused, or the proxy
            // would connect to itself.
            if client.local_addr().ok() == Some(target) {
                return Err(not_redirected(target));
            }
            sockets::connect_marked(target, *mark)
                .await
                .map_err(|e| (target, e))
        }
        Upstream::App {
            port,
            preserve_source,
        } => {
            let local = client.local_addr().map_err(|e| (unknown, e))?;
            let app = SocketAddr::from(([127, 0, 0, 1], *port));
            if local.port() != *port {
                return Err(not_redirected(local));
            }
            let connected = if *preserve_source {
                sockets::connect_as(peer, app).await
            } else {
                TcpStream::connect(app).await
            };
            connected.map_err(|e| (app, e))
        }
    }
}
