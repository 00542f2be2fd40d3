use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

/// A pod `name` with UID `name#generation`, in the given state.
fn pod(name: &str, generation: u32, scheduled: bool, ready: bool, terminating: bool) -> Pod {
    let condition = |t: &str, on: bool| PodCondition {
        type_: t.into(),
        status: if on { "True" } else { "False" }.into(),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("{name}#{generation}")),
            labels: Some(BTreeMap::from([("app".to_owned(), "a".to_owned())])),
            deletion_timestamp: terminating.then(|| Time(Default::default())),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: scheduled.then(|| "node".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(if scheduled { "Running" } else { "Pending" }.into()),
            conditions: Some(vec![
                condition("PodScheduled", scheduled),
                condition("Ready", ready),
            ]),
            ..Default::default()
        }),
    }
}

fn live(name: &str) -> Pod {
    pod(name, 1, true, true, false)
}

fn synced(pods: &[&str]) -> Timeline {
    let mut t = Timeline::new(pods.len());
    t.on_init();
    for p in pods {
        t.on_pod(&live(p), Stamp::now());
    }
    t.on_init_done(Stamp::now());
    t
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

#[test]
fn full_recovery_records_every_step_in_order() {
    let mut t = synced(&["a-1", "a-2"]);
    assert_eq!(names(&t.available()), ["a-1", "a-2"]);
    let i = t.start_kill(PodId::of(&live("a-1")), Stamp::now());
    // The replacement can be seen before the DELETE response arrives.
    t.on_pod(&pod("a-3", 1, false, false, false), Stamp::now());
    t.on_deleted(&live("a-1"), Stamp::now());
    t.kills[i].accepted = Some(Stamp::now());
    assert_eq!(t.available_count(), 1);
    t.on_pod(&pod("a-3", 1, true, false, false), Stamp::now());
    assert_eq!(t.kills[i].outcome, Outcome::Pending);
    t.on_pod(&pod("a-3", 1, true, true, false), Stamp::now());
    let kill = &t.kills[i];
    assert_eq!(kill.outcome, Outcome::Recovered);
    assert_eq!(
        kill.replacement.as_ref().map(|r| r.name.as_str()),
        Some("a-3")
    );
    assert!(kill.gone.is_some() && kill.created.is_some() && kill.scheduled.is_some());
    assert!(kill.ready.is_some() && kill.recovered.is_some() && kill.settled());
}

#[test]
fn a_stateful_set_replacement_with_the_same_name_is_told_apart_by_its_uid() {
    let mut t = synced(&["redis-0"]);
    let i = t.start_kill(PodId::of(&live("redis-0")), Stamp::now());
    // Terminating first: the same pod (same UID), neither gone nor a replacement.
    t.on_pod(&pod("redis-0", 1, true, false, true), Stamp::now());
    assert!(t.kills[i].replacement.is_none() && t.kills[i].gone.is_none());
    t.on_deleted(&pod("redis-0", 1, true, false, true), Stamp::now());
    assert!(t.kills[i].gone.is_some());
    t.on_pod(&pod("redis-0", 2, false, false, false), Stamp::now());
    assert_eq!(
        t.kills[i].replacement.as_ref().map(|r| r.uid.as_str()),
        Some("redis-0#2")
    );
    t.on_pod(&pod("redis-0", 2, true, true, false), Stamp::now());
    assert_eq!(t.kills[i].outcome, Outcome::Recovered);
}

#[test]
fn a_late_deleted_event_of_the_old_pod_does_not_remove_its_replacement() {
    let mut t = synced(&["redis-0"]);
    let i = t.start_kill(PodId::of(&live("redis-0")), Stamp::now());
    t.on_pod(&pod("redis-0", 2, true, true, false), Stamp::now());
    t.on_deleted(&live("redis-0"), Stamp::now());
    assert_eq!(
        t.available_count(),
        1,
        "the replacement (UID #2) is still there"
    );
    assert_eq!(t.kills[i].outcome, Outcome::Recovered);
}

#[test]
fn a_terminating_pod_is_neither_available_nor_a_replacement() {
    let mut t = synced(&["a-1", "a-2"]);
    let i = t.start_kill(PodId::of(&live("a-1")), Stamp::now());
    t.on_pod(&pod("a-1", 1, true, true, true), Stamp::now());
    assert_eq!(t.available_count(), 1);
    assert_eq!(names(&t.available()), ["a-2"]);
    assert!(t.kills[i].replacement.is_none());
    assert!(t.kills[i].gone.is_none());
}

#[test]
fn recovery_needs_the_desired_available_count_not_only_a_ready_replacement() {
    let mut t = synced(&["a-1", "a-2"]);
    let i = t.start_kill(PodId::of(&live("a-1")), Stamp::now());
    t.on_deleted(&live("a-1"), Stamp::now());
    t.on_pod(&pod("a-2", 1, true, false, false), Stamp::now());
    t.on_pod(&live("a-3"), Stamp::now());
    assert_eq!(
        t.kills[i].outcome,
        Outcome::Pending,
        "a-2 is not Ready: 1 of 2"
    );
    t.on_pod(&live("a-2"), Stamp::now());
    assert_eq!(t.kills[i].outcome, Outcome::Recovered);
}

#[test]
fn a_relist_marks_vanished_pods_gone_and_counts_itself() {
    let mut t = synced(&["a-1", "a-2"]);
    let i = t.start_kill(PodId::of(&live("a-1")), Stamp::now());
    t.on_init();
    t.on_pod(&live("a-2"), Stamp::now());
    t.on_init_done(Stamp::now());
    assert!(t.kills[i].gone.is_some());
    assert_eq!(t.relists, 1);
}

#[test]
fn unattempted_kills_are_not_tracked() {
    let mut t = synced(&["a-1"]);
    t.record_unattempted(
        PodId::of(&live("a-1")),
        Outcome::BlockedByPdb("a-pdb".into()),
        Stamp::now(),
    );
    t.on_deleted(&live("a-1"), Stamp::now());
    assert!(t.kills[0].gone.is_none());
    assert!(t.kills[0].settled());
}
