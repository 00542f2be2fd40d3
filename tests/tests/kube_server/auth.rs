//! TLS, authentication and RBAC as on a cluster: the CA in the kubeconfig, 401 for a
//! missing or unknown token, ServiceAccount tokens from `kubectl create token`, RBAC from
//! objects created with `kubectl apply`, 403 messages, SelfSubjectAccessReview.

use std::process::Command;

use chaos_tests::kube_lab::rbac_yaml;

use super::{lab, ok, stderr, stdout};

const SA_USER: &str = "system:serviceaccount:lomash-wood:pod-killer";

/// The CA of the admin kubeconfig, written to a file for curl.
fn ca_file(lab: &chaos_tests::kube_lab::KubeLab) -> std::path::PathBuf {
    let path = lab.dir.join("ca.pem");
    std::fs::write(&path, lab.control().ca_pem()).unwrap();
    path
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-D", "-"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl (apt-get install curl): {e}"));
    (stdout(&out), stderr(&out))
}

#[test]
fn the_server_speaks_tls_with_its_own_ca_and_answers_401_without_a_valid_token() {
    let lab = lab();
    let url = format!(
        "https://{}/api/v1/namespaces/lomash-wood/pods",
        lab.server.addr
    );
    let ca = ca_file(&lab);
    let ca = ca.to_string_lossy();
    let (out, _) = curl(&["--cacert", &ca, &url]);
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
    let (out, _) = curl(&[
        "--cacert",
        &ca,
        "-H",
        "Authorization: Bearer not-a-token",
        &url,
    ]);
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    // Without the CA the certificate is not trusted.
    let (_, err) = curl(&[&url]);
    assert!(err.contains("certificate"), "{err}");
    let out = lab.kubectl(&["get", "pods", "--token=not-a-token"]);
    assert!(
        stderr(&out).contains("You must be logged in to the server"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rbac_applied_with_kubectl_grants_exactly_its_rules_to_the_service_account_token() {
    let lab = lab();
    let sa = lab.service_account_kubeconfig(&rbac_yaml(), "lomash-wood", "pod-killer");
    let can_i = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        stdout(&lab.kubectl_as(&sa, &all)).trim().to_owned()
    };
    assert_eq!(can_i(&["delete", "pods"]), "yes");
    assert_eq!(can_i(&["create", "pods", "--subresource=eviction"]), "yes");
    assert_eq!(can_i(&["watch", "pods"]), "yes");
    assert_eq!(can_i(&["create", "pods"]), "no");
    assert_eq!(can_i(&["delete", "pods", "-n", "kube-system"]), "no");
    assert_eq!(can_i(&["delete", "deployments"]), "no");
    // A real request gets the real 403 body.
    let victim = lab.pod_names("app=coredns").first().cloned();
    assert!(victim.is_none(), "coredns lives in kube-system");
    let coredns =
        lab.kubectl_json(&["get", "pods", "-n", "kube-system"])["items"][0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
    let out = lab.kubectl_as(&sa, &["delete", "pod", &coredns, "-n", "kube-system"]);
    assert!(!out.status.success());
    let expected = format!(
        "Error from server (Forbidden): pods \"{coredns}\" is forbidden: User \"{SA_USER}\" cannot delete resource \"pods\" in API group \"\" in the namespace \"kube-system\""
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    let out = lab.kubectl_as(&sa, &["get", "nodes"]);
    assert!(
        stderr(&out).contains(&format!("nodes is forbidden: User \"{SA_USER}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope")),
        "{}",
        stderr(&out)
    );
    let out = lab.kubectl_as(
        &sa,
        &[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/lomash-wood/deployments/api-gateway/scale",
        ],
    );
    assert!(
        stderr(&out).contains("cannot get resource \"deployments/scale\" in API group \"apps\""),
        "{}",
        stderr(&out)
    );
    // What the SA may do works.
    ok(&lab.kubectl_as(&sa, &["get", "pods", "-l", "app=api-gateway", "-o", "name"]));
    let accesses = lab.control().accesses();
    assert!(
        accesses
            .iter()
            .any(|a| a.user == SA_USER && a.verb == "list" && a.resource == "pods" && a.allowed)
    );
    assert!(
        accesses
            .iter()
            .any(|a| a.user == SA_USER && a.verb == "delete" && !a.allowed)
    );
}

#[test]
fn a_self_subject_access_review_names_the_binding_that_allows() {
    let lab = lab();
    let sa = lab.service_account_kubeconfig(&rbac_yaml(), "lomash-wood", "pod-killer");
    let review = lab.dir.join("ssar.json");
    std::fs::write(
        &review,
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview",
            "spec":{"resourceAttributes":{"namespace":"lomash-wood","verb":"delete","resource":"pods"}}}"#,
    )
    .unwrap();
    let path = review.to_string_lossy().into_owned();
    let out = ok(&lab.kubectl_as(&sa, &["create", "-f", &path, "-o", "json"]));
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["status"]["allowed"], true, "{answer:#}");
    assert_eq!(
        answer["status"]["reason"],
        "RBAC: allowed by RoleBinding \"pod-killer/lomash-wood\" of Role \"pod-killer\" to ServiceAccount \"pod-killer/lomash-wood\""
    );
}

#[test]
fn a_token_dies_with_its_service_account() {
    let lab = lab();
    let sa = lab.service_account_kubeconfig(&rbac_yaml(), "lomash-wood", "pod-killer");
    ok(&lab.kubectl_as(&sa, &["get", "pods", "-l", "app=api-gateway"]));
    ok(&lab.kubectl(&["delete", "serviceaccount", "pod-killer"]));
    let out = lab.kubectl_as(&sa, &["get", "pods", "-l", "app=api-gateway"]);
    assert!(stderr(&out).contains("Unauthorized"), "{}", stderr(&out));
    // Applying again makes a new account (new UID): the old token stays dead.
    let file = rbac_yaml().to_string_lossy().into_owned();
    ok(&lab.kubectl(&["apply", "-f", &file]));
    let out = lab.kubectl_as(&sa, &["get", "pods"]);
    assert!(stderr(&out).contains("Unauthorized"), "{}", stderr(&out));
}
