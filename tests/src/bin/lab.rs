//! `lab`: the lab's command (scripts/lab.sh drives it; docs/lab.md).
//!
//! - `lab status`: the running labs and their pods (from the state directories).
//! - `lab cgroup POD [CONTAINER]`: the container's cgroup directories, `CONTROLLER PATH`.
//! - `lab sweep`: removes what labs whose process is gone left behind (never a live lab's).

use std::process::ExitCode;

use chaos_tests::lab::{cleanup, inventory};
use clap::{Parser, Subcommand};

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
        Command::Sweep => {
            if !nix::unistd::Uid::effective().is_root() {
                eprintln!("lab: sweep needs root (network namespaces, cgroups)");
                return ExitCode::from(2);
            }
            for id in cleanup::sweep_dead_labs() {
                println!("removed the leftovers of lab {id}");
            }
            ExitCode::SUCCESS
        }
    }
}
