//! The entry point `tool::main` calls in remote mode: the in-pod command line, the
//! `RemoteRun` driven by the runner (signals and the freeze switch stop it), and the
//! aggregated report. `--stop RUNID` with remote flags stops that run in the matched pods.

use std::ffi::OsString;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{ArgMatches, Command};

use super::args::Settings;
use super::fault::{Records, RemoteRun};
use super::session::Layout;
use super::{Request, aggregate, argv};
use crate::error::{ChaosError, Result};
use crate::kube::client::ClientOptions;
use crate::kube::freeze::{self, FreezeSwitch};
use crate::report::Report;
use crate::runner::{self, RunSettings};

/// The remote run's own deadline beyond `--max-duration`: the pods' runs end by their own
/// duration (at most `--max-duration`) and the operator's tool then ends with them; this
/// only bounds a run whose pods never answer.
const BACKSTOP: Duration = Duration::from_secs(120);

/// The command line as clap parsed it.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub tool: &'static str,
    pub version: &'a str,
    pub command: &'a Command,
    pub matches: &'a ArgMatches,
}

/// Arguments as text (the Kubernetes API carries text only).
fn texts(args: Vec<OsString>) -> Result<Vec<String>> {
    args.into_iter()
        .map(|a| {
            a.into_string().map_err(|a| {
                ChaosError::bad_input(format!(
                    "argument {a:?} is not valid UTF-8; remote mode passes arguments through the \
                     Kubernetes API, which carries text only"
                ))
            })
        })
        .collect()
}

/// The validated remote settings and the layout of the run in the pods.
pub fn layout(request: &Request, inv: Invocation<'_>, run_id: &str) -> Result<(Settings, Layout)> {
    let settings = request
        .args
        .settings(request.selection.clone(), inv.version)?;
    let argv = texts(argv::in_pod(
        inv.command,
        inv.matches,
        &request.skip,
        &request.extra,
        run_id,
    ))?;
    let layout = Layout {
        tool: inv.tool,
        run_id: run_id.to_owned(),
        namespace: settings.namespace.clone(),
        delivery: request.delivery,
        remote_dir: settings.remote_dir.clone(),
        image: settings.image.clone(),
        argv,
    };
    Ok((settings, layout))
}

/// The freeze switch of these settings.
pub fn freeze_switch(settings: &Settings) -> FreezeSwitch {
    FreezeSwitch {
        client: ClientOptions {
            kubeconfig: settings.kubeconfig.clone(),
            context: settings.context.clone(),
        },
        namespaces: settings.freeze_namespaces.clone(),
    }
}

/// Runs `request` through the runner; the report is the aggregated one. `settings` come
/// from `tool.rs` with `duration` set to `--max-duration` (the longest any pod's run may
/// last); `shutdown` is the signal future, and the freeze switch is added to it.
pub async fn run(
    request: Request,
    inv: Invocation<'_>,
    settings: RunSettings,
    shutdown: impl Future<Output = String>,
) -> std::result::Result<Report, ChaosError> {
    let (remote, layout) = layout(&request, inv, &settings.run_id)?;
    let records = Arc::new(Mutex::new(Records::default()));
    let watch_oom = request.watch_oom;
    let switch = freeze_switch(&remote);
    let fault_settings = remote.clone();
    let fault = RemoteRun {
        request,
        settings: remote,
        layout: layout.clone(),
        live: !settings.dry_run,
        resolved: None,
        records: records.clone(),
    };
    let settings = RunSettings {
        duration: settings.duration + BACKSTOP,
        parameters: parameters(&fault_settings, &layout),
        progress: crate::progress::ProgressMode::Off,
        ..settings
    };
    let stop = async move {
        tokio::select! {
            reason = shutdown => reason,
            reason = freeze::wait_frozen(switch) => reason,
        }
    };
    let mut report = runner::run(fault, settings, stop).await;
    let Records {
        runs,
        started,
        skipped,
        layout: resolved,
    } = records.lock().map(|r| r.clone()).unwrap_or_default();
    let layout = resolved.unwrap_or(layout);
    report.parameters["inPodCommand"] = serde_json::json!(layout.command());
    Ok(aggregate::finish(
        report, &layout, &runs, &skipped, watch_oom, started,
    ))
}

/// The report's `parameters` of a remote run.
fn parameters(settings: &Settings, layout: &Layout) -> serde_json::Value {
    let mut p = serde_json::json!({
        "mode": "remote",
        "namespace": layout.namespace,
        "selection": settings.selection.describe(),
        "container": settings.container,
        "maxPods": settings.max_pods,
        "maxParallel": settings.max_parallel,
        "delivery": layout.delivery,
        "inPodCommand": layout.command(),
        "freezeNamespaces": settings.freeze_namespaces,
    });
    match layout.delivery {
        super::Delivery::Exec => p["remoteDir"] = serde_json::json!(layout.remote_dir),
        super::Delivery::Ephemeral => p["image"] = serde_json::json!(layout.image),
    }
    p
}
