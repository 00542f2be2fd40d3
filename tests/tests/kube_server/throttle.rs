//! The API Priority and Fairness switch: a share of requests answered 429 with
//! Retry-After and the real Status body; client-go (kubectl) backs off and succeeds;
//! system:masters is exempt.

use std::process::Command;

use chaos_tests::kube_lab::rbac_yaml;

use super::{lab, ok, stdout};

#[test]
fn throttled_requests_get_429_with_retry_after_and_kubectl_backs_off() {
    let lab = lab();
    let sa = lab.service_account_kubeconfig(&rbac_yaml(), "lomash-wood", "pod-killer");
    lab.control().set_throttle(100, 1);
    let ca = lab.dir.join("ca.pem");
    std::fs::write(&ca, lab.control().ca_pem()).unwrap();
    let token = lab
        .control()
        .issue_token(
            "lomash-wood",
            "pod-killer",
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let url = format!(
        "https://{}/api/v1/namespaces/lomash-wood/pods",
        lab.server.addr
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "--cacert",
            &ca.to_string_lossy(),
            "-H",
            &format!("Authorization: Bearer {token}"),
            &url,
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(text.ends_with(r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#), "{text}");
    // The admin is exempt, as system:masters is from APF.
    ok(&lab.kubectl(&["get", "pods", "-l", "app=api-gateway"]));
    // Half the requests refused: kubectl honours Retry-After and gets through.
    lab.control().set_throttle(50, 1);
    let before = lab.control().throttled();
    let listed = ok(&lab.kubectl_as(&sa, &["get", "pods", "-l", "app=api-gateway", "-o", "name"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(lab.control().throttled() > before, "nothing was throttled");
}
