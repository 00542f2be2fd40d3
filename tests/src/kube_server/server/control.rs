//! [`Control`]: what tests and the lab can do to a running server from the outside.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;

use super::ADMIN_USER;
use crate::kube_server::api::Cluster;
use crate::kube_server::auth::Access;
use crate::kube_server::http::Server;
use crate::kube_server::kubeconfig::{self, Credentials};
use crate::kube_server::meta;
use crate::kube_server::registry::SERVICE_ACCOUNTS;
use crate::kube_server::tls::ClientCertificate;

/// What tests and the lab can do to a running server from the outside.
#[derive(Clone)]
pub struct Control {
    pub(super) server: Arc<Server>,
    pub(super) admin: ClientCertificate,
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
