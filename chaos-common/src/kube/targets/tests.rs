use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, Time,
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
fn deployment_selects_by_match_labels() {
    let deployment = Deployment {
        spec: Some(DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_owned(), "a".to_owned())])),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(deployment_selects(
        &deployment,
        &pod("a", "Running", true, false)
    ));
    assert!(!deployment_selects(
        &Deployment::default(),
        &pod("a", "Running", true, false)
    ));
}

#[test]
fn pick_is_total_and_deterministic() {
    assert_eq!(pick::<u8>(&[], 7), None);
    assert_eq!(pick(&[1, 2, 3], 7), Some(&2));
}
