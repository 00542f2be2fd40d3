//! The process identity a container gets from its pod's and its own securityContext,
//! as containerd computes it.
//!
//! - user: container `runAsUser`, else the pod's, else the image's (root); `runAsNonRoot`
//!   with uid 0 is refused (`CreateContainerConfigError`).
//! - group: `runAsGroup` (container, pod), else 0; supplementary groups: that gid, the
//!   pod's `fsGroup` and `supplementalGroups`.
//! - capabilities (the bounding set): containerd's default set, minus `drop` (`ALL`
//!   empties it), plus `add`; `privileged` gives every capability. Only a root process
//!   holds them as effective capabilities (see `init/identity.rs`).
//! - `allowPrivilegeEscalation: false` sets no_new_privs.

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{Container, PodSecurityContext, SecurityContext};

use super::launch::Identity;

/// containerd's default capabilities for a container.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The identity for `sc` (the container's) under `pod` (the pod's).
pub fn identity(
    pod: Option<&PodSecurityContext>,
    sc: Option<&SecurityContext>,
) -> Result<Identity> {
    let uid = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod.and_then(|p| p.run_as_user))
        .unwrap_or(0);
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| pod.and_then(|p| p.run_as_non_root))
        .unwrap_or(false);
    if non_root && uid == 0 {
        bail!("container has runAsNonRoot and image will run as root");
    }
    let gid = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod.and_then(|p| p.run_as_group))
        .unwrap_or(0);
    let mut groups = vec![gid];
    groups.extend(pod.and_then(|p| p.fs_group));
    groups.extend(
        pod.and_then(|p| p.supplemental_groups.clone())
            .unwrap_or_default(),
    );
    let groups = dedup(groups.into_iter().map(to_u32).collect::<Result<Vec<_>>>()?);
    Ok(Identity {
        uid: to_u32(uid)?,
        gid: to_u32(gid)?,
        groups,
        capabilities: capabilities(sc),
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
    })
}

/// The bounding set for a container's securityContext.
pub fn capabilities(sc: Option<&SecurityContext>) -> Vec<String> {
    if sc.and_then(|s| s.privileged) == Some(true) {
        return caps::all().iter().map(ToString::to_string).collect();
    }
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let drop: Vec<String> = caps
        .and_then(|c| c.drop.clone())
        .unwrap_or_default()
        .iter()
        .map(|c| normalize(c))
        .collect();
    let add = caps.and_then(|c| c.add.clone()).unwrap_or_default();
    let mut set: Vec<String> = if drop.iter().any(|d| d == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    for cap in add {
        let cap = normalize(&cap);
        if cap == "CAP_ALL" {
            return caps::all().iter().map(ToString::to_string).collect();
        }
        if !set.contains(&cap) {
            set.push(cap);
        }
    }
    set
}

/// `NET_ADMIN`, `net_admin`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`.
fn normalize(cap: &str) -> String {
    let upper = cap.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

fn to_u32(id: i64) -> Result<u32> {
    u32::try_from(id).map_err(|_| anyhow::anyhow!("user or group id {id} is out of range"))
}

fn dedup(mut v: Vec<u32>) -> Vec<u32> {
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
    v
}

/// The container's `readOnlyRootFilesystem`.
pub fn read_only_root(container: &Container) -> bool {
    container
        .security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem)
        == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Capabilities;

    fn platform_pod() -> PodSecurityContext {
        PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1001),
            fs_group: Some(1001),
            ..Default::default()
        }
    }

    fn caps(add: &[&str], drop: &[&str]) -> SecurityContext {
        SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(add.iter().map(|s| s.to_string()).collect()),
                drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            }),
            allow_privilege_escalation: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn the_platform_container_is_1001_without_capabilities() {
        let id = identity(Some(&platform_pod()), Some(&caps(&[], &["ALL"]))).unwrap();
        assert_eq!((id.uid, id.gid), (1001, 0));
        assert_eq!(id.groups, vec![0, 1001]);
        assert!(id.capabilities.is_empty());
        assert!(id.no_new_privs);
    }

    #[test]
    fn netadmin_debug_container_adds_to_the_default_set() {
        let set = capabilities(Some(&caps(&["NET_ADMIN", "NET_RAW"], &[])));
        assert!(set.contains(&"CAP_NET_ADMIN".to_owned()));
        assert_eq!(set.iter().filter(|c| *c == "CAP_NET_RAW").count(), 1);
        assert!(set.contains(&"CAP_CHOWN".to_owned()));
    }

    #[test]
    fn run_as_non_root_refuses_uid_0() {
        let pod = PodSecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        };
        assert!(identity(Some(&pod), None).is_err());
        let root = SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            ..Default::default()
        };
        assert_eq!(identity(Some(&platform_pod()), Some(&root)).unwrap().uid, 0);
    }

    #[test]
    fn default_set_when_nothing_is_said() {
        let id = identity(None, None).unwrap();
        assert_eq!(id.uid, 0);
        assert_eq!(id.capabilities.len(), DEFAULT_CAPS.len());
        assert!(!id.no_new_privs);
    }
}
