//! The API server's storage layer ("registry" in Kubernetes terms): create, read,
//! update, patch and delete with the server's semantics (defaults and validation through
//! admission, optimistic concurrency, generations, status subresources, graceful deletion
//! and finalizers, conversion of events.k8s.io Events). The HTTP handlers and the
//! controllers both write through it, so a controller cannot skip what a client cannot.

pub mod admission;
mod delete;
pub mod events;
pub mod patch;
mod update;
pub mod validation;

use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

pub use admission::{Admission, Attributes, Operation};
pub use delete::DeleteOptions;

use super::errors::{ApiError, ApiResult};
use super::meta;
use super::registry::{self, GroupResource, Registry, ResourceType};
use super::store::{self, Store};

/// Which part of an object a write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object; its status is kept (types with a status subresource).
    Main,
    /// Only `status` (the `/status` subresource).
    Status,
    /// Everything (controllers writing spec and status together).
    Whole,
}

pub struct Cluster {
    store: Mutex<Store>,
    pub registry: Registry,
    admission: Vec<Box<dyn Admission>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

/// The object in the form the client asked for.
pub fn external_form(rt: &ResourceType, stored: Value) -> Value {
    external(rt, stored)
}

fn external(rt: &ResourceType, stored: Value) -> Value {
    if rt.gr == registry::EVENTS {
        events::from_core(&stored)
    } else {
        stored
    }
}

fn internal(rt: &ResourceType, object: &Value) -> Value {
    if rt.gr == registry::EVENTS {
        events::to_core(object)
    } else {
        object.clone()
    }
}

impl Cluster {
    pub fn new(registry: Registry, admission: Vec<Box<dyn Admission>>, history: usize) -> Cluster {
        Cluster {
            store: Mutex::new(Store::new(history)),
            registry,
            admission,
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        store::lock(&self.store)
    }

    /// The type of `gr`; every built-in is registered, so a miss is a programming error
    /// reported as a 404 rather than a panic.
    pub fn resource(&self, gr: GroupResource) -> ApiResult<&ResourceType> {
        self.registry.get(gr).ok_or_else(ApiError::no_route)
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        for plugin in &self.admission {
            plugin.admit(attrs, object)?;
        }
        Ok(())
    }

    /// POST: creates `object` in `namespace` ("" for cluster-scoped types).
    pub fn create(&self, rt: &ResourceType, namespace: &str, object: &Value) -> ApiResult<Value> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be an object",
            ));
        }
        let body_ns = meta::namespace(object);
        if rt.namespaced && !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if !meta::resource_version(object).is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if rt.gr == registry::EVENTS
            && let Some(message) = events::decode_error(object)
        {
            return Err(ApiError::bad_request(message));
        }
        let mut object = internal(rt, object);
        let stored = *self.resource(rt.stored_as())?;
        object["apiVersion"] = stored.api_version().into();
        object["kind"] = stored.kind.into();
        let mut s = self.store();
        if rt.namespaced {
            check_namespace(&s, namespace)?;
            object["metadata"]["namespace"] = namespace.into();
        } else if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        name_from_generate_name(&mut s, rt, &mut object);
        let attrs = Attributes {
            operation: Operation::Create,
            resource: rt,
            subresource: None,
            namespace,
            old: None,
        };
        self.admit(&attrs, &mut object)?;
        let uid = s.next_uid();
        let m = &mut object["metadata"];
        m["uid"] = uid.into();
        m["creationTimestamp"] = meta::now().into();
        if rt.spec_generation {
            m["generation"] = 1.into();
        }
        if let Some(m) = m.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        let name = meta::name(&object).to_owned();
        s.insert(rt.stored_as(), object)
            .map(|o| external(rt, o))
            .map_err(|_| ApiError::already_exists(rt.gr, &name))
    }

    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> ApiResult<Value> {
        self.store()
            .get(rt.stored_as(), namespace, name)
            .cloned()
            .map(|o| external(rt, o))
            .ok_or_else(|| ApiError::not_found(rt.gr, name))
    }

    /// Current objects in `namespace` (every namespace when None), client form.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<Value> {
        self.store()
            .list(rt.stored_as(), namespace)
            .into_iter()
            .map(|o| external(rt, o.clone()))
            .collect()
    }

    /// DELETE, with the server's graceful deletion and finalizers (see `delete.rs`).
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Value> {
        let kinds: Vec<GroupResource> = self
            .registry
            .types()
            .iter()
            .filter(|t| t.storage.is_none() && !t.virtual_only)
            .map(|t| t.gr)
            .collect();
        let mut s = self.store();
        delete::delete(&mut s, rt, namespace, name, options, &kinds).map(|o| external(rt, o))
    }
}

fn check_namespace(s: &Store, namespace: &str) -> ApiResult<()> {
    match s.get(registry::NAMESPACES, "", namespace) {
        None => Err(ApiError::not_found(registry::NAMESPACES, namespace)),
        Some(ns) if meta::is_terminating(ns) => Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn name_from_generate_name(s: &mut Store, rt: &ResourceType, object: &mut Value) {
    if !meta::name(object).is_empty() {
        return;
    }
    let Some(prefix) = object
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
    else {
        return;
    };
    let namespace = meta::namespace(object).to_owned();
    for _ in 0..16 {
        let candidate = format!("{prefix}{}", s.random_suffix());
        if s.get(rt.stored_as(), &namespace, &candidate).is_none() {
            object["metadata"]["name"] = candidate.into();
            return;
        }
    }
}
