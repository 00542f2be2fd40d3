//! Removing a lab: its processes (by killing its cgroups), network namespaces (the
//! node's nftables table and veths go with them), the host's veth and routes, cgroups
//! and state directory. Only names carrying a lab id (`l<pid>`) are touched, and a
//! sweep removes only labs whose owning process is dead.

use std::path::Path;

use super::cgroups::{Cgroup, Layout};
use super::net;
use super::plan::{Plan, STATE_ROOT};

/// Removes everything of `plan`'s lab. Best effort and idempotent.
pub fn remove_lab(plan: &Plan, layout: &Layout) {
    let root = Cgroup {
        layout: layout.clone(),
        rel: Path::new(&plan.cgroup_name()).to_path_buf(),
    };
    let _ = root.remove();
    for ns in net::namespaces_with_prefix(&plan.ns_prefix()).unwrap_or_default() {
        let _ = super::cmd::run(&["ip", "netns", "del", &ns], None);
    }
    net::delete_node(plan);
    let _ = std::fs::remove_dir_all(plan.state_dir());
}

/// Lab ids (`l<pid>`) found anywhere: state directories, network namespaces, cgroups.
pub fn known_lab_ids(layout: Option<&Layout>) -> Vec<String> {
    let mut ids = Vec::new();
    if let Ok(entries) = std::fs::read_dir(STATE_ROOT) {
        for e in entries.flatten() {
            ids.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    for ns in net::namespaces_with_prefix("chaos-l").unwrap_or_default() {
        if let Some(id) = ns.strip_prefix("chaos-").and_then(|r| r.split('-').next()) {
            ids.push(id.to_owned());
        }
    }
    if let Some(layout) = layout {
        for dir in cgroup_roots(layout) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(id) = name.strip_prefix("chaos-lab-") {
                        ids.push(id.to_owned());
                    }
                }
            }
        }
    }
    ids.retain(|id| lab_pid(id).is_some());
    ids.sort();
    ids.dedup();
    ids
}

fn cgroup_roots(layout: &Layout) -> Vec<std::path::PathBuf> {
    match layout {
        Layout::V1 {
            memory,
            cpu,
            cpuacct,
        } => vec![memory.clone(), cpu.clone(), cpuacct.clone()],
        Layout::V2 { root } => vec![root.clone()],
    }
}

/// `l123` -> 123.
pub fn lab_pid(id: &str) -> Option<i32> {
    id.strip_prefix('l')?.parse().ok().filter(|p| *p > 0)
}

pub fn is_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The plan of lab `id` (its slot from the state directory; 0 when unknown, which only
/// names the host routes, and those go with the host veth).
pub fn plan_of(id: &str) -> Option<Plan> {
    let pid = u32::try_from(lab_pid(id)?).ok()?;
    let slot = std::fs::read_to_string(Path::new(STATE_ROOT).join(id).join("slot"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Some(Plan::new(pid, slot))
}

/// Removes the leftovers of every lab whose owner process is gone.
pub fn sweep_dead_labs() -> Vec<String> {
    let layout = Layout::detect().ok();
    let mut removed = Vec::new();
    for id in known_lab_ids(layout.as_ref()) {
        let dead = lab_pid(&id).is_some_and(|pid| !is_alive(pid));
        if let (true, Some(plan), Some(layout)) = (dead, plan_of(&id), layout.as_ref()) {
            remove_lab(&plan, layout);
            removed.push(id);
        }
    }
    removed
}
