//! One pod on the lab node: its sandbox (network namespace, pod cgroup, state directory
//! with volumes, hosts, resolv.conf and hostname files), its containers' state, and the
//! PodStatus composed from them.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Container, Pod, PodStatus, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;

use super::cgroups::{Cgroup, Limits};
use super::clock;
use super::context::{Context, LabEvent, OomMode};
use super::env::Refs;
use super::hosts;
use super::launch::BindMount;
use super::net::{self, PodNet};
pub use super::pod_state::{ContainerSlot, PodState};

/// Pod annotation choosing what an OOM kill does to a container of this pod: `group`
/// (the whole container ends, as on cgroup v2) or `process` (only the killed process
/// dies, as on cgroup v1). Default: the node's setting.
pub const OOM_ANNOTATION: &str = "lab.chaos-tools/oom-kill";

/// A pod's sandbox and state, shared by its container workers and the node.
pub struct PodShared {
    pub ctx: Arc<Context>,
    pub pod: Pod,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub hostname: String,
    pub dir: PathBuf,
    pub net: PodNet,
    pub cgroup: Cgroup,
    /// Where the shims go once their container runs (the pod's cgroup on v1, a leaf below
    /// it on v2: [`super::cgroups::shim_rel`]).
    pub shim_cgroup: Cgroup,
    pub number: u32,
    pub refs: Arc<dyn Refs + Send + Sync>,
    pub started: Time,
    state: Mutex<PodState>,
    status: watch::Sender<PodStatus>,
}

impl PodShared {
    /// Creates the sandbox of `pod` as pod number `number`; undone on error.
    pub fn create(
        ctx: Arc<Context>,
        pod: Pod,
        number: u32,
        refs: Arc<dyn Refs + Send + Sync>,
    ) -> Result<Arc<PodShared>> {
        let meta = &pod.metadata;
        let (Some(uid), Some(name)) = (meta.uid.clone(), meta.name.clone()) else {
            bail!("a pod needs a name and a uid");
        };
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let hostname = pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| name.chars().take(63).collect());
        let dir = ctx.plan.state_dir().join("pods").join(&uid);
        let rel = Path::new(&ctx.plan.cgroup_name()).join(&uid);
        let net = net::create_pod(&ctx.plan, number)?;
        let cgroups = Cgroup::create(&ctx.layout, &rel, &Limits::default()).and_then(|pod| {
            let shim_rel = super::cgroups::shim_rel(&ctx.layout, &rel);
            let shims = Cgroup::create(&ctx.layout, &shim_rel, &Limits::default());
            if shims.is_err() {
                let _ = pod.remove();
            }
            Ok((pod, shims?))
        });
        let (cgroup, shim_cgroup) = match cgroups {
            Ok(c) => c,
            Err(e) => {
                net::delete_pod(&ctx.plan, &net);
                return Err(e);
            }
        };
        let (status, _) = watch::channel(PodStatus::default());
        let shared = Arc::new(PodShared {
            ctx,
            pod,
            uid,
            namespace,
            name,
            hostname,
            dir,
            net,
            cgroup,
            shim_cgroup,
            number,
            refs,
            started: clock::time(),
            state: Mutex::new(PodState::default()),
            status,
        });
        if let Err(e) = shared.prepare_dir() {
            shared.teardown();
            return Err(e.context(format!("cannot prepare pod {}", shared.name)));
        }
        Ok(shared)
    }

    fn prepare_dir(&self) -> Result<()> {
        for sub in ["run", "volumes", "etc", "logs"] {
            let d = self.dir.join(sub);
            std::fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        let (containers, default_container) = super::inventory::containers_of(&self.pod);
        let record = super::inventory::PodRecord {
            lab: self.ctx.plan.id.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            containers,
            default_container,
            net_ns: self.net.ns.clone(),
            ip: self.net.ip.to_string(),
            cgroup: self.cgroup.rel.clone(),
        };
        std::fs::write(
            self.dir.join(super::inventory::POD_FILE),
            serde_json::to_vec(&record)?,
        )
        .context("cannot write the pod record")?;
        self.write_hosts()?;
        hosts::write_in_place(
            &self.etc("resolv.conf"),
            &hosts::resolv_conf(&self.namespace),
        )?;
        hosts::write_in_place(&self.etc("hostname"), &format!("{}\n", self.hostname))?;
        let fs_group = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.as_ref())
            .and_then(|s| s.fs_group);
        for volume in self
            .pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
        {
            self.prepare_volume(volume, fs_group)?;
        }
        Ok(())
    }

    fn etc(&self, file: &str) -> PathBuf {
        self.dir.join("etc").join(file)
    }

    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join("volumes").join(name)
    }

    /// emptyDir: a private directory, mode 0777 (setgid and owned by fsGroup when set);
    /// configMap and Secret: their keys as files (read-only mounts).
    fn prepare_volume(&self, volume: &Volume, fs_group: Option<i64>) -> Result<()> {
        let dir = self.volume_dir(&volume.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let data =
            if volume.empty_dir.is_some() {
                None
            } else if let Some(cm) = &volume.config_map {
                Some(self.refs.config_map(&cm.name).with_context(|| {
                    format!(
                        "configmap {:?} not found for volume {}",
                        cm.name, volume.name
                    )
                })?)
            } else if let Some(secret) = &volume.secret {
                let name = secret.secret_name.clone().unwrap_or_default();
                Some(self.refs.secret(&name).with_context(|| {
                    format!("secret {name:?} not found for volume {}", volume.name)
                })?)
            } else {
                bail!(
                    "volume {} has a type the lab does not support (emptyDir, configMap, secret)",
                    volume.name
                );
            };
        let mut mode = 0o777;
        if let Some(gid) = fs_group {
            let gid = u32::try_from(gid).context("fsGroup out of range")?;
            chown(&dir, None, Some(gid)).with_context(|| format!("chown {}", dir.display()))?;
            mode |= 0o2000;
        }
        for (key, value) in data.iter().flatten() {
            std::fs::write(dir.join(key), value).with_context(|| format!("write {key}"))?;
            mode = 0o755;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", dir.display()))
    }

    /// Rewrites /etc/hosts from the node's current Services.
    pub fn write_hosts(&self) -> Result<()> {
        let text = hosts::hosts_file(
            &self.hostname,
            self.net.ip,
            &self.namespace,
            &self.ctx.services(),
        );
        hosts::write_in_place(&self.etc("hosts"), &text)
    }

    /// The bind mounts of `container`: its volumes, then hosts, resolv.conf, hostname.
    pub fn mounts(&self, container: &Container) -> Result<Vec<BindMount>> {
        let volumes = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for vm in container.volume_mounts.iter().flatten() {
            let Some(volume) = volumes.iter().find(|v| v.name == vm.name) else {
                bail!("volumeMount {} names no volume of the pod", vm.name);
            };
            let mut source = self.volume_dir(&vm.name);
            if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sub.split('/').any(|part| part == "..") {
                    bail!("subPath {sub:?} must not contain '..'");
                }
                source = source.join(sub);
            }
            let read_only = vm.read_only == Some(true) || volume.empty_dir.is_none();
            out.push(BindMount {
                source,
                target: PathBuf::from(&vm.mount_path),
                read_only,
            });
        }
        for file in ["hosts", "resolv.conf", "hostname"] {
            let target = Path::new("/etc").join(file);
            // Bind targets must exist; the lab never creates files on the host's root.
            if target.exists() {
                out.push(BindMount {
                    source: self.etc(file),
                    target,
                    read_only: true,
                });
            }
        }
        Ok(out)
    }

    /// This pod's OOM-kill behaviour ([`OOM_ANNOTATION`], else the node's).
    pub fn oom_mode(&self) -> OomMode {
        let annotation = self
            .pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OOM_ANNOTATION));
        match annotation.map(String::as_str) {
            Some("process") => OomMode::Process,
            Some("group") => OomMode::Group,
            _ => self.ctx.config.oom,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, PodState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<PodStatus> {
        self.status.subscribe()
    }

    pub fn status(&self) -> PodStatus {
        self.status.borrow().clone()
    }

    /// Records an Event (and sends it to the node's sink).
    pub fn event(&self, container: Option<&str>, warning: bool, reason: &str, message: String) {
        let field_path = container.map(|c| {
            let ephemeral = self.lock().containers.get(c).is_some_and(|s| s.ephemeral);
            let kind = if ephemeral {
                "ephemeralContainers"
            } else {
                "containers"
            };
            format!("spec.{kind}{{{c}}}")
        });
        let event = LabEvent {
            namespace: self.namespace.clone(),
            pod: self.name.clone(),
            uid: self.uid.clone(),
            field_path,
            warning,
            reason: reason.to_owned(),
            message,
            at: clock::now(),
        };
        self.lock().events.push(event.clone());
        let _ = self.ctx.events.send(event);
    }

    /// Recomputes the PodStatus from the containers and publishes it.
    pub fn publish(&self) {
        let status = {
            let mut state = self.lock();
            let view = super::status::PodView {
                pod: &self.pod,
                ip: self.net.ip.to_string(),
                host_ip: &self.ctx.host_ip,
                started: &self.started,
            };
            super::status::compose(&view, &mut state)
        };
        self.status.send_replace(status);
    }

    /// Kills what is left and removes the sandbox. Best effort, idempotent.
    pub fn teardown(&self) {
        let _ = self.cgroup.remove();
        net::delete_pod(&self.ctx.plan, &self.net);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
