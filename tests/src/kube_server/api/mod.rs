//! The API server's storage layer ("registry" in Kubernetes terms): create, read,
//! update, patch and delete with the server's semantics (defaults and validation through
//! admission, optimistic concurrency, generations, status subresources, graceful deletion
//! and finalizers, conversion of events.k8s.io Events). The HTTP handlers and the
//! controllers both write through it, so a controller cannot skip what a client cannot.

pub mod admission;
mod delete;
pub mod events;
pub mod patch;
pub mod validation;

use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

pub use admission::{Admission, Attributes, Operation};
pub use delete::DeleteOptions;

use super::errors::{ApiError, ApiResult};
use super::meta;
use super::registry::{self, GroupResource, Registry, ResourceType};
use super::store::{self, Store};
use patch::PatchType;

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

    /// PUT: replaces the object (or its status). A `resourceVersion` in the body must be
    /// the current one (409 Conflict otherwise).
    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        object: &Value,
        part: Part,
    ) -> ApiResult<Value> {
        if meta::name(object) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta::name(object)
            )));
        }
        let mut s = self.store();
        let current = s
            .get(rt.stored_as(), namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.gr, name))?;
        let sent = meta::resource_version(object);
        if !sent.is_empty() && sent != meta::resource_version(&current) {
            return Err(ApiError::conflict(
                rt.gr,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let new = internal(rt, object);
        self.finish_update(&mut s, rt, &current, new, part)
            .map(|o| external(rt, o))
    }

    /// PATCH: applies `patch` to the object as the client sees it, then updates.
    pub fn patch(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchType,
        body: &Value,
        part: Part,
    ) -> ApiResult<Value> {
        let mut s = self.store();
        let current = s
            .get(rt.stored_as(), namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.gr, name))?;
        let seen = external(rt, current.clone());
        let patched = patch::apply(kind, &seen, body)?;
        let sent = meta::resource_version(&patched);
        if !sent.is_empty() && sent != meta::resource_version(&current) {
            return Err(ApiError::conflict(
                rt.gr,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let new = internal(rt, &patched);
        self.finish_update(&mut s, rt, &current, new, part)
            .map(|o| external(rt, o))
    }

    /// Read-modify-write under the store lock, for controllers (no conflicts possible).
    pub fn modify(
        &self,
        gr: GroupResource,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> ApiResult<Value> {
        let rt = *self.resource(gr)?;
        let mut s = self.store();
        let current = s
            .get(gr, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(gr, name))?;
        let mut new = current.clone();
        f(&mut new);
        self.finish_update(&mut s, &rt, &current, new, Part::Whole)
    }

    fn finish_update(
        &self,
        s: &mut Store,
        rt: &ResourceType,
        current: &Value,
        mut new: Value,
        part: Part,
    ) -> ApiResult<Value> {
        let has_status = rt.has_subresource("status");
        match part {
            Part::Main if has_status => new["status"] = current["status"].clone(),
            Part::Status => {
                let status = new["status"].clone();
                new = current.clone();
                new["status"] = status;
            }
            _ => {}
        }
        keep_system_metadata(current, &mut new);
        if rt.spec_generation && new.get("spec") != current.get("spec") {
            let generation = meta::int_at(current, "/metadata/generation").unwrap_or(1);
            new["metadata"]["generation"] = (generation + 1).into();
        }
        let namespace = meta::namespace(current).to_owned();
        let attrs = Attributes {
            operation: Operation::Update,
            resource: rt,
            subresource: (part == Part::Status).then_some("status"),
            namespace: &namespace,
            old: Some(current),
        };
        self.admit(&attrs, &mut new)?;
        let name = meta::name(current).to_owned();
        if finalization_done(current, &new) {
            return s
                .remove(rt.stored_as(), &namespace, &name)
                .ok_or_else(|| ApiError::not_found(rt.gr, &name));
        }
        s.replace(rt.stored_as(), new)
            .ok_or_else(|| ApiError::not_found(rt.gr, &name))
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

/// Fields only the server sets survive a client's update.
fn keep_system_metadata(current: &Value, new: &mut Value) {
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match current["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    new["apiVersion"] = current["apiVersion"].clone();
    new["kind"] = current["kind"].clone();
}

/// `shouldDeleteDuringUpdate`: the last finalizer of an object whose deletion is due
/// was removed.
fn finalization_done(old: &Value, new: &Value) -> bool {
    meta::finalizers(new).is_empty()
        && !meta::finalizers(old).is_empty()
        && meta::is_terminating(new)
        && meta::int_at(new, "/metadata/deletionGracePeriodSeconds") == Some(0)
}
