//! The resolve step of a remote run: connect, ask for every permission the run needs
//! (SelfSubjectAccessReview), look at the freeze switch, find the pods and the peer
//! Service, the binary to copy or the namespace's Pod Security labels, and (live exec
//! runs) probe the containers. Nothing is touched; `judge` (the fault's preflight) turns
//! the facts into a refusal or a go.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

use super::access::{self, Need, Shape};
use super::args::Settings;
use super::binary::{self, Binary};
use super::exec::Place;
use super::peers::{self, Peer};
use super::pods::{self, PodTarget};
use super::probe::{self, Facts};
use super::session::Layout;
use super::{Delivery, Request, security, tar};
use crate::error::{ChaosError, Result};
use crate::kube::client::{ClientOptions, connect};
use crate::kube::freeze::{self, Frozen};
use crate::kube::retry::ThrottleCount;
use crate::kube::{Connection, api_error};

/// What resolve found.
#[derive(Debug)]
pub struct Resolved {
    pub conn: Connection,
    /// The layout with the peer's arguments in the in-pod command.
    pub layout: Layout,
    pub pods: Vec<PodTarget>,
    pub skipped: Vec<String>,
    pub peer: Option<Peer>,
    pub binary: Option<Binary>,
    /// Every permission asked for (SelfSubjectAccessReview), and those refused.
    pub checked: Vec<Need>,
    pub denied: Vec<Need>,
    pub frozen: Option<Frozen>,
    /// Ephemeral delivery: the namespace's labels (Pod Security).
    pub labels: Option<BTreeMap<String, String>>,
    /// Live exec runs: each container's probe (pod, container, facts or the error).
    pub probes: Vec<(String, String, std::result::Result<Facts, String>)>,
}

impl Resolved {
    pub fn describe_peer(&self, peer: &Peer) -> String {
        let endpoints: Vec<String> = peer.endpoints.iter().map(ToString::to_string).collect();
        format!(
            "service/{}: ClusterIP {}, endpoints {}",
            peer.service,
            peer.cluster_ip
                .map_or_else(|| "none (headless)".to_owned(), |ip| ip.to_string()),
            if endpoints.is_empty() {
                "none".to_owned()
            } else {
                endpoints.join(", ")
            }
        )
    }

    /// The tar stream of exec delivery.
    pub fn archive(&self, tool: &str) -> Option<Arc<Vec<u8>>> {
        let b = self.binary.as_ref()?;
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Some(Arc::new(tar::archive(
            &self.layout.name(),
            tool,
            &b.bytes,
            mtime,
        )))
    }

    /// The preflight: every fact judged, the first refusal returned.
    pub fn judge(&self, settings: &Settings) -> Result<()> {
        if let Some(e) = access::refusal(&self.denied) {
            return Err(e);
        }
        if let Some(frozen) = &self.frozen {
            return Err(frozen.refusal());
        }
        if let Some(labels) = &self.labels {
            security::judge(&settings.namespace, labels)?;
        }
        let arch = self
            .binary
            .as_ref()
            .map(|b| b.elf.arch())
            .unwrap_or_default();
        let mut refusals = Vec::new();
        for (pod, container, facts) in &self.probes {
            let judged = match facts {
                Ok(f) => probe::judge(pod, container, &settings.remote_dir, f, &arch),
                Err(e) => Err(ChaosError::Refused {
                    rule: "container",
                    message: format!("pod {pod} (container {container}): cannot be probed: {e}"),
                }),
            };
            if let Err(ChaosError::Refused { message, .. }) = judged {
                refusals.push(message);
            }
        }
        if !refusals.is_empty() {
            return Err(ChaosError::Refused {
                rule: "container",
                message: refusals.join("; "),
            });
        }
        Ok(())
    }
}

async fn labels_of(conn: &Connection, namespace: &str) -> Result<BTreeMap<String, String>> {
    let api: Api<Namespace> = Api::all(conn.client.clone());
    let ns = api
        .get(namespace)
        .await
        .map_err(|e| api_error(e, "get", "namespaces", "", conn))?;
    Ok(ns.metadata.labels.unwrap_or_default())
}

async fn probe_all(
    conn: &Connection,
    settings: &Settings,
    pods: &[PodTarget],
) -> Vec<(String, String, std::result::Result<Facts, String>)> {
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.max_parallel));
    let probes = pods.iter().map(|p| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire_owned().await;
            let place = Place {
                conn,
                namespace: &settings.namespace,
                pod: &p.name,
                container: &p.container,
            };
            let facts = probe::probe(place, &settings.remote_dir)
                .await
                .map_err(|e| e.to_string());
            (p.name.clone(), p.container.clone(), facts)
        }
    });
    futures_util::future::join_all(probes).await
}

/// Resolves everything a remote run of `request` with `layout` needs; touches nothing.
/// Live runs (`live`) also probe the containers. (It takes the run's parts, not the
/// `RemoteRun` of fault.rs, which uses this module.)
pub async fn resolve(
    s: &Settings,
    request: &Request,
    layout: &Layout,
    live: bool,
) -> Result<Resolved> {
    let options = ClientOptions {
        kubeconfig: s.kubeconfig.clone(),
        context: s.context.clone(),
    };
    let conn = connect(&options).await?;
    let shape = Shape {
        delivery: request.delivery,
        peer: request.peer.is_some(),
        keep_peer_current: request.peer.as_ref().is_some_and(|p| p.update.is_some()),
        watch_pods: request.watch_oom,
    };
    let checked = access::needs(s, shape);
    let mut resolved = Resolved {
        conn: conn.clone(),
        layout: layout.clone(),
        pods: Vec::new(),
        skipped: Vec::new(),
        peer: None,
        binary: None,
        denied: access::denied(&conn, &checked).await?,
        checked,
        frozen: None,
        labels: None,
        probes: Vec::new(),
    };
    if !resolved.denied.is_empty() {
        // Reading further would fail on the same missing permissions; preflight refuses.
        return Ok(resolved);
    }
    resolved.frozen = freeze::check(&conn, &s.freeze_namespaces).await?;
    let count = ThrottleCount::default();
    let (pods, skipped) = pods::resolve(&conn, s, &count).await?;
    resolved.pods = pods;
    resolved.skipped = skipped;
    if let Some(use_) = &request.peer {
        let peer = peers::fetch(&conn, &s.namespace, &use_.service, use_.flag, &count).await?;
        let extra = (use_.args)(&peer, use_.port)?;
        resolved.layout.argv = with_extra(&layout.argv, &extra);
        resolved.peer = Some(peer);
    }
    match request.delivery {
        Delivery::Exec => {
            resolved.binary = Some(binary::locate(layout.tool)?);
            if live {
                resolved.probes = probe_all(&conn, s, &resolved.pods).await;
            }
        }
        Delivery::Ephemeral => resolved.labels = Some(labels_of(&conn, &s.namespace).await?),
    }
    Ok(resolved)
}

/// The in-pod arguments with a tool's `extra` before the fixed tail (`--run-id` ...).
fn with_extra(argv: &[String], extra: &[String]) -> Vec<String> {
    let tail = argv
        .iter()
        .position(|a| a == "--run-id")
        .unwrap_or(argv.len());
    let mut out = argv[..tail].to_vec();
    out.extend(extra.iter().cloned());
    out.extend(argv[tail..].iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn extra_arguments_go_before_the_tail() {
        let argv: Vec<String> = ["-p", "3000", "--run-id", "r", "-y"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let extra = vec!["-H".to_owned(), "203.0.113.1".to_owned()];
        assert_eq!(
            super::with_extra(&argv, &extra),
            ["-p", "3000", "-H", "203.0.113.1", "--run-id", "r", "-y"]
        );
    }
}
