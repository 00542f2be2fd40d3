//! Where the proxy goes: the mode the flags chose and the address helpers behind it
//! (name resolution at start, so a name that does not resolve is bad input).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use chaos_common::{ChaosError, Result};

/// Resolves `HOST:PORT` now, so a name that does not resolve is bad input.
pub fn resolve(flag: &str, text: &str) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| ChaosError::bad_input(format!("{flag} '{text}': {e} (expected HOST:PORT)")))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| a.port() == 0) {
        return Err(ChaosError::bad_input(format!(
            "{flag} '{text}': needs a host and a port from 1 to 65535"
        )));
    }
    Ok(addrs)
}

/// The mode the flags chose, with its resolved addresses.
#[derive(Debug, Clone)]
pub enum Chosen {
    Explicit {
        listen: SocketAddr,
        upstream: String,
        addrs: Vec<SocketAddr>,
    },
    Egress {
        label: String,
        targets: Vec<Ipv4Addr>,
        port: Option<u16>,
    },
    Ingress {
        app_port: u16,
    },
    /// No target: every outgoing TCP connection leaving the namespace (to `port` only,
    /// when given), loopback excluded. The netem engine only.
    Everything {
        port: Option<u16>,
    },
}

/// `redis`, `redis:6379`, `198.51.100.2:6379` (IPv6 targets are not supported yet).
pub fn split_target(text: &str) -> Result<(String, Option<u16>)> {
    let bad = || {
        ChaosError::bad_input(format!(
            "--target '{text}': expected HOST or HOST:PORT (port 1-65535)"
        ))
    };
    match text.rsplit_once(':') {
        None if !text.is_empty() => Ok((text.to_owned(), None)),
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            let port: u16 = port.parse().map_err(|_| bad())?;
            if port == 0 {
                return Err(bad());
            }
            Ok((host.to_owned(), Some(port)))
        }
        _ => Err(bad()),
    }
}

/// The IPv4 addresses of `host`: transparent egress redirects IPv4 only for now.
pub fn resolve_v4(host: &str) -> Result<Vec<Ipv4Addr>> {
    let addrs = (host, 0).to_socket_addrs().map_err(|e| {
        ChaosError::bad_input(format!(
            "target host '{host}' (--target/-H) does not resolve: {e}"
        ))
    })?;
    let v4: Vec<Ipv4Addr> = addrs
        .filter_map(|a| match a.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Err(ChaosError::bad_input(format!(
            "target host '{host}' (--target/-H) has no IPv4 address (IPv6 targets are not supported yet)"
        )));
    }
    if let Some(ip) = v4.iter().find(|ip| ip.is_loopback() || ip.is_unspecified()) {
        return Err(ChaosError::bad_input(format!(
            "target host '{host}' (--target/-H) is {ip}: loopback cannot be redirected transparently; use --listen/--upstream"
        )));
    }
    Ok(v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_host_and_port() {
        assert_eq!(split_target("redis").ok(), Some(("redis".to_owned(), None)));
        assert_eq!(
            split_target("redis:6379").ok(),
            Some(("redis".to_owned(), Some(6379)))
        );
        for bad in ["", "redis:", "redis:0", "redis:99999", ":6379", "::1"] {
            assert!(split_target(bad).is_err(), "{bad}");
        }
    }
}
