//! Reading `tc -j qdisc show`: whether an interface's root qdisc is the kernel's default,
//! one of ours, or someone else's; the counters of our netem; and our leftovers for
//! `--cleanup`.
//!
//! **Ours** (the marker `--cleanup` goes by): a root `prio` whose handle major is in
//! [`tc::FIRST_ROOT`]..=[`tc::LAST_ROOT`], with 2 bands and every priomap entry on the
//! second band. The kernel never makes such a qdisc by itself (its automatic handles start
//! at 0x8000, its defaults have handle 0), and a hand-made prio with exactly this shape in
//! this handle range is not something another tool writes. **Default**: handle `0:` (the
//! `noqueue`, `mq`, `pfifo_fast` or `fq_codel` the kernel attached). Anything else at the
//! root is **foreign**: the netem engine refuses to replace it.

use serde_json::Value;

use crate::tc::{self, BANDS, FIRST_ROOT, LAST_ROOT, PRIOMAP_BAND};

/// The root qdisc of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Default { kind: String },
    Ours { major: u16 },
    Foreign { kind: String, handle: String },
}

impl Root {
    pub fn describe(&self) -> String {
        match self {
            Root::Default { kind } => format!("its default qdisc ({kind})"),
            Root::Ours { major } => format!(
                "a latency-injector netem setup already (root prio {}; another run, or a \
                 leftover --cleanup removes)",
                tc::handle(*major)
            ),
            Root::Foreign { kind, handle } => {
                format!("a root qdisc that is not ours ({kind} {handle})")
            }
        }
    }
}

/// `"4c01:"` → 0x4c01.
fn major(handle: &str) -> Option<u16> {
    let major = handle.strip_suffix(':')?;
    u16::from_str_radix(major, 16).ok()
}

/// Whether one qdisc object is a root prio of ours; its major if so.
pub fn ours(qdisc: &Value) -> Option<u16> {
    if qdisc["root"] != true || qdisc["kind"] != "prio" {
        return None;
    }
    let major = major(qdisc["handle"].as_str()?)?;
    let options = &qdisc["options"];
    let priomap = options["priomap"].as_array()?;
    let shaped = options["bands"] == u64::from(BANDS)
        && priomap.len() == 16
        && priomap.iter().all(|band| *band == u64::from(PRIOMAP_BAND));
    ((FIRST_ROOT..=LAST_ROOT).contains(&major) && shaped).then_some(major)
}

fn items(listing: &Value) -> impl Iterator<Item = &Value> {
    listing.as_array().into_iter().flatten()
}

/// The root of one interface's listing (`tc -j qdisc show dev IF`). An interface that
/// lists no root (down, with the `noop` placeholder) is taken as default.
pub fn root_of(listing: &Value) -> Root {
    let Some(root) = items(listing).find(|q| q["root"] == true) else {
        return Root::Default {
            kind: "none listed".into(),
        };
    };
    let kind = root["kind"].as_str().unwrap_or("?").to_owned();
    let handle = root["handle"].as_str().unwrap_or("?").to_owned();
    if let Some(major) = ours(root) {
        return Root::Ours { major };
    }
    if handle == "0:" {
        Root::Default { kind }
    } else {
        Root::Foreign { kind, handle }
    }
}

/// Our roots in a listing of every interface (`tc -j qdisc show`): (device, major).
pub fn owned_roots(listing: &Value) -> Vec<(String, u16)> {
    items(listing)
        .filter_map(|q| Some((q["dev"].as_str()?.to_owned(), ours(q)?)))
        .collect()
}

/// The counters of the run's netem (`tc -s -j qdisc show dev IF`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetemCounters {
    /// Packets netem let go (delayed, or passed at once by `--probability`).
    pub packets: u64,
    pub bytes: u64,
    /// Dropped at netem's packet limit.
    pub drops: u64,
    /// Packets sent at once by `--probability` (netem counts its reorders as requeues).
    pub not_delayed: u64,
    /// Held right now.
    pub backlog_packets: u64,
}

impl NetemCounters {
    pub fn add(&mut self, other: NetemCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.drops += other.drops;
        self.not_delayed += other.not_delayed;
        self.backlog_packets += other.backlog_packets;
    }
}

/// The counters of the netem under root `root`, if it is there.
pub fn netem_counters(listing: &Value, root: u16) -> Option<NetemCounters> {
    let handle = tc::handle(root + 1);
    let netem = items(listing).find(|q| q["kind"] == "netem" && q["handle"] == handle.as_str())?;
    let count = |key: &str| netem[key].as_u64().unwrap_or(0);
    Some(NetemCounters {
        packets: count("packets"),
        bytes: count("bytes"),
        drops: count("drops"),
        not_delayed: count("requeues"),
        backlog_packets: count("qlen"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prio(handle: &str, bands: u64, map: u64) -> Value {
        json!({"kind": "prio", "handle": handle, "dev": "eth0", "root": true,
               "options": {"bands": bands, "priomap": vec![map; 16], "multiqueue": false}})
    }

    #[test]
    fn roots_are_default_ours_or_foreign() {
        let table = [
            (
                json!([{"kind": "noqueue", "handle": "0:", "root": true}]),
                Root::Default {
                    kind: "noqueue".into(),
                },
            ),
            (
                json!([{"kind": "mq", "handle": "0:", "root": true}, {"kind": "fq_codel", "handle": "0:", "parent": ":1"}]),
                Root::Default { kind: "mq".into() },
            ),
            (
                json!([]),
                Root::Default {
                    kind: "none listed".into(),
                },
            ),
            (json!([prio("4c01:", 2, 1)]), Root::Ours { major: 0x4c01 }),
            (json!([prio("7ffe:", 2, 1)]), Root::Ours { major: 0x7ffe }),
            (
                json!([prio("1:", 2, 1)]),
                Root::Foreign {
                    kind: "prio".into(),
                    handle: "1:".into(),
                },
            ),
            (
                json!([prio("7fff:", 2, 1)]),
                Root::Foreign {
                    kind: "prio".into(),
                    handle: "7fff:".into(),
                },
            ),
            (
                json!([prio("4c01:", 3, 1)]),
                Root::Foreign {
                    kind: "prio".into(),
                    handle: "4c01:".into(),
                },
            ),
            (
                json!([prio("4c01:", 2, 0)]),
                Root::Foreign {
                    kind: "prio".into(),
                    handle: "4c01:".into(),
                },
            ),
            (
                json!([{"kind": "netem", "handle": "8001:", "root": true}]),
                Root::Foreign {
                    kind: "netem".into(),
                    handle: "8001:".into(),
                },
            ),
            (
                json!([{"kind": "htb", "handle": "4c01:", "root": true}]),
                Root::Foreign {
                    kind: "htb".into(),
                    handle: "4c01:".into(),
                },
            ),
        ];
        for (listing, expected) in table {
            assert_eq!(root_of(&listing), expected, "{listing}");
        }
    }

    #[test]
    fn leftovers_are_only_our_roots() {
        let mut other = prio("4c01:", 2, 1);
        other["dev"] = json!("eth1");
        other["root"] = json!(false);
        let listing = json!([
            {"kind": "noqueue", "handle": "0:", "dev": "lo", "root": true},
            prio("4c01:", 2, 1),
            {"kind": "netem", "handle": "4c02:", "dev": "eth0", "parent": "4c01:1"},
            other,
            {"kind": "netem", "handle": "8001:", "dev": "eth2", "root": true},
        ]);
        assert_eq!(owned_roots(&listing), [("eth0".to_owned(), 0x4c01)]);
    }

    #[test]
    fn netem_counters_come_from_the_run_s_child() {
        let listing = json!([
            prio("4c01:", 2, 1),
            {"kind": "netem", "handle": "4c02:", "parent": "4c01:1", "packets": 12, "bytes": 900,
             "drops": 1, "requeues": 3, "backlog": 180, "qlen": 2},
            {"kind": "netem", "handle": "9c02:", "parent": "9c01:1", "packets": 99},
        ]);
        assert_eq!(
            netem_counters(&listing, 0x4c01),
            Some(NetemCounters {
                packets: 12,
                bytes: 900,
                drops: 1,
                not_delayed: 3,
                backlog_packets: 2
            })
        );
        assert_eq!(netem_counters(&listing, 0x4c05), None);
    }
}
