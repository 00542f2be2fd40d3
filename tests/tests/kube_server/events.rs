//! events.k8s.io/v1 Events: served as core Events to `kubectl get events`, validated as
//! the API server validates them (422 with one cause per field, on the internal names).

use serde_json::{Value, json};

use super::{lab, ok, stderr};

fn good_event() -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "chaos-test-event", "namespace": "lomash-wood"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "ChaosPodKilled", "note": "run abc",
        "type": "Normal", "action": "Delete", "reportingController": "chaos-tools/pod-killer",
        "reportingInstance": "pod-killer-abc",
        "regarding": {"kind": "Deployment", "name": "product-service", "namespace": "lomash-wood", "apiVersion": "apps/v1"}
    })
}

fn create(lab: &chaos_tests::kube_lab::KubeLab, event: &Value) -> std::process::Output {
    let file = lab.dir.join(format!("event-{}.json", std::process::id()));
    std::fs::write(&file, event.to_string()).unwrap();
    lab.kubectl(&["create", "-f", &file.to_string_lossy()])
}

#[test]
fn an_events_k8s_io_event_is_listed_by_kubectl_get_events_and_conflicts_on_reuse() {
    let lab = lab();
    ok(&create(&lab, &good_event()));
    let events = lab.kubectl_json(&["get", "events"]);
    let listed = &events["items"][0];
    assert_eq!(listed["reason"], "ChaosPodKilled", "{events:#}");
    assert_eq!(listed["involvedObject"]["name"], "product-service");
    assert_eq!(listed["message"], "run abc");
    assert_eq!(listed["reportingComponent"], "chaos-tools/pod-killer");
    let table = ok(&lab.kubectl(&["get", "events"]));
    assert!(
        table.contains("ChaosPodKilled") && table.contains("deployment/product-service"),
        "{table}"
    );
    let v1 = lab.kubectl_json(&["get", "events.v1.events.k8s.io", "chaos-test-event"]);
    assert_eq!(v1["note"], "run abc");
    let out = create(&lab, &good_event());
    assert!(stderr(&out).contains("AlreadyExists"), "{}", stderr(&out));
}

#[test]
fn invalid_events_are_422_with_a_cause_per_field() {
    let lab = lab();
    let mut bad = good_event();
    bad["metadata"]["name"] = "bad-event".into();
    bad["note"] = "x".repeat(1025).into();
    bad["reportingController"] = "chaos tools".into();
    bad["reportingInstance"] = "".into();
    bad["action"] = "a".repeat(129).into();
    let out = create(&lab, &bad);
    let err = stderr(&out);
    assert!(err.contains("The Event \"bad-event\" is invalid"), "{err}");
    for cause in [
        "message: Invalid value: \"\": can have at most 1024 characters",
        "reportingController: Invalid value: \"chaos tools\": name part must consist of alphanumeric characters",
        "reportingInstance: Required value",
        "action: Invalid value: \"\": can have at most 128 characters",
    ] {
        assert!(err.contains(cause), "{cause} missing from: {err}");
    }
    let mut timeless = good_event();
    timeless["metadata"]["name"] = "timeless".into();
    timeless.as_object_mut().unwrap().remove("eventTime");
    let err = stderr(&create(&lab, &timeless));
    assert!(err.contains("eventTime: Required value"), "{err}");
    let mut garbled = good_event();
    garbled["eventTime"] = "yesterday".into();
    let err = stderr(&create(&lab, &garbled));
    assert!(
        err.contains("BadRequest") && err.contains("parsing time \"yesterday\""),
        "{err}"
    );
    assert_eq!(
        lab.kubectl_json(&["get", "events"])["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}
