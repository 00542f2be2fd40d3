//! RBAC preflight: the requests a run will make, each asked of the API server first as a
//! SelfSubjectAccessReview (`kubectl auth can-i`), so that a missing permission refuses the
//! run (exit 3) before anything is touched instead of failing halfway through. The list
//! mirrors the calls the remote layer makes; `docs/rbac.yaml` grants exactly these.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::Delivery;
use super::args::{Selection, Settings};
use crate::error::{ChaosError, Result};
use crate::kube::Connection;
use crate::kube::freeze;

/// One request the run will make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub namespace: String,
    /// Only this object (resourceNames).
    pub name: Option<String>,
    /// What the run needs it for.
    pub why: &'static str,
}

impl Need {
    /// `create pods/exec`, `get configmaps/chaos-freeze`, `list endpointslices.discovery.k8s.io`.
    pub fn describe(&self) -> String {
        let mut resource = self.resource.to_owned();
        if !self.group.is_empty() {
            resource = format!("{resource}.{}", self.group);
        }
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        match &self.name {
            Some(name) => format!("{} {resource} {name}", self.verb),
            None => format!("{} {resource}", self.verb),
        }
    }
}

/// What the remote layer will ask the API for, given the request's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub delivery: Delivery,
    /// A Service is read with its EndpointSlices (and watched while the run lasts).
    pub peer: bool,
    pub keep_peer_current: bool,
    /// The pods are watched (memory-leak --watch-oom).
    pub watch_pods: bool,
}

fn need(verb: &'static str, resource: &'static str, namespace: &str, why: &'static str) -> Need {
    Need {
        verb,
        group: "",
        resource,
        subresource: "",
        namespace: namespace.to_owned(),
        name: None,
        why,
    }
}

/// Every request a live run of this shape makes.
pub fn needs(settings: &Settings, shape: Shape) -> Vec<Need> {
    let ns = settings.namespace.as_str();
    let mut all = Vec::new();
    for freeze_ns in &settings.freeze_namespaces {
        all.push(Need {
            name: Some(freeze::NAME.to_owned()),
            ..need("get", "configmaps", freeze_ns, "the freeze switch")
        });
    }
    match &settings.selection {
        Selection::Pods(_) => all.push(need("get", "pods", ns, "read the --pod pods")),
        Selection::Deployment(_) => {
            all.push(Need {
                group: "apps",
                ..need("get", "deployments", ns, "read the Deployment's selector")
            });
            all.push(need("list", "pods", ns, "find the target pods"));
        }
        Selection::Backends(_) => {
            all.push(need("get", "services", ns, "read the Service's selector"));
            all.push(need("list", "pods", ns, "find the target pods"));
        }
        _ => all.push(need("list", "pods", ns, "find the target pods")),
    }
    if shape.peer {
        all.push(need(
            "get",
            "services",
            ns,
            "the Service's ClusterIP and ports",
        ));
        all.push(Need {
            group: "discovery.k8s.io",
            ..need(
                "list",
                "endpointslices",
                ns,
                "the Service's endpoint addresses",
            )
        });
    }
    if shape.keep_peer_current {
        all.push(Need {
            group: "discovery.k8s.io",
            ..need(
                "watch",
                "endpointslices",
                ns,
                "keep the Service's addresses current",
            )
        });
    }
    // Exec over websockets is a GET (authorized as `get`); clusters since 1.30 also
    // require `create` for the upgrade, as for the older POST-based exec.
    for verb in ["create", "get"] {
        all.push(Need {
            subresource: "exec",
            ..need(verb, "pods", ns, "run the tool (or stop it) in the pod")
        });
    }
    if shape.delivery == Delivery::Ephemeral {
        all.push(Need {
            subresource: "ephemeralcontainers",
            ..need("patch", "pods", ns, "add the ephemeral container")
        });
        all.push(need(
            "get",
            "pods",
            ns,
            "wait until the ephemeral container runs",
        ));
        all.push(Need {
            subresource: "log",
            ..need("get", "pods", ns, "follow the ephemeral container's log")
        });
        all.push(Need {
            name: Some(ns.to_owned()),
            ..need("get", "namespaces", "", "read the Pod Security labels")
        });
    }
    if shape.watch_pods {
        all.push(need("list", "pods", ns, "watch the pods for OOM kills"));
        all.push(need("watch", "pods", ns, "watch the pods for OOM kills"));
    }
    let mut unique: Vec<Need> = Vec::new();
    for n in all {
        if !unique
            .iter()
            .any(|u| u.describe() == n.describe() && u.namespace == n.namespace)
        {
            unique.push(n);
        }
    }
    unique
}

/// Asks the API server whether this user may make every request of `needs`; the answer
/// is the list of those it may not, or an error when it cannot be asked.
pub async fn denied(conn: &Connection, needs: &[Need]) -> Result<Vec<Need>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
    let asks = needs.iter().map(|n| {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(n.verb.into()),
                    group: Some(n.group.into()),
                    resource: Some(n.resource.into()),
                    subresource: (!n.subresource.is_empty()).then(|| n.subresource.into()),
                    namespace: (!n.namespace.is_empty()).then(|| n.namespace.clone()),
                    name: n.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = api.clone();
        async move {
            let answer = api.create(&PostParams::default(), &review).await;
            (n, answer)
        }
    });
    let mut refused = Vec::new();
    for (n, answer) in futures_util::future::join_all(asks).await {
        let review = answer.map_err(|e| {
            ChaosError::Precondition(format!(
                "cannot ask the API server at {} whether this user may {} (SelfSubjectAccessReview: {e}); \
                 every authenticated user may normally ask (ClusterRole system:basic-user)",
                conn.server,
                n.describe()
            ))
        })?;
        if !review.status.is_some_and(|s| s.allowed) {
            refused.push(n.clone());
        }
    }
    Ok(refused)
}

/// The refusal for the requests `denied` found, one line each.
pub fn refusal(denied: &[Need]) -> Option<ChaosError> {
    if denied.is_empty() {
        return None;
    }
    let lines: Vec<String> = denied
        .iter()
        .map(|n| {
            let place = if n.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in namespace {}", n.namespace)
            };
            format!("may not {} {place} (needed to {})", n.describe(), n.why)
        })
        .collect();
    Some(ChaosError::Refused {
        rule: "rbac",
        message: format!(
            "this user {}; grant it with the Role and bindings of docs/rbac.yaml",
            lines.join("; ")
        ),
    })
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
