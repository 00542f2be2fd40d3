//! The resource types the server knows (discovery documents are built from them in
//! `discovery.rs`).
//!
//! A type is data ([`ResourceType`]); the lab adds its own (Services, EndpointSlices,
//! HorizontalPodAutoscalers, ...) with [`Registry::add`] before the server starts, and
//! the generic handlers, watches, RBAC and discovery serve them without further code.

/// A resource as RBAC and the store name it: API group ("" for core) and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    pub group: &'static str,
    pub resource: &'static str,
}

impl GroupResource {
    pub const fn new(group: &'static str, resource: &'static str) -> GroupResource {
        GroupResource { group, resource }
    }
}

impl std::fmt::Display for GroupResource {
    /// `pods`, `deployments.apps`: how the API server names a resource in messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

pub const PODS: GroupResource = GroupResource::new("", "pods");
pub const NAMESPACES: GroupResource = GroupResource::new("", "namespaces");
pub const SERVICE_ACCOUNTS: GroupResource = GroupResource::new("", "serviceaccounts");
pub const CORE_EVENTS: GroupResource = GroupResource::new("", "events");
pub const EVENTS: GroupResource = GroupResource::new("events.k8s.io", "events");
pub const NODES: GroupResource = GroupResource::new("", "nodes");
pub const DEPLOYMENTS: GroupResource = GroupResource::new("apps", "deployments");
pub const REPLICA_SETS: GroupResource = GroupResource::new("apps", "replicasets");
pub const STATEFUL_SETS: GroupResource = GroupResource::new("apps", "statefulsets");
pub const CONTROLLER_REVISIONS: GroupResource = GroupResource::new("apps", "controllerrevisions");
pub const PDBS: GroupResource = GroupResource::new("policy", "poddisruptionbudgets");
pub const ROLES: GroupResource = GroupResource::new("rbac.authorization.k8s.io", "roles");
pub const ROLE_BINDINGS: GroupResource =
    GroupResource::new("rbac.authorization.k8s.io", "rolebindings");
pub const CLUSTER_ROLES: GroupResource =
    GroupResource::new("rbac.authorization.k8s.io", "clusterroles");
pub const CLUSTER_ROLE_BINDINGS: GroupResource =
    GroupResource::new("rbac.authorization.k8s.io", "clusterrolebindings");
pub const SELF_SUBJECT_ACCESS_REVIEWS: GroupResource =
    GroupResource::new("authorization.k8s.io", "selfsubjectaccessreviews");

/// A subresource listed in discovery (`pods/eviction`, `statefulsets/scale`).
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind of the object the subresource takes or returns, and its group/version
    /// when that differs from the parent's (`Eviction` in policy/v1, `Scale` in autoscaling/v1).
    pub kind: &'static str,
    pub group_version: Option<(&'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

/// One served resource type.
#[derive(Debug, Clone, Copy)]
pub struct ResourceType {
    pub gr: GroupResource,
    pub version: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Whether `metadata.generation` counts changes of `spec` (workloads, PDBs).
    pub spec_generation: bool,
    /// Create-only review types (`selfsubjectaccessreviews`): never stored or listed.
    pub virtual_only: bool,
    /// `kubectl get all` includes it.
    pub in_all: bool,
    /// Where objects of this type are kept when another type holds them (events.k8s.io
    /// Events are core Events, converted on the way in and out, as on a real server).
    pub storage: Option<GroupResource>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.gr.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.gr.group, self.version)
        }
    }

    /// The resource its objects are stored as.
    pub fn stored_as(&self) -> GroupResource {
        self.storage.unwrap_or(self.gr)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }
}

pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    group_version: None,
    verbs: &["get", "patch", "update"],
};
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: "Scale",
    group_version: Some(("autoscaling", "v1")),
    verbs: &["get", "patch", "update"],
};

const fn t(
    gr: GroupResource,
    version: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        gr,
        version,
        kind,
        namespaced,
        short_names,
        verbs: ALL_VERBS,
        subresources: &[],
        spec_generation: false,
        virtual_only: false,
        in_all: false,
        storage: None,
    }
}

/// The types every test server serves.
pub fn builtin() -> Vec<ResourceType> {
    let mut pods = t(PODS, "v1", "Pod", true, &["po"]);
    pods.in_all = true;
    pods.subresources = &[
        STATUS,
        Subresource {
            name: "eviction",
            kind: "Eviction",
            group_version: Some(("policy", "v1")),
            verbs: &["create"],
        },
    ];
    let mut namespaces = t(NAMESPACES, "v1", "Namespace", false, &["ns"]);
    namespaces.subresources = &[STATUS];
    let mut service_accounts = t(SERVICE_ACCOUNTS, "v1", "ServiceAccount", true, &["sa"]);
    service_accounts.subresources = &[Subresource {
        name: "token",
        kind: "TokenRequest",
        group_version: Some(("authentication.k8s.io", "v1")),
        verbs: &["create"],
    }];
    let mut nodes = t(NODES, "v1", "Node", false, &["no"]);
    nodes.subresources = &[STATUS];
    let mut workloads = Vec::new();
    for (gr, kind, short) in [
        (DEPLOYMENTS, "Deployment", &["deploy"][..]),
        (REPLICA_SETS, "ReplicaSet", &["rs"][..]),
        (STATEFUL_SETS, "StatefulSet", &["sts"][..]),
    ] {
        let mut w = t(gr, "v1", kind, true, short);
        w.subresources = &[STATUS, SCALE];
        w.spec_generation = true;
        w.in_all = true;
        workloads.push(w);
    }
    let mut pdbs = t(PDBS, "v1", "PodDisruptionBudget", true, &["pdb"]);
    pdbs.subresources = &[STATUS];
    pdbs.spec_generation = true;
    let mut ssar = t(
        SELF_SUBJECT_ACCESS_REVIEWS,
        "v1",
        "SelfSubjectAccessReview",
        false,
        &[],
    );
    ssar.verbs = &["create"];
    ssar.virtual_only = true;
    let mut types = vec![
        pods,
        namespaces,
        service_accounts,
        nodes,
        t(CORE_EVENTS, "v1", "Event", true, &["ev"]),
        ResourceType {
            storage: Some(CORE_EVENTS),
            ..t(EVENTS, "v1", "Event", true, &["ev"])
        },
        t(CONTROLLER_REVISIONS, "v1", "ControllerRevision", true, &[]),
        pdbs,
        t(ROLES, "v1", "Role", true, &[]),
        t(ROLE_BINDINGS, "v1", "RoleBinding", true, &[]),
        t(CLUSTER_ROLES, "v1", "ClusterRole", false, &[]),
        t(
            CLUSTER_ROLE_BINDINGS,
            "v1",
            "ClusterRoleBinding",
            false,
            &[],
        ),
        ssar,
    ];
    types.extend(workloads);
    types
}

/// The served types; fixed once the server starts.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { types: builtin() }
    }
}

impl Registry {
    /// Adds (or replaces) a type.
    pub fn add(&mut self, resource: ResourceType) {
        self.types.retain(|t| t.gr != resource.gr);
        self.types.push(resource);
    }

    /// The type served at `group`/`version` under `resource`.
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.gr.group == group && t.version == version && t.gr.resource == resource)
    }

    pub fn get(&self, gr: GroupResource) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.gr == gr)
    }

    /// The stored type of an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.kind == kind && t.api_version() == api_version)
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }
}
