use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

fn pod(name: &str, scheduled: bool, ready: bool, terminating: bool) -> Pod {
    let condition = |t: &str, on: bool| PodCondition {
        type_: t.into(),
        status: if on { "True" } else { "False" }.into(),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".to_owned(), "a".to_owned())])),
            deletion_timestamp: terminating.then(|| Time(Default::default())),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: scheduled.then(|| "node".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            conditions: Some(vec![
                condition("PodScheduled", scheduled),
                condition("Ready", ready),
            ]),
            ..Default::default()
        }),
    }
}

fn synced(pods: &[&str]) -> Timeline {
    let mut t = Timeline::new(pods.len());
    t.on_init();
    for p in pods {
        t.on_pod(&pod(p, true, true, false), Stamp::now());
    }
    t.on_init_done(Stamp::now());
    t
}

#[test]
fn full_recovery_records_every_step_in_order() {
    let mut t = synced(&["a-1", "a-2"]);
    assert_eq!(t.candidates(), ["a-1", "a-2"]);
    let i = t.start_kill("a-1", Stamp::now());
    // The replacement can be seen before the DELETE response arrives.
    t.on_pod(&pod("a-3", false, false, false), Stamp::now());
    t.on_deleted("a-1", Stamp::now());
    t.kills[i].accepted = Some(Stamp::now());
    assert_eq!(t.ready_count(), 1);
    t.on_pod(&pod("a-3", true, false, false), Stamp::now());
    assert_eq!(t.kills[i].outcome, Outcome::Pending);
    t.on_pod(&pod("a-3", true, true, false), Stamp::now());
    let kill = &t.kills[i];
    assert_eq!(kill.outcome, Outcome::Recovered);
    assert_eq!(kill.replacement.as_deref(), Some("a-3"));
    assert!(kill.gone.is_some() && kill.created.is_some() && kill.scheduled.is_some());
    assert!(kill.ready.is_some() && kill.recovered.is_some());
}

#[test]
fn a_terminating_pod_does_not_count_as_ready_or_as_a_replacement() {
    let mut t = synced(&["a-1", "a-2"]);
    let i = t.start_kill("a-1", Stamp::now());
    t.on_pod(&pod("a-1", true, true, true), Stamp::now());
    assert_eq!(t.ready_count(), 1);
    assert_eq!(t.candidates(), ["a-2"]);
    assert!(t.kills[i].replacement.is_none());
    assert!(t.kills[i].gone.is_none());
}

#[test]
fn recovery_needs_the_desired_ready_count_not_only_a_ready_replacement() {
    let mut t = synced(&["a-1", "a-2"]);
    let i = t.start_kill("a-1", Stamp::now());
    t.on_deleted("a-1", Stamp::now());
    t.on_pod(&pod("a-2", true, false, false), Stamp::now());
    t.on_pod(&pod("a-3", true, true, false), Stamp::now());
    assert_eq!(
        t.kills[i].outcome,
        Outcome::Pending,
        "a-2 is not Ready: 1 of 2"
    );
    t.on_pod(&pod("a-2", true, true, false), Stamp::now());
    assert_eq!(t.kills[i].outcome, Outcome::Recovered);
}

#[test]
fn a_relist_marks_vanished_pods_gone() {
    let mut t = synced(&["a-1", "a-2"]);
    let i = t.start_kill("a-1", Stamp::now());
    t.on_init();
    t.on_pod(&pod("a-2", true, true, false), Stamp::now());
    t.on_init_done(Stamp::now());
    assert!(t.kills[i].gone.is_some());
}

#[test]
fn unattempted_kills_are_not_tracked() {
    let mut t = synced(&["a-1"]);
    t.record_unattempted("a-1", Outcome::BlockedByPdb("a-pdb".into()), Stamp::now());
    t.on_deleted("a-1", Stamp::now());
    assert!(t.kills[0].gone.is_none());
}
