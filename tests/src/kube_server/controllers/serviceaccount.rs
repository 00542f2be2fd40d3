//! The ServiceAccount controller: every namespace has a `default` ServiceAccount.

use std::time::Duration;

use serde_json::json;

use super::{ObjectKey, Reconciler};
use crate::kube_server::api::Cluster;
use crate::kube_server::meta;
use crate::kube_server::registry::{NAMESPACES, SERVICE_ACCOUNTS};
use crate::kube_server::store::{Change, EventType};

pub struct DefaultServiceAccounts;

impl Reconciler for DefaultServiceAccounts {
    fn name(&self) -> &'static str {
        "serviceaccount"
    }

    fn keys(&self, change: &Change, _: &Cluster) -> Vec<ObjectKey> {
        let key = match change.gr {
            NAMESPACES if change.event_type != EventType::Deleted => {
                meta::name(&change.object).to_owned()
            }
            SERVICE_ACCOUNTS
                if change.event_type == EventType::Deleted
                    && meta::name(&change.object) == "default" =>
            {
                change.namespace().to_owned()
            }
            _ => return Vec::new(),
        };
        vec![ObjectKey::new(NAMESPACES, "", &key)]
    }

    fn resync(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        cluster
            .store()
            .list(NAMESPACES, None)
            .into_iter()
            .map(|n| ObjectKey::of(NAMESPACES, n))
            .collect()
    }

    fn reconcile(&self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let namespace = &key.name;
        {
            let store = cluster.store();
            let ns = store.get(NAMESPACES, "", namespace)?;
            if meta::is_terminating(ns)
                || store.get(SERVICE_ACCOUNTS, namespace, "default").is_some()
            {
                return None;
            }
        }
        let rt = cluster.resource(SERVICE_ACCOUNTS).ok().copied()?;
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        let _ = cluster.create(&rt, namespace, &sa);
        None
    }
}
