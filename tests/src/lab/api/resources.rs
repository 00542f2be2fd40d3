//! The resource types the lab adds to the API server: Services, Endpoints and
//! EndpointSlices, ConfigMaps and Secrets, HorizontalPodAutoscalers (autoscaling/v2),
//! `metrics.k8s.io` PodMetrics and NodeMetrics, and pods with the subresources the lab
//! serves (exec, attach, log, ephemeralcontainers).

use crate::kube_server::registry::{ALL_VERBS, GroupResource, PODS, ResourceType, Subresource};

pub const SERVICES: GroupResource = GroupResource::new("", "services");
pub const ENDPOINTS: GroupResource = GroupResource::new("", "endpoints");
pub const ENDPOINT_SLICES: GroupResource = GroupResource::new("discovery.k8s.io", "endpointslices");
pub const CONFIG_MAPS: GroupResource = GroupResource::new("", "configmaps");
pub const SECRETS: GroupResource = GroupResource::new("", "secrets");
pub const HPAS: GroupResource = GroupResource::new("autoscaling", "horizontalpodautoscalers");
pub const POD_METRICS: GroupResource = GroupResource::new("metrics.k8s.io", "pods");
pub const NODE_METRICS: GroupResource = GroupResource::new("metrics.k8s.io", "nodes");

const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    group_version: None,
    verbs: &["get", "patch", "update"],
};

const fn t(
    gr: GroupResource,
    version: &'static str,
    kind: &'static str,
    short: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        gr,
        version,
        kind,
        namespaced: true,
        short_names: short,
        verbs: ALL_VERBS,
        subresources: &[],
        spec_generation: false,
        virtual_only: false,
        in_all: false,
        storage: None,
    }
}

/// Pods as the built-in type serves them, plus the lab's streaming subresources.
pub fn pods() -> ResourceType {
    let mut pods = t(PODS, "v1", "Pod", &["po"]);
    pods.in_all = true;
    pods.subresources = &[
        STATUS,
        Subresource {
            name: "eviction",
            kind: "Eviction",
            group_version: Some(("policy", "v1")),
            verbs: &["create"],
        },
        Subresource {
            name: "exec",
            kind: "PodExecOptions",
            group_version: None,
            verbs: &["create", "get"],
        },
        Subresource {
            name: "attach",
            kind: "PodAttachOptions",
            group_version: None,
            verbs: &["create", "get"],
        },
        Subresource {
            name: "log",
            kind: "Pod",
            group_version: None,
            verbs: &["get"],
        },
        Subresource {
            name: "ephemeralcontainers",
            kind: "Pod",
            group_version: None,
            verbs: &["get", "patch", "update"],
        },
    ];
    pods
}

pub fn types() -> Vec<ResourceType> {
    let mut services = t(SERVICES, "v1", "Service", &["svc"]);
    services.subresources = &[STATUS];
    services.in_all = true;
    let mut hpa = t(HPAS, "v2", "HorizontalPodAutoscaler", &["hpa"]);
    hpa.subresources = &[STATUS];
    hpa.spec_generation = true;
    hpa.in_all = true;
    let metrics_verbs: &'static [&'static str] = &["get", "list"];
    let mut pod_metrics = t(POD_METRICS, "v1beta1", "PodMetrics", &[]);
    pod_metrics.verbs = metrics_verbs;
    let mut node_metrics = t(NODE_METRICS, "v1beta1", "NodeMetrics", &[]);
    node_metrics.verbs = metrics_verbs;
    node_metrics.namespaced = false;
    vec![
        pods(),
        services,
        t(ENDPOINTS, "v1", "Endpoints", &["ep"]),
        t(ENDPOINT_SLICES, "v1", "EndpointSlice", &[]),
        t(CONFIG_MAPS, "v1", "ConfigMap", &["cm"]),
        t(SECRETS, "v1", "Secret", &[]),
        hpa,
        pod_metrics,
        node_metrics,
    ]
}
