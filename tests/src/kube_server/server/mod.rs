//! Assembling a server ([`Builder`]), running it ([`ApiServer::serve`], or
//! [`BackgroundServer`] on a thread of its own for tests), and the test-side controls
//! ([`Control`]): kubeconfigs, tokens, the throttle switch, ending watches, compacting
//! the history, and the record of authorization decisions.

mod control;

pub use control::Control;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::api::{Admission, Cluster, admission};
use super::auth::{Audit, Authenticator, UserInfo};
use super::controllers::{self, Controller};
use super::fixture::Fixture;
use super::http::{self, Handler, Server, Subresources, WatchSettings};
use super::registry::{GroupResource, Registry, ResourceType};
use super::throttle::Throttle;
use super::tls::{Authority, ClientCertificate};

/// The user of the admin kubeconfig (client certificate, group system:masters).
pub const ADMIN_USER: &str = "kubernetes-admin";

/// A server being put together.
pub struct Builder {
    fixture: Fixture,
    registry: Registry,
    admission: Vec<Box<dyn Admission>>,
    controllers: Vec<Box<dyn Controller>>,
    subresources: Subresources,
}

impl Builder {
    pub fn new(fixture: Fixture) -> Builder {
        Builder {
            fixture,
            registry: Registry::default(),
            admission: admission::builtin(),
            controllers: Vec::new(),
            subresources: Subresources::builtin(),
        }
    }

    /// Serves another resource type (or replaces a built-in one).
    pub fn resource(mut self, resource: ResourceType) -> Builder {
        self.registry.add(resource);
        self
    }

    /// Runs after the built-in admission plugins, on every create and update.
    pub fn admission(mut self, plugin: Box<dyn Admission>) -> Builder {
        self.admission.push(plugin);
        self
    }

    /// Starts with the server, beside the built-in controllers.
    pub fn controller(mut self, controller: Box<dyn Controller>) -> Builder {
        self.controllers.push(controller);
        self
    }

    pub fn subresource(mut self, gr: GroupResource, name: &str, handler: Handler) -> Builder {
        self.subresources.add(gr, name, handler);
        self
    }

    /// Generates the CA, seeds the fixture; the controllers start with `serve`.
    pub fn build(self) -> anyhow::Result<ApiServer> {
        let settings = &self.fixture.server;
        let cluster = Arc::new(Cluster::new(
            self.registry,
            self.admission,
            settings.watch_history,
        ));
        super::seed::seed(&cluster, &self.fixture)
            .map_err(|e| anyhow::anyhow!("cannot seed the fixture: {e}"))?;
        let hosts = vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "::1".to_owned(),
        ];
        let authority = Authority::generate(&hosts)?;
        let admin = authority.client_certificate(ADMIN_USER, &["system:masters"])?;
        let authn = Authenticator::default();
        authn.register_certificate(
            admin.der.clone(),
            UserInfo::new(ADMIN_USER, &["system:masters"]),
        );
        let (epoch, _) = tokio::sync::watch::channel(0);
        let server = Server {
            cluster,
            authn,
            audit: Audit::default(),
            throttle: Throttle::new(settings.throttle_percent, settings.retry_after_seconds),
            watch: WatchSettings {
                bookmark_interval: Duration::from_millis(settings.bookmark_interval_ms),
                default_timeout: Duration::from_secs(settings.watch_timeout_seconds),
                epoch,
                expired: Default::default(),
            },
            subresources: self.subresources,
            authority,
        };
        let mut all = controllers::builtin(&controllers::Settings {
            delay: Duration::from_millis(settings.controller_delay_ms),
            nodes: self.fixture.nodes.clone(),
        });
        all.extend(self.controllers);
        Ok(ApiServer {
            server: Arc::new(server),
            controllers: all,
            admin,
        })
    }
}

/// A built server, not yet serving.
pub struct ApiServer {
    server: Arc<Server>,
    controllers: Vec<Box<dyn Controller>>,
    admin: ClientCertificate,
}

impl ApiServer {
    pub fn control(&self) -> Control {
        Control {
            server: self.server.clone(),
            admin: self.admin.clone(),
        }
    }

    /// Starts the controllers and serves HTTPS on `listener` until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let tasks: Vec<_> = self
            .controllers
            .into_iter()
            .map(|c| c.start(self.server.cluster.clone()))
            .collect();
        http::serve(listener, self.server, shutdown).await;
        for task in tasks {
            task.abort();
        }
    }
}

/// A server on its own thread and runtime, on 127.0.0.1; stops when dropped.
pub struct BackgroundServer {
    pub addr: SocketAddr,
    pub control: Control,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BackgroundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl BackgroundServer {
    pub fn start(fixture: Fixture) -> anyhow::Result<BackgroundServer> {
        BackgroundServer::start_built(Builder::new(fixture))
    }

    pub fn start_built(builder: Builder) -> anyhow::Result<BackgroundServer> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let server = builder.build()?;
        let control = server.control();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                server
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
            runtime.shutdown_background();
        });
        Ok(BackgroundServer {
            addr,
            control,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Writes the admin kubeconfig for this server to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> anyhow::Result<()> {
        std::fs::write(path, self.control.admin_kubeconfig(self.addr, namespace))
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
