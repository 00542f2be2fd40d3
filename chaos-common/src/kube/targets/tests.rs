use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};

use super::*;

fn pod(name: &str, phase: &str, ready: bool, terminating: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".to_owned(), "a".to_owned())])),
            deletion_timestamp: terminating.then(|| Time(Default::default())),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

#[test]
fn filters_keep_running_ready_and_live_pods() {
    let pods = vec![
        pod("a", "Running", true, false),
        pod("b", "Pending", false, false),
        pod("c", "Running", false, false),
        pod("d", "Running", true, true),
    ];
    assert_eq!(names(&filter_by_running(pods.clone())), ["a", "c", "d"]);
    assert_eq!(names(&filter_by_ready(pods.clone())), ["a", "d"]);
    assert_eq!(
        names(&filter_by_not_terminating(filter_by_ready(pods))),
        ["a"]
    );
}

#[test]
fn selector_string_covers_labels_and_expressions() {
    let selector = LabelSelector {
        match_labels: Some(BTreeMap::from([("app".to_owned(), "a".to_owned())])),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["x".into(), "y".into()]),
            },
            LabelSelectorRequirement {
                key: "canary".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    assert_eq!(selector_string(&selector), "app=a,tier in (x,y),!canary");
}

#[test]
fn workloads_own_their_pods_by_selector_or_controller_reference() {
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some("a".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_owned(), "a".to_owned())])),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod_a = pod("a", "Running", true, false);
    assert!(workload_owns(
        &Workload::from_deployment(&deployment),
        &pod_a
    ));
    assert!(!workload_owns(
        &Workload::from_deployment(&Deployment::default()),
        &pod_a
    ));
    let set = Workload {
        kind: WorkloadKind::StatefulSet,
        name: "redis".into(),
        replicas: Some(1),
        ready_replicas: 1,
        selector: LabelSelector::default(),
    };
    assert!(!workload_owns(&set, &pod_a));
    let mut redis_0 = pod("redis-0", "Running", true, false);
    redis_0.metadata.owner_references = Some(vec![OwnerReference {
        kind: "StatefulSet".into(),
        name: "redis".into(),
        controller: Some(true),
        ..Default::default()
    }]);
    assert!(workload_owns(&set, &redis_0));
}

#[test]
fn the_filter_pipeline_keeps_exactly_the_available_pods() {
    let pods = vec![
        pod("a", "Running", true, false),
        pod("b", "Pending", true, false),
        pod("c", "Running", false, false),
        pod("d", "Running", true, true),
    ];
    let available: Vec<String> = pods
        .iter()
        .filter(|p| is_available(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names(&filter_by_available(pods)), available);
    assert_eq!(available, ["a"]);
}

#[test]
fn pick_is_total_and_deterministic() {
    assert_eq!(pick::<u8>(&[], 7), None);
    assert_eq!(pick(&[1, 2, 3], 7), Some(&2));
}
