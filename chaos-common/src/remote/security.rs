//! Pod Security admission, judged before anything is touched: the ephemeral container of
//! the network tools runs as root with `NET_ADMIN`, which the `baseline` level forbids
//! (capabilities beyond its short list) and `restricted` forbids twice over (root too).
//! The namespace's `pod-security.kubernetes.io/enforce` label decides; `warn` and `audit`
//! labels only make the API server warn or log, so they are warnings here too.

use std::collections::BTreeMap;

use crate::error::{ChaosError, Result};

pub const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const WARN: &str = "pod-security.kubernetes.io/warn";
const AUDIT: &str = "pod-security.kubernetes.io/audit";

/// Levels that refuse a root `NET_ADMIN` container.
fn refuses(level: &str) -> bool {
    matches!(level, "baseline" | "restricted")
}

/// The refusal (enforce at baseline/restricted) or the warnings for an ephemeral
/// container running as root with `NET_ADMIN` in `namespace` with these labels.
pub fn judge(namespace: &str, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
    if let Some(level) = labels.get(ENFORCE).filter(|l| refuses(l)) {
        return Err(ChaosError::Refused {
            rule: "pod-security",
            message: format!(
                "namespace {namespace} has {ENFORCE}={level}, which refuses the ephemeral container \
                 these tools need (root with NET_ADMIN in the pod's network namespace); run the \
                 experiment in a namespace at the privileged level, or relabel this one for the \
                 experiment window: kubectl label namespace {namespace} {ENFORCE}=privileged --overwrite \
                 (and put the label back afterwards)"
            ),
        });
    }
    let mut warnings = Vec::new();
    for key in [WARN, AUDIT] {
        if let Some(level) = labels.get(key).filter(|l| refuses(l)) {
            warnings.push(format!(
                "namespace {namespace} has {key}={level}: the API server will {} the ephemeral \
                 container (root with NET_ADMIN), but admit it",
                if key == WARN {
                    "warn about"
                } else {
                    "audit-log"
                }
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn baseline_and_restricted_refuse_with_the_label_and_the_way_out() {
        for level in ["baseline", "restricted"] {
            let e = judge("lomash-wood", &labels(&[(ENFORCE, level)]))
                .err()
                .map(|e| (e.exit(), e.to_string()));
            let (exit, text) = e.unwrap_or_else(|| panic!("{level} admitted"));
            assert_eq!(exit, crate::Exit::Refused);
            assert!(text.contains(&format!("{ENFORCE}={level}")), "{text}");
            assert!(
                text.contains("kubectl label namespace lomash-wood"),
                "{text}"
            );
        }
    }

    #[test]
    fn privileged_or_unlabelled_pass_and_warn_labels_warn() -> Result<()> {
        assert!(judge("ns", &labels(&[]))?.is_empty());
        assert!(judge("ns", &labels(&[(ENFORCE, "privileged")]))?.is_empty());
        let warnings = judge(
            "ns",
            &labels(&[
                (WARN, "restricted"),
                (AUDIT, "baseline"),
                (ENFORCE, "privileged"),
            ]),
        )?;
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        Ok(())
    }
}
