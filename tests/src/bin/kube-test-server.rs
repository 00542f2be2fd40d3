//! `kube-test-server --listen 127.0.0.1:PORT --fixture FILE --kubeconfig-out PATH`:
//! serves the fixture until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chaos_tests::kube_server::{self, Fixture};
use clap::Parser;

/// A Kubernetes API server stand-in for tests (plain HTTP).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (see the kubeconfig for it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The fixture to serve (YAML, see tests/fixtures/lomash-wood.yaml).
    #[arg(long)]
    fixture: PathBuf,
    /// Where to write a kubeconfig pointing at this server.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// The namespace of the kubeconfig's context.
    #[arg(long, default_value = "lomash-wood")]
    namespace: String,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-test-server: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let fixture = Fixture::load(&args.fixture)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if let Some(path) = &args.kubeconfig_out {
            std::fs::write(path, kube_server::kubeconfig(addr, &args.namespace))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("listening on http://{addr}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        kube_server::serve(listener, fixture, shutdown).await;
        Ok(())
    })
}
