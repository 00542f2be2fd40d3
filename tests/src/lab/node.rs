//! The lab node: the kubelet side of the lab. It owns the node's network, the lab's
//! cgroup, the Service rules and every pod; it starts pods and ephemeral containers,
//! deletes pods with their grace period, and removes everything it created when shut
//! down or dropped (even when a test panics).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cgroups::{Cgroup, Layout, Limits};
use super::context::{Context, LabEvent, NodeConfig};
use super::env::Refs;
use super::hosts::ServiceName;
use super::plan::{Plan, SlotLock};
use super::pod::PodShared;
use super::proxy::{self, Route};
use super::worker::{self, Job};
use super::{cleanup, net, terminate};

/// Pod numbers 0..61 (addresses .2 to .62 of the pod range).
const POD_NUMBERS: u32 = 61;

struct PodEntry {
    shared: Arc<PodShared>,
    stop: watch::Sender<Option<Instant>>,
    workers: Vec<JoinHandle<()>>,
}

pub struct Node {
    pub ctx: Arc<Context>,
    _slot: SlotLock,
    root: Cgroup,
    pods: Mutex<BTreeMap<String, PodEntry>>,
    numbers: Mutex<BTreeSet<u32>>,
    next_number: AtomicU32,
    service_ips: Mutex<BTreeMap<(String, String), Ipv4Addr>>,
    events: Mutex<Option<UnboundedReceiver<LabEvent>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Node {
    /// Takes a lab slot, removes what dead labs left behind, and creates the node.
    pub fn start(config: NodeConfig) -> Result<Node> {
        if !nix::unistd::Uid::effective().is_root() {
            bail!("the lab needs root (network namespaces, cgroups, mounts)");
        }
        let lab_init = config.lab_init();
        if !lab_init.is_file() {
            bail!(
                "{} is missing: run `cargo build -p chaos-tests --bins`",
                lab_init.display()
            );
        }
        cleanup::sweep_dead_labs();
        let slot = SlotLock::acquire(Duration::from_secs(60))?;
        let plan = Plan::new(std::process::id(), slot.slot);
        let layout = Layout::detect()?;
        std::fs::create_dir_all(plan.state_dir().join("pods"))
            .with_context(|| format!("cannot create {}", plan.state_dir().display()))?;
        let root = match Self::create_infra(&plan, &layout) {
            Ok(root) => root,
            Err(e) => {
                cleanup::remove_lab(&plan, &layout);
                return Err(e);
            }
        };
        let mut config = config;
        match super::stage::stage(&config.images, &plan.state_dir().join("bin")) {
            Ok(staged) => config.images = staged,
            Err(e) => {
                cleanup::remove_lab(&plan, &layout);
                return Err(e);
            }
        }
        let (tx, rx) = unbounded_channel();
        let ctx = Arc::new(Context {
            host_ip: plan.host_link().0.to_string(),
            plan,
            layout,
            config,
            services: Mutex::new(Vec::new()),
            events: tx,
        });
        Ok(Node {
            ctx,
            _slot: slot,
            root,
            pods: Mutex::new(BTreeMap::new()),
            numbers: Mutex::new(BTreeSet::new()),
            next_number: AtomicU32::new(0),
            service_ips: Mutex::new(BTreeMap::new()),
            events: Mutex::new(Some(rx)),
        })
    }

    fn create_infra(plan: &Plan, layout: &Layout) -> Result<Cgroup> {
        std::fs::write(plan.state_dir().join("slot"), plan.slot.to_string())?;
        net::create_node(plan)?;
        let root = Cgroup::create(layout, Path::new(&plan.cgroup_name()), &Limits::default())?;
        proxy::apply(plan, &[])?;
        Ok(root)
    }

    pub fn plan(&self) -> &Plan {
        &self.ctx.plan
    }

    /// The node's Events, once (the API side takes them).
    pub fn take_events(&self) -> Option<UnboundedReceiver<LabEvent>> {
        lock(&self.events).take()
    }

    /// Starts `pod` (which needs a name and a uid). Call inside a tokio runtime.
    pub fn run_pod(&self, pod: Pod, refs: Arc<dyn Refs + Send + Sync>) -> Result<Arc<PodShared>> {
        let number = {
            // Round robin from the last number given: a new pod does not get the address
            // of one that just went (peers' neighbour caches and conntrack still know it).
            let mut used = lock(&self.numbers);
            let start = self.next_number.load(Ordering::Relaxed) % POD_NUMBERS;
            let n = (start..POD_NUMBERS)
                .chain(0..start)
                .find(|n| !used.contains(n))
                .context("the lab's pod range is full (61 pods)")?;
            used.insert(n);
            self.next_number.store(n + 1, Ordering::Relaxed);
            n
        };
        let shared = match PodShared::create(self.ctx.clone(), pod, number, refs) {
            Ok(s) => s,
            Err(e) => {
                lock(&self.numbers).remove(&number);
                return Err(e);
            }
        };
        let (stop, _) = watch::channel(None);
        let containers: Vec<Container> = shared
            .pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let workers = containers
            .into_iter()
            .map(|container| {
                let job = Job {
                    container,
                    ephemeral: false,
                    target: None,
                };
                tokio::spawn(worker::run(shared.clone(), job, stop.subscribe()))
            })
            .collect();
        shared.publish();
        lock(&self.pods).insert(
            shared.uid.clone(),
            PodEntry {
                shared: shared.clone(),
                stop,
                workers,
            },
        );
        Ok(shared)
    }

    pub fn pod(&self, uid: &str) -> Option<Arc<PodShared>> {
        lock(&self.pods).get(uid).map(|e| e.shared.clone())
    }

    pub fn pods(&self) -> Vec<Arc<PodShared>> {
        lock(&self.pods)
            .values()
            .map(|e| e.shared.clone())
            .collect()
    }

    /// Starts an ephemeral container in a running pod (never restarted).
    pub fn add_ephemeral(&self, uid: &str, ec: &EphemeralContainer) -> Result<()> {
        let mut pods = lock(&self.pods);
        let Some(entry) = pods.get_mut(uid) else {
            bail!("pod {uid} is not on this node");
        };
        if entry.shared.lock().containers.contains_key(&ec.name) {
            bail!("a container named {:?} already exists in the pod", ec.name);
        }
        let mut value = serde_json::to_value(ec)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("targetContainerName");
        }
        let container: Container = serde_json::from_value(value)?;
        let job = Job {
            container,
            ephemeral: true,
            target: ec.target_container_name.clone(),
        };
        let stop = entry.stop.subscribe();
        entry
            .workers
            .push(tokio::spawn(worker::run(entry.shared.clone(), job, stop)));
        Ok(())
    }

    /// Deletes a pod: Ready drops at once, every container gets its preStop hook and
    /// SIGTERM, SIGKILL at the end of `grace` (default: the pod's), then the sandbox is
    /// removed. Returns when the pod is gone.
    pub async fn delete_pod(&self, uid: &str, grace: Option<Duration>) {
        let (shared, workers) = {
            let mut pods = lock(&self.pods);
            let Some(entry) = pods.get_mut(uid) else {
                return;
            };
            let grace = grace.unwrap_or_else(|| terminate::grace(&entry.shared.pod));
            entry.shared.lock().terminating = true;
            entry.shared.publish();
            let deadline = Instant::now() + grace;
            // A second delete with a shorter grace shortens it (never lengthens).
            entry.stop.send_if_modified(|d| match d {
                Some(old) if *old <= deadline => false,
                _ => {
                    *d = Some(deadline);
                    true
                }
            });
            (entry.shared.clone(), std::mem::take(&mut entry.workers))
        };
        for w in workers {
            let _ = w.await;
        }
        shared.teardown();
        lock(&self.pods).remove(uid);
        lock(&self.numbers).remove(&shared.number);
    }

    /// A stable ClusterIP for Service `namespace/name`.
    pub fn service_ip(&self, namespace: &str, name: &str) -> Result<Ipv4Addr> {
        let mut ips = lock(&self.service_ips);
        if let Some(ip) = ips.get(&(namespace.to_owned(), name.to_owned())) {
            return Ok(*ip);
        }
        let used: BTreeSet<Ipv4Addr> = ips.values().copied().collect();
        let ip = (0..30)
            .filter_map(|n| self.ctx.plan.service_ip(n).ok())
            .find(|ip| !used.contains(ip))
            .context("the lab's Service range is full")?;
        ips.insert((namespace.to_owned(), name.to_owned()), ip);
        Ok(ip)
    }

    /// Sets the Services pods can name and the rules that route them.
    pub fn set_services(&self, names: Vec<ServiceName>, routes: &[Route]) -> Result<()> {
        let changed = {
            let mut current = lock(&self.ctx.services);
            let changed = *current != names;
            *current = names;
            changed
        };
        if changed {
            for pod in self.pods() {
                pod.write_hosts()?;
            }
        }
        proxy::apply(&self.ctx.plan, routes)
    }

    /// Deletes every pod at once (grace 0); the node itself goes when dropped.
    pub async fn stop_all(&self) {
        let uids: Vec<String> = lock(&self.pods).keys().cloned().collect();
        let deletes = uids
            .iter()
            .map(|u| self.delete_pod(u, Some(Duration::ZERO)));
        futures_util::future::join_all(deletes).await;
    }

    /// Deletes every pod at once (grace 0) and removes the node.
    pub async fn shutdown(self) {
        self.stop_all().await;
        // Drop removes the rest.
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for entry in lock(&self.pods).values() {
            for w in &entry.workers {
                w.abort();
            }
        }
        let _ = self.root.remove();
        cleanup::remove_lab(&self.ctx.plan, &self.ctx.layout);
    }
}
