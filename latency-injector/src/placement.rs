//! Where the proxy is put in the path: configuration beside the fault, shared by the
//! fault and its plan.

use crate::routes::Routes;
use crate::rules::Redirect;

#[derive(Debug, Clone)]
pub enum Placement {
    /// `--listen` / `--upstream`: clients are pointed at the proxy.
    Explicit,
    /// `--target` / `--app-port`: an nftables redirect; with `reset_existing`,
    /// established connections that bypass it are closed at apply; `routes` (ingress
    /// without `--allow-source-rewrite`) keep clients' addresses.
    Transparent {
        redirect: Redirect,
        reset_existing: bool,
        routes: Option<Routes>,
    },
}

impl Placement {
    pub fn is_transparent(&self) -> bool {
        matches!(self, Placement::Transparent { .. })
    }
}
