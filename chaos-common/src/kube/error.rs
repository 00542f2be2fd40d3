//! kube errors as [`ChaosError`]s whose messages say what was being done, where, and
//! what to do about it.

use super::Connection;
use crate::error::ChaosError;

/// Maps a kube error from `verb` on `resource` in `namespace` ("" for cluster scope).
pub fn api_error(
    err: kube::Error,
    verb: &str,
    resource: &str,
    namespace: &str,
    conn: &Connection,
) -> ChaosError {
    let place = if namespace.is_empty() {
        String::new()
    } else {
        format!(" in namespace {namespace}")
    };
    match err {
        kube::Error::Api(status) if status.code == 403 => ChaosError::Precondition(format!(
            "the Kubernetes API refused to {verb} {resource}{place} (403 Forbidden: {}); \
             grant it with the ServiceAccount, Role and RoleBinding of docs/rbac.yaml",
            status.message
        )),
        kube::Error::Api(status) => ChaosError::Fault(format!(
            "{verb} {resource}{place} failed: {} {}: {}",
            status.code, status.reason, status.message
        )),
        other => ChaosError::Precondition(format!(
            "cannot reach the Kubernetes API at {} (kubeconfig: {}) to {verb} {resource}{place}: {other}",
            conn.server, conn.source
        )),
    }
}

/// The HTTP code of an API error, if it is one.
pub fn code_of(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
