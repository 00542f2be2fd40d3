//! Socket options of the transparent modes, through nix's safe wrappers: the original
//! destination of a redirected connection (SO_ORIGINAL_DST, kept by conntrack) and the
//! mark on the proxy's own outbound connections (SO_MARK, which the redirect rule skips).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use tokio::net::{TcpSocket, TcpStream};

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
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    setsockopt(&socket, sockopt::Mark, &mark).map_err(io::Error::from)?;
    socket.connect(addr).await
}
