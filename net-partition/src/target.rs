//! Targets: what `-H/--target-host` names, turned into address blocks for the nftables
//! sets.
//!
//! A value is a CIDR (`198.51.100.0/30`, `2001:db8::/64`), a single IP address, or a host
//! name resolved once, at start (the fault's resolve step, after the safety rules), with
//! the system resolver (every address it returns, IPv4 and IPv6). CIDRs are parsed here rather than with a crate: the parser is small
//! and strict (host bits set is an error, so `10.0.0.7/8` cannot silently mean
//! `10.0.0.0/8`).

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// An address block: an address with its prefix length, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    /// A single address (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Self {
        Cidr {
            addr,
            len: max_len(addr),
        }
    }

    pub fn is_host(&self) -> bool {
        self.len == max_len(self.addr)
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True when every address of `other` is in `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() || other.len < self.len {
            return false;
        }
        let width = u32::from(max_len(self.addr));
        mask(as_u128(other.addr), self.len, width) == as_u128(self.addr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn as_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Keeps the top `len` bits of a `width`-bit address.
fn mask(value: u128, len: u8, width: u32) -> u128 {
    let host_bits = width - u32::from(len);
    if host_bits >= 128 {
        0
    } else {
        (value >> host_bits) << host_bits
    }
}

/// Parses `ADDR/LEN`; the error says what is wrong, without the flag name.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| format!("'{text}' is not a CIDR (expected ADDRESS/PREFIX)"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("'{text}': '{addr}' is not an IPv4 or IPv6 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= max_len(addr) && !len.starts_with('+'))
        .ok_or_else(|| {
            format!(
                "'{text}': prefix must be 0-{} for this address",
                max_len(addr)
            )
        })?;
    let width = u32::from(max_len(addr));
    if mask(as_u128(addr), len, width) != as_u128(addr) {
        let network = from_u128(addr, mask(as_u128(addr), len, width));
        return Err(format!(
            "'{text}' has host bits set (did you mean {network}/{len}?)"
        ));
    }
    Ok(Cidr { addr, len })
}

fn from_u128(like: IpAddr, value: u128) -> IpAddr {
    match like {
        // The value came from a 32-bit address masked, so it fits.
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(value)),
    }
}

/// One `-H` value and the blocks it stands for. A host name has no addresses until
/// [`resolve_names`] has run (the fault's resolve step).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedTarget {
    pub input: String,
    pub addresses: Vec<Cidr>,
}

impl ResolvedTarget {
    pub fn is_name(&self) -> bool {
        self.addresses.is_empty()
    }
}

/// Checks one `-H` value without touching the network: a CIDR or an address becomes its
/// block now; a host name is checked for shape and resolved later by [`resolve_names`].
///
/// Refused: zone ids (`fe80::1%eth0`: the zone cannot be matched by a set), and the
/// shorthand IPv4 forms the C library's resolver would silently accept (`127.1`,
/// `0x7f.1`, `1.2.3`, `2130706433` all name 127.x or stranger addresses): an address is
/// four decimal numbers or it is an error.
pub fn parse(input: &str) -> Result<ResolvedTarget, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("empty value".into());
    }
    if trimmed.contains('%') {
        return Err(format!(
            "'{trimmed}': zone ids (%IFACE) are not supported; give the address without it"
        ));
    }
    let addresses = if trimmed.contains('/') {
        vec![parse_cidr(trimmed)?]
    } else if let Ok(addr) = trimmed.parse::<IpAddr>() {
        vec![Cidr::host(addr)]
    } else {
        check_host_name(trimmed)?;
        Vec::new()
    };
    Ok(ResolvedTarget {
        input: trimmed.to_owned(),
        addresses,
    })
}

/// A host name as DNS allows it (RFC 1123 labels, a last label that is not numeric), and
/// never a numeric shorthand the resolver would turn into an address.
pub fn check_host_name(name: &str) -> Result<(), String> {
    let labels: Vec<&str> = name.strip_suffix('.').unwrap_or(name).split('.').collect();
    let numeric = |label: &str| {
        let hex = label
            .strip_prefix("0x")
            .or_else(|| label.strip_prefix("0X"));
        match hex {
            Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    if labels.len() <= 4 && labels.iter().all(|l| numeric(l)) {
        return Err(format!(
            "'{name}' is not an IPv4 address: write four decimal numbers (like 198.51.100.7); \
             shorthand forms such as 127.1 or 0x7f.1 are refused"
        ));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let last_numeric = labels.last().is_some_and(|l| numeric(l));
    if name.len() > 253 || !labels.iter().all(|l| label_ok(l)) || last_numeric {
        return Err(format!(
            "'{name}' is neither an IP address, a CIDR, nor a valid host name"
        ));
    }
    Ok(())
}

/// Resolves every host name among `targets` with the system resolver (every address it
/// returns, IPv4 and IPv6), once, at start.
pub async fn resolve_names(targets: &mut [ResolvedTarget]) -> Result<(), String> {
    for target in targets.iter_mut().filter(|t| t.is_name()) {
        target.addresses = resolve_host(&target.input).await?;
    }
    Ok(())
}

async fn resolve_host(host: &str) -> Result<Vec<Cidr>, String> {
    let resolved = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?;
    let mut found: Vec<Cidr> = Vec::new();
    for addr in resolved {
        let cidr = Cidr::host(addr.ip());
        if !found.contains(&cidr) {
            found.push(cidr);
        }
    }
    if found.is_empty() {
        return Err(format!("host '{host}' resolved to no address"));
    }
    Ok(found)
}

/// The blocks to put in the sets: duplicates and blocks inside other blocks removed
/// (an interval set refuses overlapping elements; CIDR blocks either nest or are
/// disjoint, so dropping the nested ones is enough).
pub fn set_elements(targets: &[ResolvedTarget]) -> Vec<Cidr> {
    let all: Vec<Cidr> = targets
        .iter()
        .flat_map(|t| t.addresses.iter().copied())
        .collect();
    let mut kept: Vec<Cidr> = Vec::new();
    for (i, cidr) in all.iter().enumerate() {
        let covered = all
            .iter()
            .enumerate()
            .any(|(j, other)| j != i && other.contains(cidr) && (other.len < cidr.len || j < i));
        if !covered {
            kept.push(*cidr);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        match parse_cidr(text) {
            Ok(c) => c.to_string(),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn parses_valid_cidrs() {
        for (input, shown) in [
            ("198.51.100.0/30", "198.51.100.0/30"),
            ("198.51.100.7/32", "198.51.100.7"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("2001:db8::1/128", "2001:db8::1"),
        ] {
            assert_eq!(ok(input), shown, "{input}");
        }
    }

    #[test]
    fn rejects_invalid_cidrs() {
        for input in [
            "198.51.100.0",
            "198.51.100.0/33",
            "198.51.100.0/-1",
            "198.51.100.0/+8",
            "198.51.100.0/",
            "198.51.100/24",
            "198.51.100.1/30",
            "300.1.1.1/32",
            "2001:db8::/129",
            "2001:db8::1/64",
            "host/24",
            "/24",
        ] {
            assert!(parse_cidr(input).is_err(), "{input} should be rejected");
        }
    }

    #[test]
    fn host_bits_error_suggests_the_network() {
        let err = parse_cidr("198.51.100.1/30").err().unwrap_or_default();
        assert!(err.contains("198.51.100.0/30"), "{err}");
    }

    #[test]
    fn containment() {
        let net = |t: &str| parse_cidr(t).unwrap_or_else(|e| panic!("{e}"));
        assert!(net("198.51.100.0/24").contains(&net("198.51.100.4/30")));
        assert!(net("0.0.0.0/0").contains(&net("198.51.100.4/32")));
        assert!(!net("198.51.100.4/30").contains(&net("198.51.100.0/24")));
        assert!(!net("198.51.100.0/30").contains(&net("198.51.100.4/30")));
        assert!(!net("::/0").contains(&net("198.51.100.4/32")));
        assert!(net("::/0").contains(&net("2001:db8::/32")));
    }

    #[tokio::test]
    async fn parses_addresses_and_cidrs_now_and_resolves_names_later() {
        let r = parse("198.51.100.2").unwrap();
        assert_eq!(
            r.addresses,
            vec![Cidr::host("198.51.100.2".parse().unwrap())]
        );
        let r = parse(" 198.51.100.0/30 ").unwrap();
        assert_eq!(r.input, "198.51.100.0/30");
        let mut names = vec![parse("localhost").unwrap()];
        assert!(names[0].is_name());
        resolve_names(&mut names).await.unwrap();
        assert!(names[0].addresses.iter().any(|c| c.addr.is_loopback()));
        let mut missing = vec![parse("no-such-host.invalid").unwrap()];
        assert!(resolve_names(&mut missing).await.is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn refuses_shorthand_addresses_zone_ids_and_bad_names() {
        for bad in [
            "0x7f.1",
            "127.1",
            "1.2.3",
            "2130706433",
            "0x7f000001",
            "0X7F.0.0.1",
            "1.2.3.4.5",
            "fe80::1%eth0",
            "198.51.100.1%lo",
            "-bad.example",
            "bad-.example",
            "a..b",
            "under_score.example",
            "host name",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        let err = parse("0x7f.1").unwrap_err();
        assert!(err.contains("four decimal numbers"), "{err}");
        for good in [
            "redis",
            "auth-service.lomash-wood.svc.cluster.local",
            "a1.example.",
            "0x7f.example",
        ] {
            assert!(parse(good).is_ok(), "{good} should be accepted");
        }
    }

    #[test]
    fn set_elements_drop_duplicates_and_nested_blocks() {
        let targets: Vec<ResolvedTarget> = [
            "198.51.100.0/30",
            "198.51.100.2",
            "198.51.100.5",
            "198.51.100.5",
            "2001:db8::1",
        ]
        .iter()
        .map(|t| parse(t).unwrap_or_else(|e| panic!("{e}")))
        .collect();
        let shown: Vec<String> = set_elements(&targets)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["198.51.100.0/30", "198.51.100.5", "2001:db8::1"]);
    }
}
