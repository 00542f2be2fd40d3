//! Assembling a server ([`Builder`]), running it ([`ApiServer::serve`], or
//! [`BackgroundServer`] on a thread of its own for tests), and the test-side controls
//! ([`Control`]): kubeconfigs, tokens, the throttle switch, ending watches, compacting
//! the history, and the record of authorization decisions.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::api::{Admission, Cluster, admission};
use super::auth::{Access, Audit, Authenticator, UserInfo};
use super::controllers::{self, Controller};
use super::fixture::Fixture;
use super::http::{self, Handler, Server, Subresources, WatchSettings};
use super::kubeconfig::{self, Credentials};
use super::meta;
use super::registry::{GroupResource, Registry, ResourceType, SERVICE_ACCOUNTS};
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

/// What tests and the lab can do to a running server from the outside.
#[derive(Clone)]
pub struct Control {
    server: Arc<Server>,
    admin: ClientCertificate,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    pub fn cluster(&self) -> Arc<Cluster> {
        self.server.cluster.clone()
    }

    /// A kubeconfig for the admin (client certificate, system:masters).
    pub fn admin_kubeconfig(&self, addr: SocketAddr, namespace: &str) -> String {
        let credentials = Credentials::ClientCertificate {
            cert_pem: self.admin.cert_pem.clone(),
            key_pem: self.admin.key_pem.clone(),
        };
        kubeconfig::render(
            &format!("https://{addr}"),
            self.server.authority.ca_pem(),
            namespace,
            ADMIN_USER,
            &credentials,
        )
    }

    /// A kubeconfig whose user authenticates with `token`.
    pub fn token_kubeconfig(
        &self,
        addr: SocketAddr,
        namespace: &str,
        user: &str,
        token: &str,
    ) -> String {
        kubeconfig::render(
            &format!("https://{addr}"),
            self.server.authority.ca_pem(),
            namespace,
            user,
            &Credentials::Token(token.to_owned()),
        )
    }

    /// A token for ServiceAccount `namespace/name` (what TokenRequest hands out; tests
    /// normally use `kubectl create token` instead).
    pub fn issue_token(
        &self,
        namespace: &str,
        name: &str,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let uid = {
            let store = self.server.cluster.store();
            let sa = store
                .get(SERVICE_ACCOUNTS, namespace, name)
                .with_context(|| format!("no ServiceAccount {namespace}/{name}"))?;
            meta::uid(sa).to_owned()
        };
        Ok(self.server.authn.issue(namespace, name, &uid, ttl).0)
    }

    pub fn ca_pem(&self) -> String {
        self.server.authority.ca_pem().to_owned()
    }

    /// Answers `percent` of the non-exempt requests 429 from now on (0: off).
    pub fn set_throttle(&self, percent: u32, retry_after_seconds: u32) {
        self.server.throttle.set(percent, retry_after_seconds);
    }

    /// Answers the next `count` requests to `verb` `resource` (`pods/eviction`) 429.
    pub fn reject_next(&self, count: u32, verb: &str, resource: &str) {
        self.server.throttle.reject_next(count, verb, resource);
    }

    pub fn throttled(&self) -> u64 {
        self.server.throttle.rejected()
    }

    /// Ends every open watch (clients resume from their last resourceVersion).
    pub fn close_watches(&self) {
        self.server.watch.epoch.send_modify(|e| *e += 1);
    }

    /// Forgets the change history (an etcd compaction): resuming from an older
    /// resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.server.cluster.store().compact();
    }

    /// How many watches were answered 410 Expired.
    pub fn expired_watches(&self) -> u64 {
        self.server.watch.expired.load(Ordering::SeqCst)
    }

    /// Every authorization decision so far.
    pub fn accesses(&self) -> Vec<Access> {
        self.server.audit.records()
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
