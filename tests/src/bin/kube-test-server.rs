//! `kube-test-server --listen 127.0.0.1:PORT --fixture FILE --kubeconfig-out PATH`:
//! serves the fixture over HTTPS until SIGINT or SIGTERM. The kubeconfig written holds
//! the server's CA and the admin's client certificate (system:masters).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chaos_tests::kube_server::{Builder, Fixture};
use clap::Parser;

/// A Kubernetes API server stand-in for tests (HTTPS, RBAC, simulated controllers).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (see the kubeconfig for it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The fixture to serve (YAML, see docs/kube-test-server.md).
    #[arg(long)]
    fixture: PathBuf,
    /// Where to write the admin kubeconfig (mode 0600: it holds a client key).
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

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let fixture = Fixture::load(&args.fixture)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Builder::new(fixture).build()?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if let Some(path) = &args.kubeconfig_out {
            write_private(
                path,
                &server.control().admin_kubeconfig(addr, &args.namespace),
            )?;
        }
        println!("listening on https://{addr}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        server.serve(listener, shutdown).await;
        Ok(())
    })
}
