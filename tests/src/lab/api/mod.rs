//! The lab on the Kubernetes API test server: the server of `kube_server` plus the
//! lab's resources, admission plugins, subresources and controllers, with a real node
//! behind them (`node.rs`). kubectl and kube-rs talk to it as to a cluster.
//!
//! # Layout
//! - `resources.rs`: the types the lab adds; `admission.rs`: binding pods to the node,
//!   ClusterIPs, Secret data.
//! - `kubelet.rs`: pods of the node started, stopped and reported for real; `refs.rs`:
//!   ConfigMaps and Secrets for them; `events.rs`: the node's Events in the API.
//! - `endpoints.rs`: Endpoints, EndpointSlices and the node's Service rules.
//! - `metrics.rs`: `metrics.k8s.io` from cgroups; `autoscaler.rs`: the HPA controller.
//! - `streams.rs` + `logs.rs`: exec, attach, log, ephemeralcontainers.

pub mod admission;
pub mod autoscaler;
pub mod endpoints;
pub mod events;
pub mod kubelet;
pub mod logs;
pub mod metrics;
pub mod refs;
pub mod resources;
pub mod streams;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::kube_server::api::Cluster;
use crate::kube_server::controllers::{Controller, ReconcileLoop};
use crate::kube_server::fixture::{Fixture, ServerFixture};
use crate::kube_server::registry::PODS;
use crate::kube_server::{ApiServer, Builder};
use crate::lab::node::Node;
use crate::lab::usage::Sampler;

/// The lab's one node.
pub const NODE_NAME: &str = "lab-node";

/// The lab's clock settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// HPA sync period (Kubernetes: 15 s).
    pub hpa_sync: Duration,
    /// How often container usage is read.
    pub metrics_period: Duration,
    /// Controllers' reaction delay.
    pub controller_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hpa_sync: Duration::from_secs(5),
            metrics_period: Duration::from_secs(1),
            controller_delay: Duration::from_millis(20),
        }
    }
}

/// Tasks that need the cluster (events, metrics, HPA), started with the server.
struct Background {
    node: Arc<Node>,
    settings: Settings,
    sampler: Arc<Mutex<Sampler>>,
}

impl Controller for Background {
    fn name(&self) -> &'static str {
        "lab-background"
    }

    fn start(self: Box<Self>, cluster: Arc<Cluster>) -> JoinHandle<()> {
        if let Some(events) = self.node.take_events() {
            tokio::spawn(events::record(cluster.clone(), events));
        }
        tokio::spawn(autoscaler::run(
            cluster.clone(),
            self.sampler.clone(),
            self.settings.hpa_sync,
        ));
        tokio::spawn(metrics::run(
            cluster,
            self.node.clone(),
            self.sampler,
            self.settings.metrics_period,
        ))
    }
}

/// The API server for `node`.
pub fn server(node: Arc<Node>, settings: Settings) -> anyhow::Result<ApiServer> {
    let fixture = Fixture {
        server: ServerFixture {
            watch_history: 20_000,
            controller_delay_ms: u64::try_from(settings.controller_delay.as_millis()).unwrap_or(20),
            ..ServerFixture::default()
        },
        // No simulated node: every pod runs on the lab's node.
        nodes: Vec::new(),
        namespaces: Vec::new(),
    };
    let mut builder = Builder::new(fixture)
        .admission(Box::new(admission::BindToNode))
        .admission(Box::new(admission::ServiceIps { node: node.clone() }))
        .admission(Box::new(admission::SecretData))
        .controller(kubelet::Kubelet::controller(node.clone()))
        .controller(Box::new(ReconcileLoop {
            reconciler: Arc::new(endpoints::Endpoints::new(node.clone())),
            delay: settings.controller_delay,
        }))
        .controller(Box::new(Background {
            node: node.clone(),
            settings,
            sampler: Arc::new(Mutex::new(Sampler::default())),
        }));
    for rt in resources::types() {
        builder = builder.resource(rt);
    }
    for (name, handler) in streams::handlers(node.clone()) {
        builder = builder.subresource(PODS, name, handler);
    }
    let api = builder.build()?;
    register_node(&api.control().cluster(), &node)?;
    Ok(api)
}

/// The lab's Node object (Ready, its address and capacity).
fn register_node(cluster: &Cluster, node: &Node) -> anyhow::Result<()> {
    use crate::kube_server::registry::NODES;
    let rt = *cluster
        .resource(NODES)
        .map_err(|e| anyhow::anyhow!("{}", e.status_text()))?;
    let mut object = crate::kube_server::objects::node(NODE_NAME);
    object["status"]["addresses"] = serde_json::json!([
        {"type": "InternalIP", "address": node.ctx.host_ip},
        {"type": "Hostname", "address": NODE_NAME}
    ]);
    object["status"]["capacity"] = serde_json::json!({"cpu": "2", "memory": "24Gi", "pods": "61"});
    object["status"]["allocatable"] = object["status"]["capacity"].clone();
    object["status"]["nodeInfo"]["kubeletVersion"] = "v1.34.0-chaos-lab".into();
    object["metadata"]["labels"] = serde_json::json!({"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"});
    cluster
        .create(&rt, "", &object)
        .map_err(|e| anyhow::anyhow!("cannot create the lab's Node: {}", e.status_text()))?;
    Ok(())
}

/// Runs a whole lab until `shutdown`: the node, the API server on `listen`, the admin
/// kubeconfig written to `kubeconfig` (namespace lomash-wood); `ready` is called with the
/// server's address once it accepts connections. Every pod is stopped at the end; the
/// node's network, cgroups and state go when the last reference to it is dropped.
pub async fn run(
    node: Arc<Node>,
    settings: Settings,
    listen: &str,
    kubeconfig: &std::path::Path,
    ready: impl FnOnce(std::net::SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let api = server(node.clone(), settings)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    write_private(
        kubeconfig,
        &api.control().admin_kubeconfig(addr, "lomash-wood"),
    )?;
    ready(addr);
    api.serve(listener, shutdown).await;
    node.stop_all().await;
    Ok(())
}

/// Writes a file readable by its owner only (the kubeconfig holds the admin's key).
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
