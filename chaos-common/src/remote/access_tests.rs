use super::*;
use crate::remote::args::RemoteArgs;

fn settings(selection: Selection) -> Settings {
    RemoteArgs {
        freeze_namespace: Some("platform".into()),
        ..Default::default()
    }
    .settings(selection, "0.1.0")
    .unwrap_or_else(|e| panic!("{e}"))
}

fn described(needs: &[Need]) -> Vec<String> {
    needs
        .iter()
        .map(|n| format!("{} @{}", n.describe(), n.namespace))
        .collect()
}

#[test]
fn exec_delivery_needs_pods_exec_and_the_freeze_switch() {
    let shape = Shape {
        delivery: Delivery::Exec,
        peer: false,
        keep_peer_current: false,
        watch_pods: false,
    };
    let got = described(&needs(&settings(Selection::Service("a".into())), shape));
    assert_eq!(
        got,
        [
            "get configmaps chaos-freeze @lomash-wood",
            "get configmaps chaos-freeze @platform",
            "list pods @lomash-wood",
            "create pods/exec @lomash-wood",
            "get pods/exec @lomash-wood",
        ]
    );
}

#[test]
fn ephemeral_delivery_with_a_peer_needs_the_rest() {
    let shape = Shape {
        delivery: Delivery::Ephemeral,
        peer: true,
        keep_peer_current: true,
        watch_pods: false,
    };
    let got = described(&needs(&settings(Selection::Pods(vec!["p".into()])), shape));
    for want in [
        "get pods @lomash-wood",
        "get services @lomash-wood",
        "list endpointslices.discovery.k8s.io @lomash-wood",
        "watch endpointslices.discovery.k8s.io @lomash-wood",
        "patch pods/ephemeralcontainers @lomash-wood",
        "get pods/log @lomash-wood",
        "get namespaces lomash-wood @",
    ] {
        assert!(got.iter().any(|g| g == want), "{want} missing from {got:?}");
    }
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "duplicates in {got:?}");
}

#[test]
fn the_refusal_names_verb_resource_namespace_and_rbac_yaml() {
    let shape = Shape {
        delivery: Delivery::Exec,
        peer: false,
        keep_peer_current: false,
        watch_pods: true,
    };
    let all = needs(&settings(Selection::Service("a".into())), shape);
    assert!(refusal(&[]).is_none());
    let e = refusal(&all[3..4]).unwrap_or_else(|| panic!("no refusal"));
    assert_eq!(e.exit(), crate::Exit::Refused);
    let text = e.to_string();
    assert!(
        text.contains("may not create pods/exec in namespace lomash-wood"),
        "{text}"
    );
    assert!(text.contains("docs/rbac.yaml"), "{text}");
}
