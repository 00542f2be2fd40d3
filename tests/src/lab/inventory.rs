//! What is running, read from the lab's state directories (no API needed): each pod
//! writes a record (`pod.json`: namespace, name, uid, containers, network namespace and
//! IP) when its sandbox is made, so that `lab.sh status` and `lab.sh cgroup POD` can
//! answer from outside the lab process.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::cgroups::{Cgroup, Layout};
use super::cleanup;
use super::plan::STATE_ROOT;
use k8s_openapi::api::core::v1::Pod;

pub const POD_FILE: &str = "pod.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    pub lab: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Containers in spec order; the first is the default unless annotated.
    pub containers: Vec<String>,
    pub default_container: String,
    pub net_ns: String,
    pub ip: String,
    /// The pod's cgroup, relative to each hierarchy's root.
    pub cgroup: PathBuf,
}

/// The pod's containers in spec order, and the default one (the
/// `kubectl.kubernetes.io/default-container` annotation when it names one, else the first).
pub fn containers_of(pod: &Pod) -> (Vec<String>, String) {
    let containers: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .filter(|c| containers.contains(c))
        .cloned();
    let default = annotated
        .or_else(|| containers.first().cloned())
        .unwrap_or_default();
    (containers, default)
}

/// Every pod record of every lab whose owner is alive.
pub fn pods() -> Vec<PodRecord> {
    let mut out = Vec::new();
    let Ok(labs) = std::fs::read_dir(STATE_ROOT) else {
        return out;
    };
    for lab in labs.flatten() {
        let id = lab.file_name().to_string_lossy().into_owned();
        if !cleanup::lab_pid(&id).is_some_and(cleanup::is_alive) {
            continue;
        }
        let Ok(pods) = std::fs::read_dir(lab.path().join("pods")) else {
            continue;
        };
        for pod in pods.flatten() {
            let file = pod.path().join(POD_FILE);
            if let Some(r) = std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                out.push(r);
            }
        }
    }
    out.sort_by(|a: &PodRecord, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// `CONTROLLER PATH` lines of a container's cgroups (`lab.sh cgroup POD [CONTAINER]`);
/// `pod` is `NAME`, `pod/NAME` or `NAMESPACE/NAME`.
pub fn cgroup_lines(pod: &str, container: Option<&str>) -> Result<Vec<String>> {
    let name = pod.strip_prefix("pod/").unwrap_or(pod);
    let (namespace, name) = name
        .split_once('/')
        .map_or((None, name), |(n, p)| (Some(n), p));
    let all = pods();
    let found: Vec<&PodRecord> = all
        .iter()
        .filter(|r| r.name == name && namespace.is_none_or(|n| n == r.namespace))
        .collect();
    let record = match found.as_slice() {
        [one] => *one,
        [] => bail!("no pod {pod:?} in a running lab (`scripts/lab.sh status` lists them)"),
        _ => bail!("pod {pod:?} exists in several namespaces: write NAMESPACE/NAME"),
    };
    let container = container.unwrap_or(&record.default_container);
    if !record.containers.iter().any(|c| c == container) {
        bail!(
            "pod {} has no container {container:?} (it has {})",
            record.name,
            record.containers.join(", ")
        );
    }
    let layout = Layout::detect()?;
    let cg = Cgroup {
        layout,
        rel: record.cgroup.join(container),
    };
    Ok(cg
        .describe()
        .into_iter()
        .map(|(controller, path)| format!("{controller} {}", path.display()))
        .collect())
}

/// The pod directory of a record.
pub fn pod_dir(record: &PodRecord) -> PathBuf {
    Path::new(STATE_ROOT)
        .join(&record.lab)
        .join("pods")
        .join(&record.uid)
}
