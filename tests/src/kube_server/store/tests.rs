use super::*;
use serde_json::json;

const PODS: GroupResource = GroupResource::new("", "pods");

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "ns"}})
}

fn rv(object: &Value) -> u64 {
    meta::resource_version(object).parse().unwrap_or(0)
}

#[test]
fn a_list_at_an_old_version_undoes_the_newer_changes() {
    let mut s = Store::new(100);
    let a = s.insert(PODS, pod("a")).unwrap_or_default();
    let mut changed = a.clone();
    changed["status"] = json!({"phase": "Running"});
    s.replace(PODS, changed);
    s.insert(PODS, pod("b")).unwrap_or_default();
    s.remove(PODS, "ns", "a");
    let at_a = s.list_at(PODS, Some("ns"), rv(&a)).unwrap_or_default();
    assert_eq!(at_a, vec![a.clone()]);
    let types: Vec<&str> = s
        .changes_since(PODS, rv(&a))
        .unwrap_or_default()
        .iter()
        .map(|c| c.event_type.as_str())
        .collect();
    assert_eq!(types, ["MODIFIED", "ADDED", "DELETED"]);
    assert_eq!(s.list(PODS, None).len(), 1);
}

#[test]
fn versions_older_than_the_history_are_too_old() {
    let mut s = Store::new(2);
    let a = s.insert(PODS, pod("a")).unwrap_or_default();
    s.insert(PODS, pod("b")).unwrap_or_default();
    s.insert(PODS, pod("c")).unwrap_or_default();
    assert_eq!(
        s.changes_since(PODS, rv(&a) - 1).err(),
        Some(TooOld { oldest: rv(&a) })
    );
    assert_eq!(s.changes_since(PODS, rv(&a)).map(|c| c.len()), Ok(2));
    s.compact();
    assert!(s.changes_since(PODS, rv(&a)).is_err());
    assert_eq!(
        s.changes_since(PODS, s.resource_version()).map(|c| c.len()),
        Ok(0)
    );
}

#[test]
fn an_existing_name_is_refused_and_an_equal_replace_changes_nothing() {
    let mut s = Store::new(10);
    let a = s.insert(PODS, pod("a")).unwrap_or_default();
    assert!(s.insert(PODS, pod("a")).is_err());
    let again = s.replace(PODS, a.clone()).unwrap_or_default();
    assert_eq!(rv(&again), rv(&a));
}
