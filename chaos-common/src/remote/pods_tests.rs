use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, EphemeralContainer, Pod, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

fn pod(name: &str, phase: &str, containers: &[&str]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: containers
                .iter()
                .map(|c| Container {
                    name: (*c).into(),
                    ..Default::default()
                })
                .collect(),
            node_name: Some("node-a".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            pod_ip: Some("198.51.100.7".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: containers
                    .first()
                    .map(|c| (*c).to_owned())
                    .unwrap_or_default(),
                restart_count: 2,
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

#[test]
fn only_running_live_pods_are_targets() {
    assert_eq!(not_runnable(&pod("a", "Running", &["app"])), None);
    assert_eq!(
        not_runnable(&pod("a", "Pending", &["app"])).as_deref(),
        Some("Pending")
    );
    let mut gone = pod("a", "Running", &["app"]);
    gone.metadata.deletion_timestamp = Some(Time(Default::default()));
    assert_eq!(not_runnable(&gone).as_deref(), Some("terminating"));
}

#[test]
fn the_container_is_the_flag_the_annotation_or_the_first() -> Result<()> {
    let mut p = pod("a", "Running", &["istio-proxy", "app"]);
    assert_eq!(choose_container(&p, None)?, "istio-proxy");
    p.metadata.annotations = Some(BTreeMap::from([(
        DEFAULT_CONTAINER_ANNOTATION.to_owned(),
        "app".to_owned(),
    )]));
    assert_eq!(choose_container(&p, None)?, "app");
    assert_eq!(choose_container(&p, Some("istio-proxy"))?, "istio-proxy");
    let e = choose_container(&p, Some("db"))
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("istio-proxy, app") && e.contains("--container db")),
        "{e:?}"
    );
    // An annotation naming a container that does not exist falls back to the first.
    p.metadata.annotations = Some(BTreeMap::from([(
        DEFAULT_CONTAINER_ANNOTATION.to_owned(),
        "gone".to_owned(),
    )]));
    assert_eq!(choose_container(&p, None)?, "istio-proxy");
    Ok(())
}

#[test]
fn narrowing_sorts_skips_and_caps() -> Result<()> {
    let pods = vec![
        pod("c", "Running", &["app"]),
        pod("a", "Running", &["app"]),
        pod("b", "Pending", &["app"]),
        pod("d", "Running", &["app"]),
    ];
    let (targets, skipped) = narrow(pods, Some(2), None, "app=x")?;
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(skipped, ["b (Pending)", "d (over --max-pods 2)"]);
    assert_eq!(targets[0].restarts, 2);
    assert_eq!(targets[0].node.as_deref(), Some("node-a"));
    let e = narrow(vec![pod("b", "Pending", &["app"])], None, None, "app=x")
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|e| e.contains("only b (Pending)")),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn existing_ephemeral_containers_are_known() -> Result<()> {
    let mut p = pod("a", "Running", &["app"]);
    if let Some(spec) = p.spec.as_mut() {
        spec.ephemeral_containers = Some(vec![EphemeralContainer {
            name: "debugger-x".into(),
            ..Default::default()
        }]);
    }
    assert_eq!(target(&p, None)?.ephemeral, ["debugger-x"]);
    Ok(())
}
