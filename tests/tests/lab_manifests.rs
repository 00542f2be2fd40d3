//! The lab's manifests are real Kubernetes objects that follow the platform's template
//! (shared/reference/target-cluster.md), and every image is in the lab's image table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use chaos_tests::lab::images::{self, ImageDirs, ROLES};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Deserialize;
use serde_json::Value;

fn documents() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

fn of<T: for<'de> Deserialize<'de>>(docs: &[Value], kind: &str) -> Vec<T> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| {
            serde_json::from_value(d.clone())
                .unwrap_or_else(|e| panic!("{kind} {}: {e}", d["metadata"]["name"]))
        })
        .collect()
}

fn check_template(name: &str, t: &PodTemplateSpec) {
    let spec = t.spec.as_ref().unwrap();
    let psc = spec.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true), "{name}");
    for c in &spec.containers {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_owned()][..]),
            "{name}"
        );
        assert!(
            c.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == "/tmp"),
            "{name}: /tmp emptyDir"
        );
        let dirs = ImageDirs {
            bin_dir: "/b".into(),
            dist_dir: "/d".into(),
        };
        images::resolve(c.image.as_deref().unwrap(), &dirs)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = c.resources.as_ref().unwrap();
        assert!(
            r.requests.as_ref().unwrap().contains_key("cpu"),
            "{name}: CPU request (the HPA needs it)"
        );
        assert!(r.limits.as_ref().unwrap().contains_key("memory"), "{name}");
    }
}

#[test]
fn lab_manifests_are_the_platform_in_real_kubernetes_yaml() {
    let docs = documents();
    for d in &docs {
        assert_eq!(
            d["metadata"]["namespace"].as_str().unwrap_or("lomash-wood"),
            "lomash-wood"
        );
    }
    let deployments: Vec<Deployment> = of(&docs, "Deployment");
    let names: BTreeSet<String> = deployments
        .iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect();
    for role in ROLES {
        assert!(names.contains(role), "no Deployment {role}");
    }
    for d in &deployments {
        let name = d.metadata.name.clone().unwrap();
        let spec = d.spec.as_ref().unwrap();
        check_template(&name, &spec.template);
        if ROLES.contains(&name.as_str()) {
            assert_eq!(spec.replicas, Some(2), "{name}");
            let ru = spec
                .strategy
                .as_ref()
                .unwrap()
                .rolling_update
                .as_ref()
                .unwrap();
            assert_eq!(serde_json::to_value(&ru.max_surge).unwrap(), 1, "{name}");
            assert_eq!(
                serde_json::to_value(&ru.max_unavailable).unwrap(),
                0,
                "{name}"
            );
            let c = &spec.template.spec.as_ref().unwrap().containers[0];
            assert_eq!(
                c.readiness_probe
                    .as_ref()
                    .unwrap()
                    .http_get
                    .as_ref()
                    .unwrap()
                    .path
                    .as_deref(),
                Some("/health")
            );
            assert_eq!(
                spec.template
                    .spec
                    .as_ref()
                    .unwrap()
                    .security_context
                    .as_ref()
                    .unwrap()
                    .run_as_user,
                Some(1001)
            );
        }
    }
    let services: Vec<Service> = of(&docs, "Service");
    for s in &services {
        let name = s.metadata.name.clone().unwrap();
        let port = &s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        if ROLES.contains(&name.as_str()) {
            assert_eq!(port.port, 3000, "{name}");
            assert_eq!(
                serde_json::to_value(&port.target_port).unwrap(),
                3000,
                "{name}"
            );
        }
    }
    assert_eq!(services.len(), 11, "nine services, redis and postgres");
    let sts: Vec<StatefulSet> = of(&docs, "StatefulSet");
    assert_eq!(sts.len(), 1);
    assert_eq!(sts[0].metadata.name.as_deref(), Some("redis"));
    check_template("redis", &sts[0].spec.as_ref().unwrap().template);
    let hpa: Vec<HorizontalPodAutoscaler> = of(&docs, "HorizontalPodAutoscaler");
    let spec = hpa[0].spec.clone().unwrap();
    assert_eq!(
        (
            spec.scale_target_ref.name.as_str(),
            spec.min_replicas,
            spec.max_replicas
        ),
        ("product-service", Some(2), 4)
    );
    let target = spec.metrics.unwrap()[0].resource.clone().unwrap().target;
    assert_eq!(target.average_utilization, Some(70));
    let pdbs: Vec<PodDisruptionBudget> = of(&docs, "PodDisruptionBudget");
    assert_eq!(pdbs.len(), 9);
    assert_eq!(of::<Value>(&docs, "ConfigMap").len(), 1);
}
