//! From a pod's container spec to lab-init's [`Launch`]: image, identity, environment,
//! command, mounts and cgroups; and the container's cgroup limits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Container;

use super::cgroups::{Cgroup, Limits};
use super::context::OomMode;
use super::env::{self, EnvInput};
use super::images;
use super::launch::{Launch, NewSandbox, Sandbox};
use super::pod::PodShared;
use super::{quantity, security};

/// Why a launch could not be built: the waiting reason the kubelet shows.
#[derive(Debug)]
pub enum SpecError {
    /// The image is not in the lab's table (`ErrImagePull`).
    Image(anyhow::Error),
    /// Anything else in the spec (`CreateContainerConfigError`).
    Config(anyhow::Error),
}

/// The container's cgroup limits (a missing CPU request defaults to the limit).
pub fn limits(container: &Container, oom: OomMode) -> Result<Limits> {
    let r = container.resources.clone().unwrap_or_default();
    let limits = r.limits.unwrap_or_default();
    let requests = r.requests.unwrap_or_default();
    let cpu = |m: &BTreeMap<_, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        m.get("cpu").map(|q| quantity::cpu_millis(&q.0)).transpose()
    };
    let cpu_limit = cpu(&limits)?;
    Ok(Limits {
        memory_bytes: limits
            .get("memory")
            .map(|q| quantity::bytes(&q.0))
            .transpose()?,
        cpu_limit_millis: cpu_limit,
        cpu_request_millis: cpu(&requests)?.or(cpu_limit),
        oom_group: oom == OomMode::Group,
    })
}

/// The launch of instance `instance` of `container` in `pod`, inside `cgroup`;
/// `pid_of` joins that process's PID namespace (an ephemeral container's target).
pub fn launch(
    pod: &PodShared,
    container: &Container,
    cgroup: &Cgroup,
    instance: u32,
    pid_of: Option<i32>,
) -> Result<(Launch, PathBuf), SpecError> {
    let image_name = container.image.clone().unwrap_or_default();
    let image = images::resolve(&image_name, &pod.ctx.config.images).map_err(SpecError::Image)?;
    let spec = pod.pod.spec.as_ref();
    let identity = security::identity(
        spec.and_then(|s| s.security_context.as_ref()),
        container.security_context.as_ref(),
    )
    .map_err(SpecError::Config)?;
    let pod_ip = pod.net.ip.to_string();
    let service_env = service_env(pod);
    let input = EnvInput {
        pod: &pod.pod,
        pod_ip: &pod_ip,
        host_ip: &pod.ctx.host_ip,
        image_env: &image.env,
        service_env: &service_env,
        refs: pod.refs.as_ref(),
    };
    let mut env = env::build(container, &input).map_err(SpecError::Config)?;
    if !env.iter().any(|(k, _)| k == "HOME") {
        let home = if identity.uid == 0 { "/root" } else { "/" };
        env.push(("HOME".to_owned(), home.to_owned()));
    }
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let expand = |v: &[String]| v.iter().map(|s| env::expand(s, &vars)).collect::<Vec<_>>();
    let command = expand(container.command.as_deref().unwrap_or_default());
    let args = container.args.as_deref().map(expand);
    let argv = images::argv(&image, &command, args.as_deref());
    if argv.is_empty() {
        return Err(SpecError::Config(anyhow::anyhow!("no command specified")));
    }
    let mut mounts = pod.mounts(container).map_err(SpecError::Config)?;
    mounts.extend(image.mounts);
    let (launch_file, pid_file) =
        super::container::instance_files(&pod.dir, &container.name, instance);
    let launch = Launch {
        argv,
        env,
        working_dir: container.working_dir.clone(),
        identity,
        cgroup_procs: cgroup.procs_files(),
        shim_cgroup_procs: pod.shim_cgroup.procs_files(),
        pid_file,
        sandbox: Sandbox::New(NewSandbox {
            net_ns: Path::new("/run/netns").join(&pod.net.ns),
            pid_of,
            hostname: pod.hostname.clone(),
            read_only_root: security::read_only_root(container),
            mounts,
            hidden: vec![pod.ctx.plan.state_dir().join("pods")],
        }),
    };
    Ok((launch, launch_file))
}

/// Service links (`REDIS_SERVICE_HOST`, `REDIS_SERVICE_PORT`) for the pod's namespace,
/// unless `enableServiceLinks: false`.
fn service_env(pod: &PodShared) -> Vec<(String, String)> {
    let links = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    if !links {
        return Vec::new();
    }
    pod.ctx
        .services()
        .iter()
        .filter(|s| s.namespace == pod.namespace)
        .map(|s| {
            let key = s.name.to_ascii_uppercase().replace('-', "_");
            (format!("{key}_SERVICE_HOST"), s.ip.to_string())
        })
        .collect()
}

/// The container's cgroup (created when missing, with its limits).
pub fn container_cgroup(pod: &PodShared, container: &Container) -> Result<Cgroup> {
    let limits = limits(container, pod.oom_mode())
        .with_context(|| format!("bad resources in container {}", container.name))?;
    Cgroup::create(
        &pod.ctx.layout,
        &pod.cgroup.rel.join(&container.name),
        &limits,
    )
}
