//! Typed reads through the API for the remote layer: `get` (absent is `None`) and `list`
//! with a label selector, throttled requests retried (`kube::retry`), errors mapped to
//! messages naming verb, resource and namespace.

use std::time::Duration;

use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::kube::Connection;
use crate::kube::error::code_of;
use crate::kube::retry::{ThrottleCount, classify, retry};

/// How long reads keep retrying while the API server throttles them.
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(30);

/// A namespaced resource the remote layer reads.
pub trait Namespaced:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Namespaced for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

/// `get` of `namespace/name`; `None` when it does not exist.
pub async fn get<K: Namespaced>(
    conn: &Connection,
    namespace: &str,
    name: &str,
    resource: &str,
    count: &ThrottleCount,
) -> Result<Option<K>> {
    let api: Api<K> = Api::namespaced(conn.client.clone(), namespace);
    let what = format!("get {resource} {name} in namespace {namespace}");
    retry(&what, THROTTLE_BUDGET, count, || async {
        match api.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(e) if code_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(e, "get", resource, namespace, conn)),
        }
    })
    .await
}

/// `list` in `namespace`, with a label selector unless it is empty.
pub async fn list<K: Namespaced>(
    conn: &Connection,
    namespace: &str,
    selector: &str,
    resource: &str,
    count: &ThrottleCount,
) -> Result<Vec<K>> {
    let api: Api<K> = Api::namespaced(conn.client.clone(), namespace);
    let params = if selector.is_empty() {
        ListParams::default()
    } else {
        ListParams::default().labels(selector)
    };
    let what = format!("list {resource} in namespace {namespace}");
    retry(&what, THROTTLE_BUDGET, count, || async {
        api.list(&params)
            .await
            .map(|l| l.items)
            .map_err(|e| classify(e, "list", resource, namespace, conn))
    })
    .await
}
