//! Socket options and socket-level actions, through nix's safe wrappers (the workspace
//! denies `unsafe`): the original destination of a redirected connection
//! (SO_ORIGINAL_DST, kept by conntrack), the mark on the proxy's own outbound connections
//! (SO_MARK, which the egress rule skips), transparent sockets (IP_TRANSPARENT: the
//! ingress listener that TPROXY hands connections to, and upstream connections that keep
//! the client's address as their source), half-close (shutdown SHUT_WR) and reset
//! (SO_LINGER 0, then close).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{Shutdown, getsockopt, setsockopt, shutdown, sockopt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::conns;

/// Listen backlog: socat's 5 stalls connections for seconds under load.
pub const BACKLOG: u32 = 4096;

fn new_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
}

/// A listener on `addr`; `transparent` (IP_TRANSPARENT, needs CAP_NET_ADMIN or
/// CAP_NET_RAW) lets nftables' `tproxy` hand it connections addressed elsewhere.
pub fn listen(addr: SocketAddr, transparent: bool) -> io::Result<TcpListener> {
    let socket = new_socket(addr)?;
    socket.set_reuseaddr(true)?;
    if transparent {
        setsockopt(&socket, sockopt::IpTransparent, &true).map_err(io::Error::from)?;
    }
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Fails when this process may not make transparent sockets (no CAP_NET_ADMIN).
pub fn probe_transparent() -> io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    setsockopt(&socket, sockopt::IpTransparent, &true).map_err(io::Error::from)
}

/// Where a redirected connection was going before nftables sent it to us.
pub fn original_dst(stream: &TcpStream) -> io::Result<SocketAddr> {
    let addr = getsockopt(stream, sockopt::OriginalDst).map_err(io::Error::from)?;
    let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Ok(SocketAddr::V4(SocketAddrV4::new(
        ip,
        u16::from_be(addr.sin_port),
    )))
}

/// Connects to `addr` with the socket mark `mark` (needs CAP_NET_ADMIN).
pub async fn connect_marked(addr: SocketAddr, mark: u32) -> io::Result<TcpStream> {
    let socket = new_socket(addr)?;
    setsockopt(&socket, sockopt::Mark, &mark).map_err(io::Error::from)?;
    socket.connect(addr).await
}

/// Connects to `to` from the address `from`, which is not ours (the client's): with
/// IP_TRANSPARENT the kernel lets the socket use it. The client's own port is tried
/// first (the application then logs exactly what it would log direct); if it is taken
/// here, any port of that address.
pub async fn connect_as(from: SocketAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = new_socket(to)?;
    setsockopt(&socket, sockopt::IpTransparent, &true).map_err(io::Error::from)?;
    let socket = match socket.bind(from) {
        Ok(()) => socket,
        Err(_) => {
            let socket = new_socket(to)?;
            setsockopt(&socket, sockopt::IpTransparent, &true).map_err(io::Error::from)?;
            socket.bind(SocketAddr::new(from.ip(), 0))?;
            socket
        }
    };
    socket.connect(to).await
}

/// Half-closes `stream` (FIN): the peer reads the end, and may go on sending.
pub fn shutdown_write(stream: &TcpStream) {
    // Already shut, or the peer is gone (ENOTCONN): nothing left to close.
    let _ = shutdown(stream.as_raw_fd(), Shutdown::Write);
}

/// Makes the coming close of `stream` a reset (RST) instead of a FIN.
pub fn reset_on_close(stream: &TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // A socket already reset by its peer cannot take the option; it closes either way.
    let _ = setsockopt(stream, sockopt::Linger, &linger);
}

/// Waits (at most `limit`) until every byte written to `stream` has left it and been
/// acknowledged: a reset throws away what is still queued. The send queue is read from
/// /proc/net/tcp{,6} (nix has no safe TCP_INFO or SIOCOUTQ), only when a reset is about
/// to be delivered.
pub async fn wait_unsent(stream: &TcpStream, limit: Duration) {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let queued = tokio::task::spawn_blocking(move || conns::send_queue(local, peer))
            .await
            .ok()
            .flatten();
        if queued.is_none_or(|bytes| bytes == 0) || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
