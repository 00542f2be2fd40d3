//! The life of one container, as the kubelet runs it: start, probes, OOM watch,
//! termination, restart with back-off, and the ContainerStatus of each step.
//!
//! Restart back-off: the first restart is immediate, each later one waits `initial`,
//! doubling up to `max` (state `waiting: CrashLoopBackOff`, Event `BackOff`); a
//! container that ran for 10 minutes starts over. An OOM kill is read from the
//! container cgroup's OOM-kill counter: Event `OOMKilling`; in [`OomMode::Group`] every
//! process of the container is killed at once; the container's termination reason is
//! `OOMKilled` whenever the counter rose while it ran (as containerd reports it).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;
use tokio::time::Instant;

use super::cgroups::Cgroup;
use super::clock;
use super::container::{self, Instance};
use super::context::OomMode;
use super::logs::{LogSink, log_path};
use super::pod::{ContainerSlot, PodShared};
use super::spec::{self, SpecError};
use super::{probes, terminate};

/// A running container that stayed up this long resets its back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// The deletion signal: `Some(deadline)` once the pod is being deleted.
pub type Stop = watch::Receiver<Option<Instant>>;

/// What the worker runs: a container or an ephemeral container (never restarted,
/// optionally in its target's PID namespace).
#[derive(Debug, Clone)]
pub struct Job {
    pub container: Container,
    pub ephemeral: bool,
    pub target: Option<String>,
}

pub async fn run(pod: Arc<PodShared>, job: Job, mut stop: Stop) {
    let name = job.container.name.clone();
    init_slot(&pod, &job);
    let cgroup = match spec::container_cgroup(&pod, &job.container) {
        Ok(c) => c,
        Err(e) => {
            set_waiting(&pod, &name, "CreateContainerConfigError", &format!("{e:#}"));
            pod.event(Some(&name), true, "Failed", format!("Error: {e:#}"));
            return;
        }
    };
    pod.lock()
        .containers
        .entry(name.clone())
        .and_modify(|s| s.cgroup = Some(cgroup.clone()));
    let mut restarts = 0u32;
    let mut delay: Option<Duration> = None;
    loop {
        if stop.borrow().is_some() {
            return;
        }
        let ran_long = match start_instance(&pod, &job, &cgroup, restarts).await {
            Ok(instance) => {
                let started = Instant::now();
                let exit = supervise(&pod, &job, instance, &cgroup, &mut stop).await;
                let ran_long = started.elapsed() >= BACKOFF_RESET;
                if !should_restart(&pod, &job, exit.code) || stop.borrow().is_some() {
                    finish(&pod, &name, exit, false);
                    return;
                }
                finish(&pod, &name, exit, true);
                restarts += 1;
                ran_long
            }
            Err(waiting) => {
                set_waiting(&pod, &name, waiting.0, &waiting.1);
                pod.event(Some(&name), true, "Failed", format!("Error: {}", waiting.1));
                if job.ephemeral {
                    return;
                }
                false
            }
        };
        if ran_long {
            delay = None;
        }
        if let Some(d) = delay {
            if !back_off(&pod, &name, d, &mut stop).await {
                return;
            }
        }
        let cfg = &pod.ctx.config;
        delay = Some(delay.map_or(cfg.backoff_initial, |d| (d * 2).min(cfg.backoff_max)));
    }
}

fn init_slot(pod: &PodShared, job: &Job) {
    let status = ContainerStatus {
        name: job.container.name.clone(),
        image: job.container.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        started: Some(false),
        restart_count: 0,
        state: Some(waiting_state("ContainerCreating", "")),
        ..Default::default()
    };
    pod.lock().containers.insert(
        job.container.name.clone(),
        ContainerSlot {
            status,
            ephemeral: job.ephemeral,
            pid: None,
            cgroup: None,
            launch: None,
        },
    );
    pod.publish();
}

fn waiting_state(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message: (!message.is_empty()).then(|| message.to_owned()),
        }),
        ..Default::default()
    }
}

fn set_waiting(pod: &PodShared, name: &str, reason: &str, message: &str) {
    if let Some(slot) = pod.lock().containers.get_mut(name) {
        slot.status.state = Some(waiting_state(reason, message));
        slot.status.ready = false;
    }
    pod.publish();
}

/// Starts one instance; on failure, the waiting reason and message.
async fn start_instance(
    pod: &Arc<PodShared>,
    job: &Job,
    cgroup: &Cgroup,
    instance: u32,
) -> Result<Instance, (&'static str, String)> {
    let name = &job.container.name;
    let pid_of = match &job.target {
        Some(target) => match pod.lock().containers.get(target).and_then(|s| s.pid) {
            Some(pid) => Some(pid),
            None => {
                return Err((
                    "CreateContainerError",
                    format!("target container {target:?} is not running"),
                ));
            }
        },
        None => None,
    };
    let (launch, file) = match spec::launch(pod, &job.container, cgroup, instance, pid_of) {
        Ok(l) => l,
        Err(SpecError::Image(e)) => return Err(("ErrImagePull", format!("{e:#}"))),
        Err(SpecError::Config(e)) => return Err(("CreateContainerConfigError", format!("{e:#}"))),
    };
    let log = LogSink::create(&log_path(&pod.dir, name, instance))
        .map_err(|e| ("RunContainerError", format!("{e:#}")))?;
    let image = job.container.image.clone().unwrap_or_default();
    pod.event(
        Some(name),
        false,
        "Pulled",
        format!("Container image {image:?} already present on machine"),
    );
    let started = container::start(&pod.ctx.config.lab_init(), &launch, &file, &log)
        .await
        .map_err(|e| ("RunContainerError", format!("{e:#}")))?;
    pod.event(
        Some(name),
        false,
        "Created",
        format!("Created container {name}"),
    );
    pod.event(
        Some(name),
        false,
        "Started",
        format!("Started container {name}"),
    );
    let has_readiness = job.container.readiness_probe.is_some();
    if let Some(slot) = pod.lock().containers.get_mut(name) {
        slot.pid = Some(started.pid);
        slot.launch = Some(launch);
        slot.status.restart_count = i32::try_from(instance).unwrap_or(i32::MAX);
        slot.status.container_id = Some(format!("lab://{}-{name}-{instance}", pod.uid));
        slot.status.started = Some(true);
        slot.status.ready = !has_readiness && !job.ephemeral;
        slot.status.state = Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(clock::time()),
            }),
            ..Default::default()
        });
    }
    pod.publish();
    Ok(started)
}

/// Runs probes and the OOM watch until the instance ends (or is terminated).
async fn supervise(
    pod: &Arc<PodShared>,
    job: &Job,
    mut instance: Instance,
    cgroup: &Cgroup,
    stop: &mut Stop,
) -> Exit {
    let name = job.container.name.clone();
    let oom_base = cgroup.oom_kills().unwrap_or(0);
    let mut oom_seen = oom_base;
    let (liveness_tx, mut liveness_failed) = watch::channel(false);
    let probes = (!job.ephemeral)
        .then(|| tokio::spawn(probes::run(pod.clone(), job.container.clone(), liveness_tx)));
    let mut tick = tokio::time::interval(pod.ctx.config.oom_poll);
    let code = loop {
        tokio::select! {
            exit = instance.wait() => break exit,
            _ = tick.tick() => {
                let now = cgroup.oom_kills().unwrap_or(oom_seen);
                if now > oom_seen {
                    oom_seen = now;
                    oom_event(pod, &name, now - oom_base);
                    if pod.oom_mode() == OomMode::Group {
                        kill_now(cgroup);
                    }
                }
            }
            Ok(()) = liveness_failed.changed() => {
                pod.event(Some(&name), false, "Killing", format!(
                    "Container {name} failed liveness probe, will be restarted"));
                let deadline = Instant::now() + terminate::grace(&pod.pod);
                break terminate::stop(pod, &job.container, &mut instance, cgroup, deadline).await;
            }
            Ok(()) = stop.changed() => {
                let Some(deadline) = *stop.borrow() else { continue };
                pod.event(Some(&name), false, "Killing", format!("Stopping container {name}"));
                break terminate::stop(pod, &job.container, &mut instance, cgroup, deadline).await;
            }
        }
    };
    if let Some(p) = probes {
        p.abort();
    }
    // What outlived the main process (a shared PID namespace, a daemonised child).
    kill_now(cgroup);
    let oom_after = cgroup.oom_kills().unwrap_or(oom_seen).max(oom_seen);
    if oom_after > oom_seen {
        // cgroup v2 with memory.oom.group: the kernel killed the whole container, which
        // ended before a tick saw the counter rise. The Event is still due.
        oom_event(pod, &name, oom_after - oom_base);
    }
    Exit {
        code,
        oom_killed: oom_after > oom_base,
        started_at: instance_started(pod, &name),
    }
}

/// The `OOMKilling` Event: `kills` OOM kills in the container's cgroup so far.
fn oom_event(pod: &PodShared, name: &str, kills: u64) {
    pod.event(
        Some(name),
        true,
        "OOMKilling",
        format!(
            "Memory cgroup out of memory: the kernel killed a process of container {name} (OOM kills in its cgroup: {kills})"
        ),
    );
}

fn kill_now(cgroup: &Cgroup) {
    for pid in cgroup.pids() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn instance_started(pod: &PodShared, name: &str) -> Option<Time> {
    let state = pod.lock();
    let slot = state.containers.get(name)?;
    slot.status
        .state
        .as_ref()?
        .running
        .as_ref()?
        .started_at
        .clone()
}

/// How an instance ended.
pub struct Exit {
    pub code: i32,
    pub oom_killed: bool,
    pub started_at: Option<Time>,
}

fn should_restart(pod: &PodShared, job: &Job, code: i32) -> bool {
    if job.ephemeral {
        return false;
    }
    let policy = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    match policy.unwrap_or("Always") {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

/// Records the termination: as the current state (`restarting` false) or as the last
/// state of a container about to restart.
fn finish(pod: &PodShared, name: &str, exit: Exit, restarting: bool) {
    let reason = if exit.oom_killed {
        "OOMKilled"
    } else if exit.code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let terminated = ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: exit.code,
            reason: Some(reason.to_owned()),
            started_at: exit.started_at,
            finished_at: Some(clock::time()),
            container_id: pod
                .lock()
                .containers
                .get(name)
                .and_then(|s| s.status.container_id.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(slot) = pod.lock().containers.get_mut(name) {
        slot.pid = None;
        slot.status.ready = false;
        slot.status.started = Some(false);
        if restarting {
            slot.status.last_state = Some(terminated.clone());
        }
        slot.status.state = Some(terminated);
    }
    pod.publish();
}

/// Waits `delay` in CrashLoopBackOff; false when the pod is deleted meanwhile.
async fn back_off(pod: &PodShared, name: &str, delay: Duration, stop: &mut Stop) -> bool {
    let message = format!(
        "back-off {}s restarting failed container={name} pod={}_{}({})",
        delay.as_secs(),
        pod.name,
        pod.namespace,
        pod.uid
    );
    // The Event first: whoever sees the status already finds it.
    pod.event(
        Some(name),
        true,
        "BackOff",
        format!(
            "Back-off restarting failed container {name} in pod {}_{}({})",
            pod.name, pod.namespace, pod.uid
        ),
    );
    set_waiting(pod, name, "CrashLoopBackOff", &message);
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        _ = stop.wait_for(Option::is_some) => false,
    }
}
