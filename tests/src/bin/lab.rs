//! `lab`: the lab's command (scripts/lab.sh drives it; docs/lab.md).
//!
//! - `lab status`: the running labs and their pods (from the state directories).
//! - `lab cgroup POD [CONTAINER]`: the container's cgroup directories, `CONTROLLER PATH`.
//! - `lab sweep`: removes what labs whose process is gone left behind (never a live lab's).
//! - `lab serve --kubeconfig-out PATH`: runs a lab (node + API server) in the foreground
//!   until SIGTERM or SIGINT; prints `ready https://ADDR` once it serves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chaos_tests::lab::context::{NodeConfig, OomMode};
use chaos_tests::lab::node::Node;
use chaos_tests::lab::{api, cleanup, inventory};
use clap::{Parser, Subcommand, ValueEnum};

/// The lab: a local Lomash Wood cluster whose pods are real processes.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The running labs and their pods.
    Status,
    /// A container's cgroup directories, one `CONTROLLER PATH` line each.
    Cgroup {
        /// NAME, pod/NAME or NAMESPACE/NAME.
        pod: String,
        /// Default: the pod's kubectl.kubernetes.io/default-container, else its first.
        container: Option<String>,
    },
    /// Removes the leftovers of labs whose process is gone.
    Sweep,
    /// Runs a lab in the foreground until SIGTERM or SIGINT (scripts/lab.sh up does this).
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    /// The API server's address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Where to write the admin kubeconfig (mode 0600).
    #[arg(long)]
    kubeconfig_out: PathBuf,
    /// The static tool set the chaos-tools image maps to (default: dist/ of the workspace).
    #[arg(long)]
    dist: Option<PathBuf>,
    /// What an OOM kill does to a container (pods may override it with the
    /// lab.chaos-tools/oom-kill annotation).
    #[arg(long, value_enum, default_value = "group")]
    oom_kill: Oom,
    /// HPA sync period, seconds (Kubernetes: 15).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    hpa_sync_seconds: u64,
    /// First restart back-off, seconds (the kubelet: 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    backoff_seconds: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Oom {
    Group,
    Process,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Status => {
            let ids: Vec<String> = cleanup::known_lab_ids(None)
                .into_iter()
                .filter(|id| cleanup::lab_pid(id).is_some_and(cleanup::is_alive))
                .collect();
            if ids.is_empty() {
                println!("no lab is running");
            }
            for id in &ids {
                println!(
                    "lab {id} (pid {})",
                    cleanup::lab_pid(id).unwrap_or_default()
                );
            }
            for p in inventory::pods() {
                println!(
                    "  {}/{}\t{}\t{}",
                    p.namespace,
                    p.name,
                    p.ip,
                    p.containers.join(",")
                );
            }
            ExitCode::SUCCESS
        }
        Command::Cgroup { pod, container } => {
            match inventory::cgroup_lines(&pod, container.as_deref()) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("lab: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve(args) => match serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lab: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Sweep => {
            if !nix::unistd::Uid::effective().is_root() {
                eprintln!("lab: sweep needs root (network namespaces, cgroups)");
                return ExitCode::from(2);
            }
            for id in cleanup::sweep_dead_labs() {
                println!("removed the leftovers of lab {id}");
            }
            chaos_tests::lab::plan::remove_idle_slots();
            ExitCode::SUCCESS
        }
    }
}

fn serve(args: Serve) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the lab binary's own path")?;
    let bin_dir = exe
        .parent()
        .context("the lab binary has no directory")?
        .to_path_buf();
    // target/debug/lab -> the workspace's dist/.
    let dist = args.dist.unwrap_or_else(|| bin_dir.join("../../dist"));
    let mut config = NodeConfig::new(bin_dir, dist);
    config.oom = match args.oom_kill {
        Oom::Group => OomMode::Group,
        Oom::Process => OomMode::Process,
    };
    config.backoff_initial = Duration::from_secs(args.backoff_seconds);
    let settings = api::Settings {
        hpa_sync: Duration::from_secs(args.hpa_sync_seconds),
        ..api::Settings::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let node = Arc::new(Node::start(config)?);
    let result = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        let ready = |addr| {
            println!("ready https://{addr} lab {}", node.plan().id);
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        };
        api::run(
            node.clone(),
            settings,
            &args.listen,
            &args.kubeconfig_out,
            ready,
            shutdown,
        )
        .await
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(node);
    result
}
