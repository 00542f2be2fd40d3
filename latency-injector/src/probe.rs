//! Does this kernel have a qdisc kind (`netem`, `prio`)? Asked without creating anything:
//! one rtnetlink RTM_NEWQDISC request for that kind as the root of the loopback
//! interface, *without options*. The kernel looks the kind up first (loading its module
//! if it can, as `tc` would), then calls its init, and netem's and prio's init refuse to
//! start without options. So the answer is:
//!
//! | errno | meaning |
//! |---|---|
//! | EINVAL | the kind exists (its init refused the empty options); nothing was created |
//! | ENOENT | "Specified qdisc kind is unknown": not built in, no module |
//! | EPERM | no CAP_NET_ADMIN in this network namespace: cannot tell |
//! | EEXIST | loopback already has a root qdisc of its own (not the default): cannot tell here |
//!
//! `tc` itself cannot ask this way (it always sends options, so a known kind would be
//! created); a probe that created and deleted a netem on loopback would touch the
//! namespace in a dry run. Sockets through `nix` (no unsafe code).

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const TCA_KIND: u16 = 1;
const TC_H_ROOT: u32 = 0xffff_ffff;
/// The loopback interface is index 1 in every network namespace.
pub const LOOPBACK: i32 = 1;

/// What the kernel said about a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Available,
    Missing,
    /// The probe could not tell (why).
    Unknown(String),
}

/// The request: nlmsghdr (16 bytes), tcmsg (20), one TCA_KIND attribute.
pub fn request(message: u16, flags: u16, kind: &str, ifindex: i32, seq: u32) -> Vec<u8> {
    let attr_len = 4 + kind.len() + 1;
    let padded = (attr_len + 3) & !3;
    let total = 16 + 20 + padded;
    let mut buf = Vec::with_capacity(total);
    buf.extend(u32::try_from(total).unwrap_or(u32::MAX).to_ne_bytes());
    buf.extend(message.to_ne_bytes());
    buf.extend((NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
    buf.extend(seq.to_ne_bytes());
    buf.extend(0u32.to_ne_bytes());
    // tcmsg: family, 3 bytes of padding, ifindex, handle, parent, info.
    buf.extend([0u8; 4]);
    buf.extend(ifindex.to_ne_bytes());
    buf.extend(0u32.to_ne_bytes());
    buf.extend(TC_H_ROOT.to_ne_bytes());
    buf.extend(0u32.to_ne_bytes());
    buf.extend(u16::try_from(attr_len).unwrap_or(u16::MAX).to_ne_bytes());
    buf.extend(TCA_KIND.to_ne_bytes());
    buf.extend(kind.as_bytes());
    buf.resize(total, 0);
    buf
}

/// The errno of the first NLMSG_ERROR answering `seq` (0 is an acknowledgement).
pub fn answer(reply: &[u8], seq: u32) -> Option<i32> {
    let mut at = 0;
    while reply.len() >= at + 20 {
        let word = |i: usize| {
            reply
                .get(at + i..at + i + 4)
                .and_then(|b| b.try_into().ok())
        };
        let len = u32::from_ne_bytes(word(0)?) as usize;
        let kind = u16::from_ne_bytes(reply.get(at + 4..at + 6)?.try_into().ok()?);
        let got_seq = u32::from_ne_bytes(word(8)?);
        if kind == NLMSG_ERROR && got_seq == seq {
            return Some(-i32::from_ne_bytes(word(16)?));
        }
        if len < 16 {
            return None;
        }
        at += (len + 3) & !3;
    }
    None
}

fn exchange(message: &[u8], seq: u32) -> Result<i32, String> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(2, 0))
        .map_err(|e| format!("netlink socket timeout: {e}"))?;
    let kernel = NetlinkAddr::new(0, 0);
    sendto(fd.as_raw_fd(), message, &kernel, MsgFlags::empty())
        .map_err(|e| format!("netlink send: {e}"))?;
    let mut reply = vec![0u8; 8192];
    loop {
        let n = recv(fd.as_raw_fd(), &mut reply, MsgFlags::empty())
            .map_err(|e| format!("netlink receive: {e}"))?;
        if let Some(errno) = answer(&reply[..n], seq) {
            return Ok(errno);
        }
    }
}

/// Asks whether the kernel has qdisc `kind`, on interface `ifindex` (its root must be
/// the default one for an answer).
pub fn kind(kind: &str, ifindex: i32) -> Kind {
    let seq = std::process::id();
    let message = request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, kind, ifindex, seq);
    match exchange(&message, seq) {
        Ok(errno) if errno == Errno::EINVAL as i32 => Kind::Available,
        Ok(errno) if errno == Errno::ENOENT as i32 => Kind::Missing,
        Ok(errno) if errno == Errno::EPERM as i32 => {
            Kind::Unknown("no CAP_NET_ADMIN in this network namespace to ask the kernel".into())
        }
        Ok(errno) if errno == Errno::EEXIST as i32 => Kind::Unknown(format!(
            "interface {ifindex} already has a root qdisc of its own"
        )),
        Ok(0) => {
            // No kernel creates these kinds without options; if one did, take it away.
            let undo = request(RTM_DELQDISC, 0, kind, ifindex, seq + 1);
            let removed = exchange(&undo, seq + 1);
            Kind::Unknown(format!(
                "the kernel created a {kind} qdisc without options (removed: {removed:?})"
            ))
        }
        Ok(errno) => Kind::Unknown(format!("the kernel answered {}", Errno::from_raw(errno))),
        Err(e) => Kind::Unknown(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_bare_kind_at_the_root() {
        let message = request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, "netem", 1, 7);
        // 16 + 20 + (4 + "netem\0" = 10, padded to 12)
        assert_eq!(message.len(), 48);
        assert_eq!(u32::from_ne_bytes(message[0..4].try_into().unwrap()), 48);
        assert_eq!(u16::from_ne_bytes(message[4..6].try_into().unwrap()), 36);
        assert_eq!(
            u16::from_ne_bytes(message[6..8].try_into().unwrap()),
            0x1 | 0x4 | 0x200 | 0x400
        );
        assert_eq!(i32::from_ne_bytes(message[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_ne_bytes(message[28..32].try_into().unwrap()),
            TC_H_ROOT
        );
        assert_eq!(u16::from_ne_bytes(message[36..38].try_into().unwrap()), 10);
        assert_eq!(&message[40..46], b"netem\0");
    }

    #[test]
    fn answers_are_read_by_sequence() {
        let mut reply = Vec::new();
        for (seq, errno) in [(6u32, -17i32), (7, -22)] {
            reply.extend(36u32.to_ne_bytes());
            reply.extend(NLMSG_ERROR.to_ne_bytes());
            reply.extend(0u16.to_ne_bytes());
            reply.extend(seq.to_ne_bytes());
            reply.extend(0u32.to_ne_bytes());
            reply.extend(errno.to_ne_bytes());
            reply.extend([0u8; 16]);
        }
        assert_eq!(answer(&reply, 7), Some(22));
        assert_eq!(answer(&reply, 6), Some(17));
        assert_eq!(answer(&reply, 8), None);
        assert_eq!(answer(&reply[..10], 6), None);
    }
}
