//! Name resolution in pods without a DNS server: every pod gets its own /etc/hosts (a
//! bind mount, as the kubelet's) listing every Service by its short name (same
//! namespace only), `NAME.NS`, `NAME.NS.svc` and `NAME.NS.svc.cluster.local`; the lab
//! rewrites it in place whenever a Service is added or removed. resolv.conf names the
//! search domains and a nameserver on the pod's loopback, where nothing listens: an
//! unknown name fails at once instead of waiting for a DNS timeout.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};

/// The lab's cluster domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// One Service the pods can name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
}

/// The hosts file of a pod named `hostname` at `pod_ip` in `namespace`.
pub fn hosts_file(
    hostname: &str,
    pod_ip: Ipv4Addr,
    namespace: &str,
    services: &[ServiceName],
) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file (the lab's kubelet; Services kept current).\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    out.push_str(&format!("{pod_ip}\t{hostname}\n"));
    for s in services {
        let fqdn = format!("{}.{}.svc.{CLUSTER_DOMAIN}", s.name, s.namespace);
        let mut names = Vec::new();
        if s.namespace == namespace {
            names.push(s.name.clone());
        }
        names.push(format!("{}.{}", s.name, s.namespace));
        names.push(format!("{}.{}.svc", s.name, s.namespace));
        names.push(fqdn);
        out.push_str(&format!("{}\t{}\n", s.ip, names.join(" ")));
    }
    out
}

pub fn resolv_conf(namespace: &str) -> String {
    format!(
        "# The lab has no DNS server: names come from /etc/hosts (see docs/lab.md).\n\
         search {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n\
         nameserver 127.0.0.1\n\
         options ndots:5\n"
    )
}

/// Rewrites `path` in place (same inode), so that a bind mount of it sees the change.
pub fn write_in_place(path: &Path, content: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_only_for_the_pods_namespace() {
        let services = vec![
            ServiceName {
                namespace: "lomash-wood".into(),
                name: "redis".into(),
                ip: Ipv4Addr::new(203, 0, 113, 1),
            },
            ServiceName {
                namespace: "other".into(),
                name: "db".into(),
                ip: Ipv4Addr::new(203, 0, 113, 2),
            },
        ];
        let text = hosts_file(
            "p-1",
            Ipv4Addr::new(198, 51, 100, 2),
            "lomash-wood",
            &services,
        );
        assert!(text.contains(
            "203.0.113.1\tredis redis.lomash-wood redis.lomash-wood.svc redis.lomash-wood.svc.cluster.local\n"
        ));
        assert!(text.contains("203.0.113.2\tdb.other db.other.svc db.other.svc.cluster.local\n"));
        assert!(text.contains("198.51.100.2\tp-1\n"));
    }
}
