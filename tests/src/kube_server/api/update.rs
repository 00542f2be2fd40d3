//! Updates: PUT (with optimistic concurrency on `resourceVersion`), PATCH (applied to
//! the object as the client sees it), controllers' read-modify-write, and what every
//! update does: keep the status or the spec (status subresource), keep the fields only
//! the server sets, count generations, admit, and delete an object whose last finalizer
//! went.

use serde_json::Value;

use super::admission::{Attributes, Operation};
use super::patch::{self, PatchType};
use super::{Cluster, Part, external, internal};
use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::meta;
use crate::kube_server::registry::{GroupResource, ResourceType};
use crate::kube_server::store::Store;

impl Cluster {
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
