//! Pod templates: the hash that names a Deployment's ReplicaSets and a StatefulSet's
//! revisions, pods stamped from a template, and the annotations that drive the simulated
//! kubelet (read from the pod, so they travel in real manifests too).

use serde_json::{Value, json};

use crate::kube_server::meta;

/// The annotations the simulated scheduler and kubelet read from a pod (copied from its
/// template). Documented in docs/kube-test-server.md.
pub const PREFIX: &str = "kube-test-server.chaos-tools/";
/// Pending -> scheduled, milliseconds (default 50).
pub const SCHEDULE_DELAY: &str = "kube-test-server.chaos-tools/schedule-delay-ms";
/// scheduled -> Running (containers started), milliseconds (default 100).
pub const START_DELAY: &str = "kube-test-server.chaos-tools/start-delay-ms";
/// Running -> Ready, milliseconds (default 200).
pub const READY_DELAY: &str = "kube-test-server.chaos-tools/ready-delay-ms";
/// "true": the readiness probe never passes.
pub const NEVER_READY: &str = "kube-test-server.chaos-tools/never-ready";
/// How long the containers take to exit after SIGTERM, milliseconds (default: they
/// ignore SIGTERM, as a Node.js PID 1 without a handler does, and are killed when the
/// grace period ends).
pub const STOP_DELAY: &str = "kube-test-server.chaos-tools/stop-delay-ms";
/// Set by the kubelet when it marks a pod Ready: the server's clock, microseconds since
/// the epoch (benchmarks measure how late a client saw it).
pub const READY_AT: &str = "kube-test-server.chaos-tools/ready-at-us";

/// `rand.SafeEncodeString` of a 32-bit FNV-1a hash of the template, as the Deployment
/// and StatefulSet controllers name ReplicaSets and revisions.
pub fn hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// A pod from `template`, owned by `owner` (its controller).
pub fn pod(
    template: &Value,
    owner: &Value,
    name: Option<&str>,
    extra_labels: &[(&str, &str)],
) -> Value {
    let mut metadata = template
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for (k, v) in extra_labels {
        metadata["labels"][*k] = (*v).into();
    }
    match name {
        Some(name) => metadata["name"] = name.into(),
        None => metadata["generateName"] = format!("{}-", meta::name(owner)).into(),
    }
    metadata["namespace"] = meta::namespace(owner).into();
    metadata["ownerReferences"] = json!([meta::controller_ref(owner)]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
           "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

/// A millisecond annotation of `pod`, or `default`.
pub fn millis(pod: &Value, key: &str, default: u64) -> u64 {
    meta::annotation(pod, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `pod` belongs to `owner` (its controller reference names the owner's UID).
pub fn owned_by(pod: &Value, owner: &Value) -> bool {
    meta::controller_of(pod).is_some_and(|(_, _, uid)| uid == meta::uid(owner))
}

/// `n` of `total` as an IntOrString (`3`, `"25%"`), rounded up or down.
pub fn scaled(value: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let product = percent * total;
            if round_up {
                (product + 99) / 100
            } else {
                product / 100
            }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_changes_with_the_template() {
        let a = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let b = json!({"spec": {"containers": [{"name": "a", "image": "x:2"}]}});
        assert_eq!(hash(&a), hash(&a.clone()));
        assert_ne!(hash(&a), hash(&b));
        assert!(
            hash(&a)
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
        assert_eq!(scaled(Some(&json!("25%")), 3, true), 1);
        assert_eq!(scaled(Some(&json!("25%")), 3, false), 0);
        assert_eq!(scaled(Some(&json!(2)), 3, false), 2);
    }
}
