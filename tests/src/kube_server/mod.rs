//! A Kubernetes API server stand-in that speaks the real wire format for the parts
//! chaos-tools uses, with simulated controllers. kubectl and kube-rs accept it.
//!
//! Start it in-process with [`BackgroundServer::start`] (tests) or through the
//! `kube-test-server` binary; point clients at it with the kubeconfig from
//! [`kubeconfig`].
//!
//! # Layout
//! - `fixture.rs`: what the server starts with (YAML). `objects.rs`: k8s-openapi builders.
//! - `store.rs`: objects, resourceVersions, change history. `select.rs`: selectors.
//! - `controller.rs`: ReplicaSet controller, pod lifecycle, statuses, deletion.
//! - `http.rs`: routing and errors; `handlers.rs`: writes and eviction; `watch.rs`;
//!   `discovery.rs`; `table.rs`: server-side printing for plain `kubectl get`.

mod controller;
mod discovery;
pub mod fixture;
mod handlers;
mod http;
mod objects;
pub mod select;
mod store;
mod table;
mod watch;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use controller::READY_AT_ANNOTATION;
pub use fixture::Fixture;
pub use http::USER;

use controller::Cluster;

/// Serves `fixture` on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, fixture: Fixture, shutdown: impl Future<Output = ()>) {
    let cluster = Cluster::seed(fixture);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| http::handle(cluster.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A kubeconfig whose current context points at `addr` over plain HTTP.
pub fn kubeconfig(addr: SocketAddr, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-test-server\n  cluster:\n    server: http://{addr}\n\
         contexts:\n- name: kube-test-server\n  context:\n    cluster: kube-test-server\n    user: pod-killer\n    namespace: {namespace}\n\
         current-context: kube-test-server\nusers:\n- name: pod-killer\n  user:\n    token: kube-test-server-token\n"
    )
}

/// A server running on its own thread and runtime; stops when dropped.
pub struct BackgroundServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    pub fn start(fixture: Fixture) -> anyhow::Result<BackgroundServer> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                serve(listener, fixture, async move {
                    let _ = stopped.await;
                })
                .await;
            });
            runtime.shutdown_background();
        });
        Ok(BackgroundServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Writes a kubeconfig for this server to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path, namespace: &str) -> anyhow::Result<()> {
        std::fs::write(path, kubeconfig(self.addr, namespace))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
