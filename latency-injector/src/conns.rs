//! Connections opened before the fault: redirect rules only catch new connections, so
//! established ones that match the target bypass the proxy. They are counted from
//! `/proc/net/tcp` and `/proc/net/tcp6` (this network namespace's view): the matching
//! established sockets seen BEFORE the table was created that are still there after it.
//! (A client socket redirected into the proxy still shows the original destination, so
//! counting after apply alone would count new, proxied connections too.) With
//! `--reset-existing` each of them is closed with `ss -K` (sock_destroy through
//! inet_diag, kernel option CONFIG_INET_DIAG_DESTROY) and a filter naming its exact
//! address and port pair, so clients reconnect through the proxy and nothing else is cut.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use chaos_common::{ChaosError, Result};

use crate::rules::Redirect;

/// State `01` in /proc/net/tcp.
const ESTABLISHED: &str = "01";

/// One socket line of /proc/net/tcp{,6}: (local, remote, state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub established: bool,
    /// Listed in /proc/net/tcp6 (an IPv6 socket, maybe holding a mapped IPv4 address).
    pub v6: bool,
    /// Bytes in the send queue (written, not yet acknowledged).
    pub tx_queue: u64,
}

fn parse_addr(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        // One 32-bit word in host (little-endian) order.
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr, 16).ok()?.swap_bytes(),
        )),
        // Four such words.
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parses the body of /proc/net/tcp or /proc/net/tcp6 (the header line is skipped).
pub fn parse_proc_net_tcp(text: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let local = parse_addr(fields.next()?)?;
            let remote = parse_addr(fields.next()?)?;
            let established = fields.next()? == ESTABLISHED;
            let tx_queue = fields
                .next()
                .and_then(|q| q.split_once(':'))
                .and_then(|(tx, _)| u64::from_str_radix(tx, 16).ok())
                .unwrap_or(0);
            let v6 = line.split_whitespace().nth(1).is_some_and(|f| f.len() > 20);
            Some(Socket {
                local,
                remote,
                established,
                v6,
                tx_queue,
            })
        })
        .collect()
}

/// Whether an established socket would have been caught by `redirect` had it been new.
pub fn bypasses(socket: &Socket, redirect: &Redirect) -> bool {
    if !socket.established {
        return false;
    }
    match redirect {
        Redirect::Egress { targets, port, .. } => {
            let IpAddr::V4(remote) = socket.remote.0 else {
                return false;
            };
            targets.contains(&remote) && port.is_none_or(|p| p == socket.remote.1)
        }
        Redirect::Ingress { app_port } => {
            socket.local.1 == *app_port && !socket.remote.0.is_loopback()
        }
    }
}

fn read_sockets() -> Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(path) {
            Ok(text) => sockets.extend(parse_proc_net_tcp(&text)),
            // No IPv6 in this namespace: nothing to count there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ChaosError::io("read", path, e)),
        }
    }
    Ok(sockets)
}

/// The send queue of the socket `local` -> `remote`, if it is listed.
pub fn send_queue(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let key = |a: SocketAddr| {
        let ip = match a.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        (ip, a.port())
    };
    let (local, remote) = (key(local), key(remote));
    read_sockets()
        .ok()?
        .into_iter()
        .find(|s| s.local == local && s.remote == remote)
        .map(|s| s.tx_queue)
}

/// The established sockets that match `redirect` right now.
pub fn matching(redirect: &Redirect) -> Result<Vec<Socket>> {
    Ok(read_sockets()?
        .into_iter()
        .filter(|s| bypasses(s, redirect))
        .collect())
}

/// Of the sockets seen before apply, those still established now.
pub fn still_there(before: &[Socket], redirect: &Redirect) -> Result<Vec<Socket>> {
    let now = matching(redirect)?;
    Ok(before.iter().filter(|s| now.contains(s)).cloned().collect())
}

/// The `ss -K` command that closes exactly `socket`.
///
/// An IPv4 socket, 198.51.100.1:45678 -> 198.51.100.2:6379:
/// `ss -K -t -n -4 state established src 198.51.100.1 sport = :45678 dst 198.51.100.2 dport = :6379`.
/// A socket listed in /proc/net/tcp6 is named by its ports (`-6 ... sport = :3000 dport = :51234`),
/// since ss prints mapped IPv4 addresses in a form its filters do not take back.
pub fn reset_argv(socket: &Socket) -> Vec<String> {
    let mut argv: Vec<String> = ["ss", "-K", "-t", "-n"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    argv.push(if socket.v6 { "-6" } else { "-4" }.to_owned());
    argv.extend(["state", "established"].map(str::to_owned));
    let (local, remote) = (socket.local, socket.remote);
    if !socket.v6 {
        argv.extend(["src".to_owned(), local.0.to_string()]);
    }
    argv.extend(["sport".to_owned(), "=".to_owned(), format!(":{}", local.1)]);
    if !socket.v6 {
        argv.extend(["dst".to_owned(), remote.0.to_string()]);
    }
    argv.extend(["dport".to_owned(), "=".to_owned(), format!(":{}", remote.1)]);
    argv
}

/// Closes each socket with `ss -K`; errors keep argv and stderr.
pub fn reset(sockets: &[Socket]) -> Result<()> {
    for socket in sockets {
        let argv = reset_argv(socket);
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .map_err(|e| ChaosError::Command {
                argv: argv.clone(),
                status: "not started".into(),
                stderr: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(ChaosError::Command {
                argv,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 016433C6:A1B2 026433C6:18EB 01 000003E8:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:0BB8 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 0000000000000000FFFF0000016433C6:0BB8 0000000000000000FFFF0000056433C6:D431 01 00000000:00000000
";

    fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn proc_net_tcp_is_parsed() {
        let sockets = parse_proc_net_tcp(TCP);
        assert_eq!(sockets.len(), 3);
        assert!(!sockets[0].established);
        assert_eq!(sockets[1].local, (ip(198, 51, 100, 1), 0xA1B2));
        assert_eq!(sockets[1].remote, (ip(198, 51, 100, 2), 6379));
        assert_eq!((sockets[1].tx_queue, sockets[2].tx_queue), (1000, 0));
        let mapped = parse_proc_net_tcp(TCP6);
        assert_eq!(mapped[0].local, (ip(198, 51, 100, 1), 3000));
        assert_eq!(mapped[0].remote, (ip(198, 51, 100, 5), 0xD431));
    }

    #[test]
    fn egress_counts_established_connections_to_the_target_port() {
        let sockets = parse_proc_net_tcp(TCP);
        let table = [
            (Some(6379), vec![Ipv4Addr::new(198, 51, 100, 2)], 1),
            (None, vec![Ipv4Addr::new(198, 51, 100, 2)], 1),
            (Some(6380), vec![Ipv4Addr::new(198, 51, 100, 2)], 0),
            (Some(6379), vec![Ipv4Addr::new(198, 51, 100, 9)], 0),
        ];
        for (port, targets, expected) in table {
            let redirect = Redirect::Egress {
                targets,
                port,
                mark: 1,
            };
            let n = sockets.iter().filter(|s| bypasses(s, &redirect)).count();
            assert_eq!(n, expected, "{redirect:?}");
        }
    }

    #[test]
    fn ingress_counts_remote_clients_of_the_app_port_only() {
        let mut sockets = parse_proc_net_tcp(TCP);
        sockets.extend(parse_proc_net_tcp(TCP6));
        let redirect = Redirect::Ingress { app_port: 3000 };
        // The listener (not established) and the loopback client do not count.
        assert_eq!(sockets.iter().filter(|s| bypasses(s, &redirect)).count(), 1);
    }

    #[test]
    fn reset_commands_name_exactly_one_socket() {
        let v4 = &parse_proc_net_tcp(TCP)[1];
        assert_eq!(
            reset_argv(v4),
            [
                "ss",
                "-K",
                "-t",
                "-n",
                "-4",
                "state",
                "established",
                "src",
                "198.51.100.1",
                "sport",
                "=",
                ":41394",
                "dst",
                "198.51.100.2",
                "dport",
                "=",
                ":6379"
            ]
        );
        let v6 = &parse_proc_net_tcp(TCP6)[0];
        assert_eq!(
            reset_argv(v6)[4..],
            [
                "-6",
                "state",
                "established",
                "sport",
                "=",
                ":3000",
                "dport",
                "=",
                ":54321"
            ]
        );
    }
}
